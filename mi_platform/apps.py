from __future__ import annotations

from django.apps import AppConfig


class MiPlatformConfig(AppConfig):
    name = "mi_platform"
    verbose_name = "MI Platform"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers system checks)

"""Configuration errors caught at startup."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=False)
def check_secret_key(app_configs, **kwargs) -> list[Error]:
    # LazySettings raises ImproperlyConfigured on an empty key; read the wrapped value to report it
    # as a clear system-check error instead of a traceback.
    settings._setup() if not settings.configured else None
    if not getattr(settings._wrapped, "SECRET_KEY", ""):
        return [
            Error(
                "SECRET_KEY is not set and DEBUG is off.",
                hint="Set SECRET_KEY (or SECRET_KEY_FILE) in the environment, or DEBUG=1 for development.",
                id="mi_platform.E001",
            )
        ]
    return []

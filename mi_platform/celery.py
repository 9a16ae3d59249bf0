"""The Celery app. Tasks live in each app's ``tasks.py`` and are discovered automatically."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mi_platform.settings")

app = Celery("mi_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="mi_platform.ping")
def ping(value: int) -> int:
    """A round-trip probe: the worker returns value + 1 (used by the health check and tests)."""
    return value + 1

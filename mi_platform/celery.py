"""The Celery app: wiring only.

Tasks are discovered in one way: ``autodiscover_tasks`` imports ``<package>.tasks`` for every
installed app and for the packages listed below (the recipe keeps its tasks in its own package).
A worker imports them all at start; a web process imports them when an action first sends a task
by name (``inference.claims.send_task``). Tasks carry explicit names, so senders never import them.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mi_platform.settings")

# Packages with a ``tasks`` module that are not installed apps themselves.
EXTRA_TASK_PACKAGES = ["inference.recipe", "inference.coders"]

app = Celery("mi_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")


def _task_packages() -> list[str]:
    from django.apps import apps

    return [config.name for config in apps.get_app_configs()] + EXTRA_TASK_PACKAGES


app.autodiscover_tasks(_task_packages)


@app.task(name="mi_platform.ping")
def ping(value: int) -> int:
    """A round-trip probe: the worker returns value + 1 (used by the health check and tests)."""
    return value + 1


@worker_init.connect
def refuse_a_pool_unfit_for_gpu_queues(sender=None, **kwargs) -> None:
    """A worker consuming ``gpu`` or ``train`` under a pool other than solo/threads stops here, with
    the reason and the right command (``inference.workers.pool_refusal``). SystemExit, because
    Celery logs and swallows ordinary exceptions raised by signal handlers."""
    from inference.workers import pool_refusal

    consume_from = sender.app.amqp.queues.consume_from
    # No -Q: the worker consumes every declared queue (the default one, and any the app declares).
    queues = list(consume_from) if consume_from else list(sender.app.amqp.queues)
    refusal = pool_refusal(queues, sender.pool_cls)
    if refusal:
        raise SystemExit(f"Refusing to start: {refusal}")

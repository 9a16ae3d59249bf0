"""A test-only Celery app: the project's app, plus a pause inside the first import's write.

``test_import_worker.py`` starts a worker with ``celery -A tests.annotation.slow_import_worker`` so it can
kill the worker in the middle of an import: while ``annotation.run_import`` runs, a database execute
wrapper (installed on ``task_prerun``, removed on ``task_postrun``) waits before the batch row is ended
inside the write transaction — dialogues and turns are written then, uncommitted — after creating the marker
file named by ``MI_TEST_IMPORT_PAUSE_MARKER``, until a file of that name plus ``.go`` appears (a browser
test lets it go on) or the test kills the worker. Once the marker exists there is no more pause, so a
redelivered task runs straight through. Nothing of this is in the shipped code.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery.signals import task_postrun, task_prerun

from mi_platform.celery import app

__all__ = ["app"]

PAUSE_SECONDS = 120


def _pause_before_commit(execute, sql, params, many, context):
    marker = Path(os.environ["MI_TEST_IMPORT_PAUSE_MARKER"])
    # Progress updates of the batch run outside a transaction; the one that ends it runs inside the write.
    ending = sql.startswith('UPDATE "annotation_importbatch"') and context["connection"].in_atomic_block
    if ending and not marker.exists():
        marker.write_text(str(os.getpid()))
        go = marker.with_name(marker.name + ".go")
        deadline = time.monotonic() + PAUSE_SECONDS
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    return execute(sql, params, many, context)


@task_prerun.connect
def _install(sender=None, **kwargs) -> None:
    if sender is not None and sender.name == "annotation.run_import":
        from django.db import connection

        connection.execute_wrappers.append(_pause_before_commit)


@task_postrun.connect
def _remove(sender=None, **kwargs) -> None:
    from django.db import connection

    if _pause_before_commit in connection.execute_wrappers:
        connection.execute_wrappers.remove(_pause_before_commit)

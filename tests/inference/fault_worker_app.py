"""The Celery app of the fault tests' worker (``celery -A tests.inference.fault_worker_app worker``).

It is the shipped app (``mi_platform.celery``: same settings, same tasks) plus one test hook: each
generation chunk sleeps ``INFERENCE_TEST_DELAY_SECONDS`` after claiming its items and before calling
the backend, so a test can kill the worker while a chunk holds its claim. The hook lives here, in
the tests, and is installed in each worker process at start — the app itself carries no test code.
"""

from __future__ import annotations

import logging
import os
import time

from celery.signals import worker_process_init

from mi_platform.celery import app

__all__ = ["app"]

log = logging.getLogger(__name__)


@worker_process_init.connect
def slow_generation_chunks(**_kwargs) -> None:
    delay = float(os.environ.get("INFERENCE_TEST_DELAY_SECONDS") or 0)
    if delay <= 0:
        return
    # Imported here: Django is set up by the time a worker process starts, not when -A loads us.
    from inference import execute

    generate = execute.generate_outcomes

    def slowed(run, items):
        time.sleep(delay)
        return generate(run, items)

    # execute_chunk looks generate_outcomes up when the chunk computes (after its claim).
    execute.generate_outcomes = slowed
    log.warning("fault tests: generation chunks sleep %s s after their claim", delay)  # in worker-test.log

"""Celery tasks of the annotation app: thin — take ids, call actions.

``annotation.run_import`` imports a queued ``ImportBatch`` on the ``cpu`` queue (sent by name from
``actions.request_import`` after commit). It is safe to deliver twice: the action claims the batch with
a conditional update, so a redelivered task finds it done, or takes over a claim gone stale because
its worker died — and the write is one transaction, so a killed attempt leaves nothing behind.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from . import actions

# A live claim elsewhere: look again once it could have gone stale (a worker killed mid-import).
BUSY_RETRIES = 5


@shared_task(name=actions.IMPORT_TASK, bind=True, acks_late=True, max_retries=BUSY_RETRIES)
def run_import(self, batch_id: int) -> dict[str, object]:
    """Import batch ``batch_id``; progress, counts, warnings or error messages are stored on the batch."""
    outcome = actions.run_import(batch_id)
    if outcome == "busy":
        raise self.retry(countdown=settings.MI_IMPORT_CLAIM_STALE_SECONDS)
    return {"batch": batch_id, "outcome": outcome}

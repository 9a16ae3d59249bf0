"""Celery tasks of machine coding: thin — take ids, call :mod:`inference.coders.execute`.

Delivery is at least once (``acks_late``): the training job is claimed with a conditional update and
chunks with the claim kernel, so a second delivery does nothing twice. Sent by name
(``inference.coders.actions``); ``mi_platform.celery`` discovers this module.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from ..chunks import MAX_RETRIES
from . import execute

_TASK_OPTIONS: dict[str, Any] = {"bind": True, "acks_late": True, "reject_on_worker_lost": True,
                                 "max_retries": MAX_RETRIES}


@shared_task(name="inference.coders.tasks.train_classifier", acks_late=True)
def train_classifier(coder_id: int) -> dict[str, Any]:
    """Cross-validate by transcript, then fit the classifier on every label; store it under MI_MODEL_STORE."""
    return execute.train_classifier(coder_id)


@shared_task(name="inference.coders.tasks.code_chunk", **_TASK_OPTIONS)
def code_chunk(self, run_id: int, item_ids: list[int], claim_token: str | None = None) -> dict[str, Any]:
    """Code one chunk of volleys of a machine coding run (any queue: cpu, gpu)."""
    return execute.execute_chunk(self, run_id, item_ids, claim_token)

"""Celery tasks of generation: thin — take ids, call :mod:`inference.execute` or an action, return a summary.

``run_chunk`` (queue ``cpu``) and ``run_chunk_gpu`` (queue ``gpu``) share one body,
:func:`inference.execute.execute_chunk`. Delivery is at least once (``acks_late``,
``reject_on_worker_lost``): a chunk may run twice, or after a worker was killed half-way; the claim
kernel (:mod:`inference.claims`) makes that harmless. Only named transient errors (lost database or
network connections) are retried; anything else a backend raises marks the chunk's items failed
with the message, so the run page shows it. Actions send these tasks by name, never by import;
``mi_platform.celery`` discovers this module (and the recipe's ``inference.recipe.tasks``).
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.utils import timezone

from . import actions, execute
from .chunks import MAX_RETRIES
from .models import RegisteredModel

_TASK_OPTIONS: dict[str, Any] = {
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "max_retries": MAX_RETRIES,
}


@shared_task(name="inference.tasks.run_chunk", **_TASK_OPTIONS)
def run_chunk(self, run_id: int, item_ids: list[int], claim_token: str | None = None) -> dict[str, Any]:
    """Generate one chunk of a run on the ``cpu`` queue (transformers, OpenAI-compatible HTTP)."""
    return execute.execute_chunk(self, run_id, item_ids, claim_token)


@shared_task(name="inference.tasks.run_chunk_gpu", **_TASK_OPTIONS)
def run_chunk_gpu(self, run_id: int, item_ids: list[int], claim_token: str | None = None) -> dict[str, Any]:
    """Generate one chunk of a run on the ``gpu`` queue (vLLM; its engine stays loaded per process)."""
    return execute.execute_chunk(self, run_id, item_ids, claim_token)


@shared_task(name="inference.tasks.test_model")
def test_model(model_id: int) -> dict[str, Any]:
    """ "Test this model" on a worker of the model's queue; the result is read from the result backend."""
    model = RegisteredModel.objects.filter(pk=model_id).first()
    if model is None:
        return {"model": model_id, "ok": False, "problems": [f"model {model_id} no longer exists"]}
    problems = actions.test_model(model)
    return {"model": model_id, "ok": not problems, "problems": problems, "at": timezone.now().isoformat()}

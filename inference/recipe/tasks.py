"""Celery tasks of the recipe: thin — take ids, call :mod:`.execute`, return a summary.

Delivery is at least once (``acks_late``, ``reject_on_worker_lost``). A transformation chunk
claims its items through the claim kernel (:mod:`inference.claims`), so a duplicate or a
redelivery after a killed worker loses and duplicates nothing. A fine-tuning job is claimed by the
delivery's task id: the same task delivered again continues the training from its last checkpoint
(see :func:`.execute.run_finetune`); any other delivery finds it taken and exits.

Celery discovers this module like every app's ``tasks`` (``mi_platform.celery`` lists the recipe
package); actions send these tasks by name.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from inference import claims
from inference.chunks import MAX_RETRIES

from . import execute


@shared_task(
    name="inference.recipe.tasks.transform_chunk",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
)
def transform_chunk(self, job_id: int, item_ids: list[int], claim_token: str | None = None) -> dict[str, Any]:
    """Rewrite one chunk of a transformation job (queue ``cpu``, or ``gpu`` for vLLM models)."""
    return execute.execute_transform_chunk(self, job_id, item_ids, claim_token)


@shared_task(name="inference.recipe.tasks.finetune", bind=True, acks_late=True, reject_on_worker_lost=True)
def finetune(self, job_id: int) -> dict[str, Any]:
    """Run one LoRA fine-tuning job (queue ``gpu`` by default; ``cpu`` for the tiny demo model)."""
    token = getattr(self.request, "id", None) or claims.new_claim_token()
    return {"job": job_id, "status": execute.run_finetune(job_id, token)}

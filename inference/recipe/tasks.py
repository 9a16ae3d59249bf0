"""Celery tasks of the recipe: thin — take ids, claim, call :mod:`.execute`, store, finish.

Delivery is at least once (``acks_late``, ``reject_on_worker_lost``). A transformation chunk
uses the claim/store rules of :mod:`.actions`, so a duplicate or a redelivery after a killed
worker loses and duplicates nothing. A fine-tuning job is claimed by the delivery's task id: the
same task delivered again continues the training from its last checkpoint (see
:func:`.execute.run_finetune`); any other delivery finds it taken and exits.

Celery's autodiscovery imports only ``inference.tasks``; ``inference.recipe_models`` (loaded in
every process with the models) imports this module so workers know these tasks.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from inference.chunks import MAX_RETRIES, ChunkSteps, run_claimed_chunk, seconds_until_foreign_claims_go_stale


@shared_task(
    name="inference.recipe.tasks.transform_chunk",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
)
def transform_chunk(self, job_id: int, item_ids: list[int], claim_token: str | None = None) -> dict[str, Any]:
    """Rewrite one chunk of a transformation job (queue ``cpu``, or ``gpu`` for vLLM models)."""
    return execute_transform_chunk(self, job_id, item_ids, claim_token)


def execute_transform_chunk(
    task, job_id: int, item_ids: list[int], claim_token: str | None = None
) -> dict[str, Any]:
    """The body of :func:`transform_chunk`; ``task`` is None when called directly (commands, tests)."""
    from inference.recipe_models import TransformationItem, TransformationJob

    from . import actions, execute

    job = TransformationJob.objects.select_related("prompt", "judge_prompt").filter(pk=job_id).first()
    if job is None:
        return {"job": job_id, "claimed": 0, "skipped": "no such job"}
    if job.status in (TransformationJob.Status.CANCELLED, TransformationJob.Status.DONE):
        return {"job": job_id, "claimed": 0, "skipped": job.status}
    token = claim_token or (getattr(getattr(task, "request", None), "id", None) or actions.new_claim_token())
    steps = ChunkSteps(
        claim=lambda token: actions.claim_transformation_items(job, item_ids, token),
        foreign_wait=lambda token: seconds_until_foreign_claims_go_stale(
            TransformationItem, item_ids, token, actions.claim_stale_seconds()
        ),
        compute=lambda items: execute.transformation_outcomes(job, items),
        store=lambda token, outcomes: actions.store_transformation_results(job, token, outcomes),
        release=actions.release_transformation_claims,
        finish=lambda: actions.finish_transformation_if_complete(job),
    )
    result = run_claimed_chunk(task, token, steps)
    if not result.items:
        return {"job": job_id, "claimed": 0}
    accepted = sum(1 for o in result.outcomes.values() if o.check is not None and o.check.ok and not o.error)
    return {"job": job_id, "claimed": len(result.items), "written": result.written, "accepted": accepted}


@shared_task(name="inference.recipe.tasks.finetune", bind=True, acks_late=True, reject_on_worker_lost=True)
def finetune(self, job_id: int) -> dict[str, Any]:
    """Run one LoRA fine-tuning job (queue ``gpu`` by default; ``cpu`` for the tiny demo model)."""
    from . import actions, execute

    token = getattr(self.request, "id", None) or actions.new_claim_token()
    return {"job": job_id, "status": execute.run_finetune(job_id, token)}

"""Celery tasks of the recipe: thin — take ids, claim, call :mod:`.execute`, store, finish.

Delivery is at least once (``acks_late``, ``reject_on_worker_lost``). A transformation chunk
uses the claim/store rules of :mod:`.actions`, so a duplicate or a redelivery after a killed
worker loses and duplicates nothing. A fine-tuning job is claimed by the delivery's task id: the
same task delivered again restarts the training; any other delivery finds it taken and exits.

Celery's autodiscovery imports only ``inference.tasks``; ``inference.recipe_models`` (loaded in
every process with the models) imports this module so workers know these tasks.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError
from django.utils import timezone

# Connection-level failures a later attempt can cure; anything else is recorded on the item/job.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (ConnectionError, OperationalError, InterfaceError)


def _backoff(task) -> int:
    retries = getattr(getattr(task, "request", None), "retries", 0) or 0
    return min(60, 2 ** (retries + 1))


@shared_task(
    name="inference.recipe.tasks.transform_chunk",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=5,
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
    try:
        items = actions.claim_transformation_items(job, item_ids, token)
    except TRANSIENT_ERRORS as error:
        if task is None:
            raise
        raise task.retry(exc=error, countdown=_backoff(task)) from error
    if not items:
        first_claim = (
            TransformationItem.objects.filter(id__in=item_ids, status=TransformationItem.Status.CLAIMED)
            .exclude(claim_token=token)
            .order_by("claimed_at")
            .values_list("claimed_at", flat=True)
            .first()
        )
        if first_claim is not None and task is not None:
            # Another delivery holds these items: if its worker died, its claim goes stale and we take over.
            stale_at = first_claim + timedelta(seconds=actions.claim_stale_seconds())
            raise task.retry(countdown=max(1, int((stale_at - timezone.now()).total_seconds()) + 1))
        actions.finish_transformation_if_complete(job)
        return {"job": job_id, "claimed": 0}
    try:
        outcomes = execute.transformation_outcomes(job, items)
        written = actions.store_transformation_results(job, token, outcomes)
    except TRANSIENT_ERRORS as error:
        try:
            actions.release_transformation_claims(token)
        except TRANSIENT_ERRORS:
            pass  # the retry re-claims them with the same token
        if task is None:
            raise
        raise task.retry(exc=error, countdown=_backoff(task), kwargs={"claim_token": token}) from error
    actions.finish_transformation_if_complete(job)
    accepted = sum(1 for o in outcomes.values() if o.check is not None and o.check.ok and not o.error)
    return {"job": job_id, "claimed": len(items), "written": written, "accepted": accepted}


@shared_task(name="inference.recipe.tasks.finetune", bind=True, acks_late=True, reject_on_worker_lost=True)
def finetune(self, job_id: int) -> dict[str, Any]:
    """Run one LoRA fine-tuning job (queue ``gpu`` by default; ``cpu`` for the tiny demo model)."""
    from . import actions, execute

    token = getattr(self.request, "id", None) or actions.new_claim_token()
    return {"job": job_id, "status": execute.run_finetune(job_id, token)}

"""Celery tasks of evaluation: thin — take ids, call :mod:`evaluation.actions`, record the outcome.

``evaluation.compute_run_metrics`` is sent *by name* by ``inference`` when a run finishes (inference
never imports evaluation), and by the dashboard's "compute" button. ``evaluation.run_export`` writes
an ``ExportJob``'s file with progress. Both are safe to run twice: the metric report is replaced, the
export job is claimed (``annotation.claims``): written once, by one delivery, to a temporary file
of its own that is renamed into place.
"""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from inference.models import GenerationRun

from . import actions

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (ConnectionError, OperationalError, InterfaceError)


@shared_task(
    name="evaluation.compute_run_metrics", bind=True, acks_late=True, autoretry_for=TRANSIENT_ERRORS,
    max_retries=3, retry_backoff=True,
)
def compute_run_metrics(self, run_id: int) -> dict[str, object]:
    """Score generation run ``run_id`` (BLEU-4, ROUGE, length, distinct, empty rate) into its MetricReport."""
    run = GenerationRun.objects.select_related("study", "model").filter(pk=run_id).first()
    if run is None:
        return {"run": run_id, "ok": False, "error": "run no longer exists"}
    try:
        report = actions.compute_run_metrics(run)
    except actions.ActionError as exc:
        return {"run": run_id, "ok": False, "error": str(exc)}
    return {"run": run_id, "ok": True, "n_rounds": report.n_rounds, "pooled": report.pooled}


@shared_task(name="evaluation.run_export", bind=True, acks_late=True, max_retries=5)
def run_export(self, job_id: int) -> dict[str, object]:
    """Write export job ``job_id``; progress (0–1) is stored on the job as it goes.

    A delivery that finds the job held by another live one retries when that claim would go stale
    (the other worker may have died with the job running); it never writes alongside it.
    """
    result = actions.run_export_job(job_id)
    wait = result.pop("retry_in", None)
    if wait is not None and not self.request.is_eager:
        raise self.retry(countdown=wait)
    return result

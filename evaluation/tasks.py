"""Celery tasks of evaluation: thin — take ids, call the evaluation functions, record the outcome.

``evaluation.compute_run_metrics`` is sent *by name* by ``inference`` when a run finishes (inference
never imports evaluation). ``evaluation.run_export`` writes an ``ExportJob``'s file with progress.
Both are safe to run twice: the metric report is replaced, the export file is written to a temporary
name and renamed into place.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from annotation.models import CodingRound
from inference.models import GenerationRun

from . import exports, services
from .models import ExportJob

log = logging.getLogger(__name__)

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
        report = services.compute_run_metrics(run)
    except services.ActionError as exc:
        return {"run": run_id, "ok": False, "error": str(exc)}
    return {"run": run_id, "ok": True, "n_rounds": report.n_rounds, "pooled": report.pooled}


def export_path(job: ExportJob, coding_round: CodingRound | None) -> Path:
    name = exports.export_filename(job.study, job.kind, job.format, coding_round)
    return Path(settings.MI_EXPORT_DIR) / f"job-{job.pk}" / name


@shared_task(name="evaluation.run_export", bind=True, acks_late=True)
def run_export(self, job_id: int) -> dict[str, object]:
    """Write export job ``job_id``; progress (0–1) is stored on the job as it goes."""
    # Claim: only a queued job, or one a killed worker left running (redelivered), is (re)started.
    claimed = ExportJob.objects.filter(
        pk=job_id, status__in=[ExportJob.Status.QUEUED, ExportJob.Status.RUNNING]
    ).update(status=ExportJob.Status.RUNNING, progress=0.0, error="")
    if not claimed:
        return {"job": job_id, "ok": False, "error": "not queued"}
    job = ExportJob.objects.select_related("study").get(pk=job_id)
    round_id = (job.options or {}).get("round")
    coding_round = CodingRound.objects.filter(study=job.study, pk=round_id).first() if round_id else None
    target = export_path(job, coding_round)
    partial = target.with_name(target.name + ".part")
    last = [0.0]

    def progress(fraction: float) -> None:
        # Throttled: a 240,000-row export would otherwise write thousands of progress updates.
        if fraction - last[0] >= 0.02:
            last[0] = fraction
            ExportJob.objects.filter(pk=job_id).update(progress=min(fraction, 0.99))

    try:
        rows = exports.write_export(job.study, job.kind, job.format, partial, coding_round=coding_round,
                                    progress=progress)
        os.replace(partial, target)
    except Exception as exc:
        partial.unlink(missing_ok=True)
        log.exception("export job %s failed", job_id)
        ExportJob.objects.filter(pk=job_id).update(
            status=ExportJob.Status.FAILED, error=f"{type(exc).__name__}: {exc}", finished_at=timezone.now()
        )
        return {"job": job_id, "ok": False, "error": str(exc)}
    ExportJob.objects.filter(pk=job_id).update(
        status=ExportJob.Status.DONE, progress=1.0, rows=rows, file_path=str(target), finished_at=timezone.now()
    )
    return {"job": job_id, "ok": True, "rows": rows, "path": str(target)}

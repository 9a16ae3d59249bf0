"""Every state change of evaluation: score a generation run, queue an export and write it.

Atomic; tasks are sent by name after commit (``annotation.claims.send_after_commit``), so this module
never imports ``evaluation.tasks`` — the tasks import it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotation import claims
from annotation.errors import ActionError
from annotation.models import CodingRound, Study
from inference.models import GenerationItem, GenerationRun

from . import exports, metrics
from .exports import check_export
from .models import ExportJob, MetricReport
from .queries import run_pairs

log = logging.getLogger(__name__)

EXPORT_TASK = "evaluation.run_export"
METRICS_TASK = "evaluation.compute_run_metrics"

__all__ = [
    "ActionError",
    "compute_run_metrics",
    "request_export",
    "request_run_metrics",
    "run_export_job",
]


@transaction.atomic
def request_export(
    study: Study, *, kind: str, fmt: str, requested_by=None, coding_round: CodingRound | None = None,
    group_by: str = "source",
) -> ExportJob:
    """Queue an export; the ``evaluation.run_export`` task writes the file (:func:`run_export_job`) after commit."""
    check_export(kind, fmt)
    if coding_round is not None and coding_round.study_id != study.pk:
        raise ActionError(f"Round {coding_round.pk} does not belong to study {study.slug}.")
    job = ExportJob.objects.create(
        study=study,
        requested_by=requested_by,
        kind=kind,
        format=fmt,
        options={"round": coding_round.pk if coding_round is not None else None, "group_by": group_by},
    )
    claims.send_after_commit(EXPORT_TASK, [[job.pk]])
    return job


def compute_run_metrics(run: GenerationRun) -> MetricReport:
    """Score every finished round of ``run`` against the gold counselor turn and store the report.

    BLEU-4 and ROUGE as docs/metrics.md defines them (``evaluation.metrics``), in the study's language. Rounds that
    did not finish are left out and counted in ``extra["n_not_done"]``. Re-running replaces the report.
    """
    language = run.study.language if run.study.language in metrics.LANGUAGES else "en"
    pairs, not_done = run_pairs(run)
    if not pairs:
        raise ActionError(f"Run {run.pk} has no finished rounds to score yet.")
    report = metrics.score_rounds(pairs, language)
    data = report.to_dict()
    with transaction.atomic():
        stored, _created = MetricReport.objects.update_or_create(
            run=run,
            defaults={
                "language": report.language,
                "tokenizer": report.tokenizer,
                "n_rounds": report.n_rounds,
                "pooled": asdict(report.pooled),
                "per_dialogue": data["per_dialogue"],
                "per_round": data["per_round"],
                "extra": {
                    "n_dialogues": report.n_dialogues,
                    "distinct_1": report.distinct_1,
                    "distinct_2": report.distinct_2,
                    "empty_rate": report.empty_rate,
                    "n_not_done": not_done,
                    "definitions": report.definitions,
                    "model": run.model.name,
                    "scored_at": timezone.now().isoformat(),
                },
            },
        )
    return stored


def request_run_metrics(run: GenerationRun) -> None:
    """Queue ``evaluation.compute_run_metrics`` for the run (the dashboard's "compute" button)."""
    if not GenerationItem.objects.filter(run=run, status=GenerationItem.Status.DONE).exists():
        raise ActionError(f"Run {run.pk} has no finished rounds to score yet.")
    claims.send_after_commit(METRICS_TASK, [[run.pk]])


# --- an export job on its worker ------------------------------------------------------------------


def export_path(job: ExportJob, coding_round: CodingRound | None) -> Path:
    name = exports.export_filename(job.study, job.kind, job.format, coding_round)
    return Path(settings.MI_EXPORT_DIR) / f"job-{job.pk}" / name


class _ClaimLost(Exception):
    """Another delivery took the job over (ours went stale): stop, write nothing."""


def run_export_job(job_id: int) -> dict[str, object]:
    """Write export job ``job_id`` (the body of the ``evaluation.run_export`` task); progress (0–1) is
    stored on the job as it goes.

    The job is claimed with the claim kernel (``annotation.claims``): a queued job, or a running one
    whose claim went stale (its worker died), is taken — once; a delivery that finds a live claim
    returns ``busy`` with ``retry_in`` (seconds until that claim would go stale). Each delivery writes
    its own temporary file (named by its token) and renames it into place only while it still holds
    the claim, under the job's row lock: two deliveries never write the same file, and a late writer
    whose claim was taken over leaves nothing behind.
    """
    token = claims.new_claim_token()
    if not claims.claim(ExportJob, [job_id], token):
        job = ExportJob.objects.filter(pk=job_id).first()
        if job is None:
            return {"job": job_id, "ok": False, "error": "gone"}
        if job.status in (ExportJob.Status.DONE, ExportJob.Status.FAILED):
            return {"job": job_id, "ok": False, "error": "finished"}
        wait = claims.seconds_until_foreign_claims_go_stale(ExportJob, [job_id], token)
        return {"job": job_id, "ok": False, "error": "busy", "retry_in": wait or 1}
    mine = ExportJob.objects.filter(claims.held_by(ExportJob, token), pk=job_id)
    mine.update(progress=0.0, error="")
    job = ExportJob.objects.select_related("study").get(pk=job_id)
    round_id = (job.options or {}).get("round")
    coding_round = CodingRound.objects.filter(study=job.study, pk=round_id).first() if round_id else None
    target = export_path(job, coding_round)
    partial = target.with_name(f"{target.name}.{token}.part")
    last = [0.0]

    def progress(fraction: float) -> None:
        # Throttled: a 240,000-row export would otherwise write thousands of progress updates. Each
        # update is also the claim's heartbeat; finding the claim gone stops the write.
        if fraction - last[0] >= 0.02:
            last[0] = fraction
            if not mine.update(progress=min(fraction, 0.99), claimed_at=timezone.now()):
                raise _ClaimLost()

    try:
        rows = exports.write_export(job.study, job.kind, job.format, partial, coding_round=coding_round,
                                    progress=progress, group_by=(job.options or {}).get("group_by") or "source")
        with transaction.atomic():
            # Rename only while the claim holds (row lock): a taken-over writer renames nothing.
            if not ExportJob.objects.select_for_update().filter(claims.held_by(ExportJob, token), pk=job_id).exists():
                raise _ClaimLost()
            os.replace(partial, target)
            mine.update(status=ExportJob.Status.DONE, progress=1.0, rows=rows, file_path=str(target),
                        finished_at=timezone.now())
    except _ClaimLost:
        partial.unlink(missing_ok=True)
        log.warning("export job %s was taken over by another delivery; this one wrote nothing", job_id)
        return {"job": job_id, "ok": False, "error": "lost"}
    except Exception as exc:
        partial.unlink(missing_ok=True)
        log.exception("export job %s failed", job_id)
        mine.update(status=ExportJob.Status.FAILED, error=f"{type(exc).__name__}: {exc}", finished_at=timezone.now())
        return {"job": job_id, "ok": False, "error": str(exc)}
    return {"job": job_id, "ok": True, "rows": rows, "path": str(target)}

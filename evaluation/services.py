"""Evaluation state changes: score a generation run, queue an export. Atomic; tasks enqueued on commit."""

from __future__ import annotations

from dataclasses import asdict

from django.db import transaction
from django.utils import timezone

from annotation.errors import ActionError
from annotation.models import CodingRound, Study
from inference.models import GenerationItem, GenerationRun

from . import metrics
from .models import ExportJob, MetricReport

EXPORT_KINDS: dict[str, str] = {
    "codes": "Every code, long format (one row per utterance per coder)",
    "summaries": "MITI summary per submitted coding",
    "aggregates": "Per-source and per-coder aggregates",
    "reliability": "Reliability tables (ICC, alpha, kappa, drift)",
    "metrics": "Automatic metrics per run (BLEU-4, ROUGE)",
    "all": "All tables (one workbook / a zip of CSV files)",
    "report": "Printable MITI report",
}
# Which formats each kind can be written in.
EXPORT_FORMATS: dict[str, tuple[str, ...]] = {
    "codes": ("csv", "xlsx"),
    "summaries": ("csv", "xlsx"),
    "aggregates": ("csv", "xlsx"),
    "reliability": ("csv", "xlsx"),
    "metrics": ("csv", "xlsx"),
    "all": ("xlsx", "csv"),
    "report": ("html", "pdf"),
}


def check_export(kind: str, fmt: str) -> None:
    """Raise ActionError unless ``kind`` can be exported as ``fmt``."""
    if kind not in EXPORT_FORMATS:
        raise ActionError(f"Unknown export kind '{kind}'; use one of: {', '.join(EXPORT_FORMATS)}.")
    if fmt not in EXPORT_FORMATS[kind]:
        raise ActionError(f"'{kind}' can be exported as {' or '.join(EXPORT_FORMATS[kind])}, not '{fmt}'.")


@transaction.atomic
def request_export(
    study: Study, *, kind: str, fmt: str, requested_by=None, coding_round: CodingRound | None = None
) -> ExportJob:
    """Queue an export; the ``evaluation.run_export`` task writes the file after commit."""
    check_export(kind, fmt)
    if coding_round is not None and coding_round.study_id != study.pk:
        raise ActionError(f"Round {coding_round.pk} does not belong to study {study.slug}.")
    job = ExportJob.objects.create(
        study=study,
        requested_by=requested_by,
        kind=kind,
        format=fmt,
        options={"round": coding_round.pk if coding_round is not None else None},
    )

    def send() -> None:
        from . import tasks

        tasks.run_export.delay(job.pk)

    transaction.on_commit(send)
    return job


def run_pairs(run: GenerationRun) -> tuple[list[metrics.RoundPair], int]:
    """(reply, gold reply) per finished round of the run, and the number of rounds that failed."""
    pairs = [
        metrics.RoundPair(dialogue_id, round_index, response, reference)
        for dialogue_id, round_index, response, reference in GenerationItem.objects.filter(
            run=run, status=GenerationItem.Status.DONE
        )
        .order_by("dialogue_id", "round_index")
        .values_list("dialogue_id", "round_index", "response", "reference")
    ]
    failed = GenerationItem.objects.filter(run=run).exclude(status=GenerationItem.Status.DONE).count()
    return pairs, failed


def compute_run_metrics(run: GenerationRun) -> MetricReport:
    """Score every finished round of ``run`` against the gold counselor turn and store the report.

    BLEU-4 and ROUGE as METRICS.md §2 (``evaluation.metrics``), in the study's language. Rounds that
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
    run_id = run.pk

    def send() -> None:
        from . import tasks

        tasks.compute_run_metrics.delay(run_id)

    transaction.on_commit(send)

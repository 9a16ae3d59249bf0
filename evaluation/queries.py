"""Permission-aware reads for the evaluation pages, exports and API.

Coding progress is annotation's (``annotation.queries.coding_progress``: one grouped query for the
round pages, the API, this dashboard and the report). Everything here is for a study's coordinators (and site staff): a coder of the study gets 403, anybody
else 404 (``annotation.queries.study_for``). Coders never see results, reliability, sources or models.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from annotation import queries as annotation_queries
from annotation.models import CodingRound, Study
from inference.models import GenerationItem, GenerationRun, MachineCoder

from . import metrics
from .models import ExportJob, MetricReport

COORDINATOR = annotation_queries.COORDINATOR


def study_for_results(user, slug: str) -> Study:
    """The study if ``user`` coordinates it: 404 for non-members, 403 for its coders."""
    return annotation_queries.study_for(user, slug, role=COORDINATOR)


def round_for_results(study: Study, round_id: object) -> CodingRound | None:
    """The round named by a ``?round=`` value, None for "all rounds"; 404 for a round of another study."""
    if round_id in (None, "", "all"):
        return None
    try:
        pk = int(str(round_id))
    except ValueError:
        raise Http404("No such coding round.") from None
    coding_round = CodingRound.objects.filter(study=study, pk=pk).first()
    if coding_round is None:
        raise Http404("No such coding round.")
    return coding_round


def rounds_of(study: Study) -> list[CodingRound]:
    """The rounds the results pages offer. Calibration rounds are training against gold, never study
    results (their codings are out of results): they are the calibration page's, not a choice here."""
    return list(
        CodingRound.objects.filter(study=study).exclude(purpose=CodingRound.Purpose.CALIBRATION)
        .order_by("created_at", "id")
    )


def runs_of(study: Study) -> list[GenerationRun]:
    """The study's generation runs with model, base model and metric report, in one query."""
    return list(
        GenerationRun.objects.filter(study=study)
        .select_related("model", "model__base_of", "metric_report")
        .order_by("model__name", "created_at")
    )


def run_for(user, study: Study, run_id: int) -> GenerationRun:
    if not annotation_queries.is_coordinator(user, study):
        raise PermissionDenied("Only the study's coordinators can see automatic metrics.")
    run = GenerationRun.objects.filter(study=study, pk=run_id).select_related("model", "study").first()
    if run is None:
        raise Http404("No such generation run.")
    return run


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


def metric_reports(study: Study) -> list[MetricReport]:
    return list(
        MetricReport.objects.filter(run__study=study).select_related("run", "run__model", "run__model__base_of")
    )


def export_jobs_of(study: Study, limit: int = 20) -> list[ExportJob]:
    return list(ExportJob.objects.filter(study=study).select_related("requested_by")[:limit])


def export_job_for(user, study: Study, pk: int) -> ExportJob:
    """An export of the study (coordinators only; 404 for another study's job)."""
    if not annotation_queries.is_coordinator(user, study):
        raise PermissionDenied("Only the study's coordinators can download exports.")
    job = ExportJob.objects.filter(study=study, pk=pk).first()
    if job is None:
        raise Http404("No such export.")
    return job


def machine_coders_of(study: Study, coding_round: CodingRound | None) -> list[MachineCoder]:
    """The study's machine coders that coded ``coding_round`` (none without a round)."""
    if coding_round is None:
        return []
    return list(
        MachineCoder.objects.filter(
            study=study, service_user__assignments__coding_round=coding_round
        ).distinct().order_by("name")
    )


def machine_coder_for(study: Study, pk: object) -> MachineCoder | None:
    if not isinstance(pk, str) or not pk.isdigit():
        return None
    return MachineCoder.objects.filter(study=study, pk=int(pk)).first()

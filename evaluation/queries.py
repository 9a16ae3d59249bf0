"""Permission-aware reads for the evaluation pages, exports and API.

Everything here is for a study's coordinators (and site staff): a coder of the study gets 403, anybody
else 404 (``annotation.queries.study_for``). Coders never see results, reliability, sources or models.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import Http404

from annotation import queries as annotation_queries
from annotation.models import Assignment, CodingRound, Study
from inference.models import GenerationRun

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
    return list(CodingRound.objects.filter(study=study).order_by("created_at", "id"))


@dataclass(frozen=True)
class ProgressRow:
    round_id: int
    round_name: str
    coder: str
    kind: str
    total: int
    submitted: int
    in_progress: int
    pending: int

    @property
    def percent(self) -> float:
        return 100.0 * self.submitted / self.total if self.total else 0.0


def coding_progress(study: Study, coding_round: CodingRound | None = None) -> list[ProgressRow]:
    """Assignments per round, coder and kind by status, in one grouped query."""
    qs = Assignment.objects.filter(coding_round__study=study)
    if coding_round is not None:
        qs = qs.filter(coding_round=coding_round)
    grouped = (
        qs.values("coding_round_id", "coding_round__name", "coder__username", "kind")
        .annotate(
            total=Count("id"),
            submitted=Count("id", filter=Q(status=Assignment.Status.SUBMITTED)),
            in_progress=Count("id", filter=Q(status=Assignment.Status.IN_PROGRESS)),
            pending=Count("id", filter=Q(status=Assignment.Status.PENDING)),
        )
        .order_by("coding_round__created_at", "coding_round_id", "kind", "coder__username")
    )
    return [
        ProgressRow(
            g["coding_round_id"], g["coding_round__name"], g["coder__username"], g["kind"],
            g["total"], g["submitted"], g["in_progress"], g["pending"],
        )
        for g in grouped
    ]


def round_totals(rows: list[ProgressRow]) -> list[dict[str, object]]:
    """Per round: coding assignments submitted / total (consensus counted separately)."""
    totals: dict[int, dict[str, object]] = {}
    for row in rows:
        entry = totals.setdefault(
            row.round_id,
            {"round_id": row.round_id, "round": row.round_name, "total": 0, "submitted": 0, "consensus": 0},
        )
        if row.kind == Assignment.Kind.CONSENSUS:
            entry["consensus"] = int(entry["consensus"]) + row.submitted
        else:
            entry["total"] = int(entry["total"]) + row.total
            entry["submitted"] = int(entry["submitted"]) + row.submitted
    for entry in totals.values():
        total = int(entry["total"])
        entry["percent"] = 100.0 * int(entry["submitted"]) / total if total else 0.0
    return list(totals.values())


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

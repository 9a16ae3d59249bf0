"""Machine API of the evaluation app (DRF, thin): the numbers of the results pages, and exports.

Every read goes through ``evaluation.queries`` and ``evaluation.results`` — the same code the pages,
the exports and the report use — so the API cannot disagree with them. Coordinators only: a coder of
the study gets 403, anybody else 404. Long work (exports, metrics) is queued, answered with 202.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response

from annotation import miti
from annotation import queries as annotation_queries
from annotation.accounts.api import StudyScopedView, choice_param
from annotation.accounts.serializers import ErrorSerializer
from annotation.accounts.validation import CheckedJSONParser

from . import actions, grouping, queries
from . import serializers as s
from .results import build_results, metric_rows
from .summaries import CodingSummary, SourceInfo, load_summaries

ROUND_PARAMETER = OpenApiParameter(
    "round", int, required=False, description="Only this coding round (default: all rounds)."
)
GROUP_BY_PARAMETER = OpenApiParameter(
    "group_by", str, required=False,
    description="Split each source's results by `split`, `coder` or a dialogue metadata field "
    "(`metadata.<key>`, e.g. `metadata.mi_quality`); default `source`.",
)
GROUP_PARAMETER = OpenApiParameter(
    "group", str, required=False,
    description="Only the transcripts of this group of `group_by` (e.g. `high`): reliability of one group.",
)


def finite(value):
    """JSON has no NaN or infinity: an undefined number is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def _source(info: SourceInfo) -> dict:
    return {"id": info.id, "label": info.label, "kind": info.kind, "generation_run_id": info.generation_run_id}


def summary_row(summary: CodingSummary, sources: dict[int, SourceInfo]) -> dict:
    info = sources.get(summary.source_id) or SourceInfo(summary.source_id, "", "", None)
    return {
        "assignment": summary.assignment_id, "round": summary.round_id, "round_name": summary.round_name,
        "kind": summary.kind, "transcript": summary.transcript_id, "blind_code": summary.blind_code,
        "source": _source(info), "coder": summary.coder, "submitted_at": summary.submitted_at,
        "globals_rated": summary.globals_rated, "n_coded": summary.n_coded, "counts": summary.counts,
        "globals": summary.globals, "scores": summary.scores,
        "thresholds": {key: summary.status(key) for key in miti.ALL_SUMMARY_KEYS if key in summary.scores},
    }


class ResultsView(StudyScopedView):
    """A results endpoint: the study for its coordinators, and the ``?round=`` filter as the pages read it."""

    def get_study(self):
        if not hasattr(self, "_study"):
            self._study = queries.study_for_results(self.request.user, self.kwargs["slug"])
        return self._study

    def get_round(self):
        return queries.round_for_results(self.get_study(), self.request.query_params.get("round"))

    def get_results(self, *, per_code: bool = True):
        return build_results(
            self.get_study(), self.get_round(), per_code=per_code,
            group_by=grouping.parse_group_by(self.request.query_params.get("group_by")),
            group=self.request.query_params.get("group") or None,
        )


class ProgressView(ResultsView):
    serializer_class = s.ProgressRowSerializer

    @extend_schema(parameters=[ROUND_PARAMETER], responses=s.ProgressRowSerializer(many=True),
                   summary="Coding progress per round, coder and kind")
    def get(self, request: Request, slug: str) -> Response:
        rows = [
            {"round": r.round_id, "round_name": r.round_name, "coder": r.coder, "kind": r.kind, "total": r.total,
             "submitted": r.submitted, "in_progress": r.in_progress, "pending": r.pending, "percent": r.percent}
            for r in annotation_queries.coding_progress(self.get_study(), self.get_round())
        ]
        return self.paginated(rows, s.ProgressRowSerializer)


class SummaryListView(ResultsView):
    serializer_class = s.SummarySerializer

    @extend_schema(
        parameters=[ROUND_PARAMETER, OpenApiParameter("kind", str, enum=["coding", "consensus"], required=False)],
        responses=s.SummarySerializer(many=True),
        summary="MITI summary per submitted coding (tallies, globals, summary scores, Fair/Good)",
    )
    def get(self, request: Request, slug: str) -> Response:
        data = load_summaries(self.get_study(), self.get_round())
        kind = choice_param(request, "kind", ["coding", "consensus"])
        rows = data.consensus if kind == "consensus" else data.codings if kind == "coding" else [
            *data.codings, *data.consensus]
        rows = sorted(rows, key=lambda r: (r.round_id, r.transcript_id, r.kind, r.coder))
        page = self.paginate_queryset(rows)
        return self.get_paginated_response([finite(summary_row(r, data.sources)) for r in page])


def _stats(stats: dict) -> dict:
    return {key: finite(asdict(value)) for key, value in stats.items()}


class AggregatesView(ResultsView):
    @extend_schema(parameters=[ROUND_PARAMETER, GROUP_BY_PARAMETER, GROUP_PARAMETER], responses=s.AggregatesSerializer,
                   summary="Per-source (final values) and per-coder statistics: mean, SD, n, Fair/Good shares")
    def get(self, request: Request, slug: str) -> Response:
        results = self.get_results(per_code=False)
        body = {
            "note": results.aggregates.note,
            "group_by": results.group_by,
            "per_source": [
                {"source": _source(row.source), "group": row.group, "transcripts": row.transcripts,
                 "consensus": row.consensus, "stats": _stats(row.stats)}
                for row in results.sources
            ],
            "per_coder": [
                {"coder": name, "codings": n, "stats": _stats(stats)} for name, n, stats in results.coders
            ],
        }
        return Response(s.AggregatesSerializer(body).data)


class ReliabilityView(ResultsView):
    @extend_schema(parameters=[ROUND_PARAMETER, GROUP_BY_PARAMETER, GROUP_PARAMETER], responses=s.ReliabilitySerializer,
                   summary="Inter-rater reliability: ICC(2,1)/(2,k) with CIs, alpha, Cohen's/Fleiss' kappa, drift")
    def get(self, request: Request, slug: str) -> Response:
        reliability = self.get_results().reliability
        body = finite(asdict(reliability))
        body["coders"] = sorted(reliability.coders.values())
        body["enough"] = reliability.enough
        return Response(s.ReliabilitySerializer(body).data)


class MetricListView(ResultsView):
    serializer_class = s.MetricRowSerializer

    @extend_schema(responses=s.MetricRowSerializer(many=True),
                   summary="Automatic metrics per run (BLEU-4, ROUGE-1/2/L, length, distinct-n), base before fine-tune")
    def get(self, request: Request, slug: str) -> Response:
        rows = [finite({**asdict(r), "run": r.run_id}) for r in metric_rows(self.get_study())]
        return self.paginated(rows, s.MetricRowSerializer)


class RunMetricsView(ResultsView):
    @extend_schema(request=None, responses={202: s.QueuedSerializer},
                   summary="(Re)compute a run's automatic metrics in the background")
    def post(self, request: Request, slug: str, pk: int) -> Response:
        run = queries.run_for(request.user, self.get_study(), pk)
        actions.request_run_metrics(run)
        return Response({"detail": f"Metrics of run {run.pk} queued."}, status=status.HTTP_202_ACCEPTED)


class ExportListView(ResultsView):
    serializer_class = s.ExportJobSerializer
    parser_classes = [CheckedJSONParser]

    @extend_schema(responses=s.ExportJobSerializer(many=True), summary="Recent exports of the study")
    def get(self, request: Request, slug: str) -> Response:
        study = self.get_study()
        jobs = study.export_jobs.select_related("requested_by", "study").order_by("-created_at", "-id")
        return self.paginated(jobs, s.ExportJobSerializer)

    @extend_schema(request=s.ExportRequestSerializer, responses={202: s.ExportJobSerializer},
                   summary="Queue an export; poll status_url, then fetch download_url")
    def post(self, request: Request, slug: str) -> Response:
        study = self.get_study()
        data = self.valid(s.ExportRequestSerializer)
        coding_round = queries.round_for_results(study, data.get("round"))
        job = actions.request_export(study, kind=data["kind"], fmt=data["format"], requested_by=request.user,
                                      coding_round=coding_round, group_by=data.get("group_by") or "source")
        body = s.ExportJobSerializer(job).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["status_url"]})


class ExportDetailView(ResultsView):
    @extend_schema(responses=s.ExportJobSerializer, summary="An export's status and progress")
    def get(self, request: Request, slug: str, pk: int) -> Response:
        job = queries.export_job_for(request.user, self.get_study(), pk)
        return Response(s.ExportJobSerializer(job).data)


class AnyAcceptNegotiation(BaseContentNegotiation):
    """Downloads answer with the file's own type whatever the Accept header says; errors are JSON."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


_FILE_TYPES = {
    "text/csv": "CSV (one table)", "application/zip": "CSV tables in a zip",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "XLSX workbook",
    "text/html": "printable HTML report", "application/pdf": "PDF report",
    "application/vnd.apache.parquet": "Parquet file (codes, summaries)",
    "application/jsonl": "JSON Lines (codes, exact texts)",
}


class ExportDownloadView(ResultsView):
    content_negotiation_class = AnyAcceptNegotiation

    @extend_schema(
        responses={
            **{(200, media): OpenApiResponse(OpenApiTypes.BINARY, description=text) for media, text in _FILE_TYPES.items()},
            409: OpenApiResponse(ErrorSerializer, description="Not finished yet (or failed)."),
        },
        summary="Download a finished export",
    )
    def get(self, request: Request, slug: str, pk: int):
        job = queries.export_job_for(request.user, self.get_study(), pk)
        if job.status != job.Status.DONE or not job.file_path:
            detail = f"This export is not ready (status {job.status})." + (f" {job.error}" if job.error else "")
            return Response({"detail": detail, "errors": {}}, status=status.HTTP_409_CONFLICT)
        path = Path(job.file_path)
        export_root = Path(settings.MI_EXPORT_DIR).resolve()
        # The path comes from our own task, but never serve anything outside the export folder.
        if not path.resolve().is_relative_to(export_root) or not path.exists():
            raise Http404("The export file is gone; export again.")
        return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)

"""Results pages for coordinators: dashboard, MITI results, reliability, metrics, charts, report, exports.

Function-based views: parse → act → render. Every page checks the coordinator role through
``evaluation.queries`` first (a coder gets 403, anybody else 404), and every page also answers an
HTMX request with its ``panel`` partial, so tab links and the round selector swap only the panel
while the same URLs work as full pages without JavaScript.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django.views.decorators.http import require_GET, require_POST

from annotation import queries as annotation_queries
from annotation.errors import ActionError

from . import actions, charts, exports, grouping, machine_agreement, paper_tables, queries
from .reliability_data import REFERENCE_BANDS
from .results import METRIC_COLUMNS, SUMMARY_TABLE_KEYS, build_results, metric_rows
from .summaries import GLOBAL_KEYS, SCORE_KEYS, TALLY_KEYS

TABS: tuple[tuple[str, str], ...] = (
    ("eval-dashboard", gettext_noop("Overview")),
    ("eval-miti", gettext_noop("MITI results")),
    ("eval-reliability", gettext_noop("Reliability")),
    ("eval-metrics", gettext_noop("Automatic metrics")),
    ("eval-tables", gettext_noop("Tables")),
    ("eval-machine", gettext_noop("Machine vs human")),
    ("eval-exports", gettext_noop("Exports")),
)


def _is_panel_request(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    # A history restore asks for the whole page (htmx lost its cached copy).
    return bool(htmx) and not htmx.history_restore_request


def _page(request: HttpRequest, template: str, context: dict) -> HttpResponse:
    if _is_panel_request(request):
        return render(request, f"{template}#panel", context)
    return render(request, template, context)


def _scope(request: HttpRequest, slug: str):
    """(study, round, group_by, group) from the URL: ``?round=``, ``?group_by=``, ``?group=``."""
    study = queries.study_for_results(request.user, slug)
    coding_round = queries.round_for_results(study, request.GET.get("round"))
    group_by = grouping.parse_group_by(request.GET.get("group_by"))
    group = request.GET.get("group") or None
    return study, coding_round, group_by, group


def _base_context(
    request: HttpRequest, study, tab: str, coding_round=None, group_by: str = grouping.SOURCE, group: str | None = None
) -> dict:
    params = {}
    if coding_round is not None:
        params["round"] = coding_round.pk
    if group_by != grouping.SOURCE:
        params["group_by"] = group_by
    if group:
        params["group"] = group
    round_query = f"?{urlencode(params)}" if params else ""
    return {
        "study": study,
        "tab": tab,
        "tabs": [(name, _(label), reverse(name, args=[study.slug]) + round_query) for name, label in TABS],
        "rounds": queries.rounds_of(study),
        "coding_round": coding_round,
        "round_query": round_query,
        "group_by": group_by,
        "group": group,
        "group_options": grouping.group_options(study) if tab not in ("eval-metrics", "eval-exports") else [],
    }


@login_required
@require_GET
def dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    study, coding_round, group_by, group = _scope(request, slug)
    results = build_results(study, coding_round, per_code=False, group_by=group_by, group=group)
    progress = annotation_queries.coding_progress(study, coding_round)
    context = _base_context(request, study, "eval-dashboard", coding_round, group_by, group) | {
        "results": results,
        "progress": progress,
        "round_totals": annotation_queries.round_totals(progress),
        "score_keys": SUMMARY_TABLE_KEYS,
        "summary_chart": results.chart("summary", "svg").decode("utf-8") if results.sources else "",
        "reference_bands": REFERENCE_BANDS,
        "metric_columns": METRIC_COLUMNS,
    }
    return _page(request, "evaluation/dashboard.html", context)


@login_required
@require_GET
def miti_results(request: HttpRequest, slug: str) -> HttpResponse:
    study, coding_round, group_by, group = _scope(request, slug)
    results = build_results(study, coding_round, per_code=False, group_by=group_by, group=group)
    codings = sorted(
        [*results.summaries.codings, *results.summaries.consensus],
        key=lambda s: (s.source_id, s.blind_code, s.kind, s.coder),
    )
    context = _base_context(request, study, "eval-miti", coding_round, group_by, group) | {
        "results": results,
        "score_keys": SCORE_KEYS,
        "global_keys": GLOBAL_KEYS,
        "tally_keys": TALLY_KEYS,
        "summary_keys": SUMMARY_TABLE_KEYS,
        "codings": codings,
        "summary_chart": results.chart("summary", "svg").decode("utf-8") if results.sources else "",
        "counts_chart": results.chart("counts", "svg").decode("utf-8") if results.sources else "",
    }
    return _page(request, "evaluation/miti.html", context)


def _reliability_context(request: HttpRequest, slug: str, *, per_code: bool) -> tuple[str, dict]:
    study, coding_round, group_by, group = _scope(request, slug)
    results = build_results(study, coding_round, per_code=per_code, group_by=group_by, group=group)
    context = _base_context(request, study, "eval-reliability", coding_round, group_by, group) | {
        "results": results,
        "rel": results.reliability,
        "reference_bands": REFERENCE_BANDS,
        "per_code": per_code,
    }
    if results.reliability.n_transcripts:
        context["icc_chart"] = results.reliability_chart("icc").decode("utf-8")
        if per_code:
            context["kappa_chart"] = results.reliability_chart("kappa").decode("utf-8")
    return "evaluation/reliability.html", context


@login_required
@require_GET
def reliability(request: HttpRequest, slug: str) -> HttpResponse:
    """Reliability; the per-code agreement (11 more passes over every utterance) loads separately."""
    template, context = _reliability_context(request, slug, per_code=False)
    return _page(request, template, context)


@login_required
@require_GET
def machine(request: HttpRequest, slug: str) -> HttpResponse:
    """A machine coder against the coders of one round (``?round=``, ``?coder=``): kappa, alpha, ICC."""
    study, coding_round, _group_by, _group = _scope(request, slug)
    coders = queries.machine_coders_of(study, coding_round)
    chosen = queries.machine_coder_for(study, request.GET.get("coder")) or (coders[0] if coders else None)
    agreement = (
        machine_agreement.machine_agreement(chosen, coding_round)
        if chosen is not None and coding_round is not None else None
    )
    context = _base_context(request, study, "eval-machine", coding_round) | {
        "machine_coders": coders, "chosen": chosen, "agreement": agreement,
    }
    return _page(request, "evaluation/machine.html", context)


@login_required
@require_GET
def reliability_codes(request: HttpRequest, slug: str) -> HttpResponse:
    """Per-code agreement: the ``per_code`` partial for HTMX, else the whole reliability page with it."""
    template, context = _reliability_context(request, slug, per_code=True)
    if _is_panel_request(request):
        return render(request, f"{template}#per_code", context)
    return render(request, template, context)


@login_required
@require_GET
def metrics(request: HttpRequest, slug: str) -> HttpResponse:
    study = queries.study_for_results(request.user, slug)
    context = _base_context(request, study, "eval-metrics") | {
        "metrics": metric_rows(study),
        "metric_columns": METRIC_COLUMNS,
    }
    return _page(request, "evaluation/metrics.html", context)


@login_required
@require_GET
def tables(request: HttpRequest, slug: str) -> HttpResponse:
    """The paper's tables (metrics, MITI per source, reliability, paired comparisons) and their downloads."""
    study, coding_round, group_by, group = _scope(request, slug)
    results = build_results(study, coding_round, per_code=False, group_by=group_by, group=group)
    context = _base_context(request, study, "eval-tables", coding_round, group_by, group) | {
        "tables": paper_tables.paper_tables(results).display(),
        "table_formats": [("tex", "LaTeX (booktabs)"), ("md", "Markdown"), ("xlsx", "XLSX"), ("csv", "CSV (zip)")],
    }
    return _page(request, "evaluation/tables.html", context)


@login_required
@require_GET
def tables_download(request: HttpRequest, slug: str, fmt: str) -> HttpResponse:
    study, coding_round, group_by, group = _scope(request, slug)
    if fmt not in paper_tables.FORMATS:
        raise Http404("No such format.")
    results = build_results(study, coding_round, per_code=False, group_by=group_by, group=group)
    ext, content_type = paper_tables.FORMATS[fmt]
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / f"tables.{ext}"
        paper_tables.write(paper_tables.paper_tables(results), fmt, out)
        data = out.read_bytes()
    parts = [study.slug, "tables"]
    if coding_round is not None:
        parts.append(f"round{coding_round.pk}")
    if group_by != grouping.SOURCE:
        parts.append(group_by.replace(".", "-"))
    if group:
        parts.append(slugify(group) or "group")
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{"-".join(parts)}.{ext}"'
    return response


@login_required
@require_POST
def compute_metrics(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    study = queries.study_for_results(request.user, slug)
    run = queries.run_for(request.user, study, run_id)
    try:
        actions.request_run_metrics(run)
    except ActionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Scoring run %(run)s was queued; reload in a moment.") % {"run": run.pk})
    return redirect("eval-metrics", slug=study.slug)


@login_required
@require_GET
def chart(request: HttpRequest, slug: str, name: str, fmt: str) -> HttpResponse:
    study, coding_round, group_by, group = _scope(request, slug)
    if name not in charts.CHARTS or fmt not in ("svg", "png"):
        raise Http404("No such chart.")
    data = build_results(study, coding_round, per_code=False, group_by=group_by, group=group).chart(name, fmt)
    response = HttpResponse(data, content_type="image/svg+xml" if fmt == "svg" else "image/png")
    if request.GET.get("download"):
        part = f"-round{coding_round.pk}" if coding_round is not None else ""
        response["Content-Disposition"] = f'attachment; filename="{study.slug}-{name}{part}.{fmt}"'
    return response


@login_required
@require_GET
def report(request: HttpRequest, slug: str) -> HttpResponse:
    """The printable MITI report (HTML with print CSS); the PDF is made by an export job."""
    from . import report as report_module

    study, coding_round, group_by, group = _scope(request, slug)
    # Per-code agreement is left to the exported report (a task): on a large study it takes seconds.
    results = build_results(study, coding_round, per_code=False, group_by=group_by, group=group)
    return HttpResponse(report_module.render_html(results))


@login_required
def export_list(request: HttpRequest, slug: str) -> HttpResponse:
    study = queries.study_for_results(request.user, slug)
    if request.method == "POST":
        kind, fmt = request.POST.get("kind", ""), request.POST.get("format", "")
        try:
            coding_round = queries.round_for_results(study, request.POST.get("round"))
            group_by = grouping.parse_group_by(request.POST.get("group_by"))
            job = actions.request_export(
                study, kind=kind, fmt=fmt, requested_by=request.user, coding_round=coding_round, group_by=group_by
            )
        except ActionError as exc:
            messages.error(request, str(exc))
        else:
            if _is_panel_request(request):
                return render(request, "evaluation/exports.html#job", {"study": study, "job": job})
            messages.success(request, _("Export queued."))
        return redirect("eval-exports", slug=study.slug)
    if request.method != "GET":
        return HttpResponse(status=405)
    context = _base_context(request, study, "eval-exports") | {
        "jobs": queries.export_jobs_of(study),
        "kinds": exports.EXPORT_KINDS,
        "formats": exports.EXPORT_FORMATS,
        "export_groups": grouping.group_options(study),
    }
    return _page(request, "evaluation/exports.html", context)


@login_required
@require_GET
def export_status(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """One export's progress: the row partial for polling, or a small page without JavaScript."""
    study = queries.study_for_results(request.user, slug)
    job = queries.export_job_for(request.user, study, pk)
    context = {"study": study, "job": job}
    if _is_panel_request(request):
        return render(request, "evaluation/exports.html#job", context)
    return render(request, "evaluation/export_status.html", context)


@login_required
@require_GET
def export_download(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    study = queries.study_for_results(request.user, slug)
    job = queries.export_job_for(request.user, study, pk)
    if job.status != job.Status.DONE or not job.file_path:
        raise Http404("This export is not ready.")
    path = Path(job.file_path)
    export_root = Path(settings.MI_EXPORT_DIR).resolve()
    # The path comes from our own task, but never serve anything outside the export folder.
    if not path.resolve().is_relative_to(export_root) or not path.exists():
        raise Http404("The export file is gone; export again.")
    return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)


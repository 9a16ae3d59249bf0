"""Coordinator pages of calibration (docs/calibration.md): gold sets, calibration rounds, the proficiency
table with the study's thresholds, the drift chart with its alerts, and CSV downloads.

Parse → act → render; writes go through ``annotation.actions``. Every view checks the coordinator role
first (``queries.study_for_results``: a coder gets 403, anybody else 404).
"""

from __future__ import annotations

import csv
import io

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from annotation import actions as annotation_actions
from annotation.errors import ActionError
from annotation.models import Assignment, GoldSet, Membership, TranscriptSource

from . import calibration, charts, queries

PAGE = "evaluation/calibration.html"
CHECK_LABELS = {
    "kappa": gettext_lazy("Cohen's kappa"),
    "alpha": gettext_lazy("Krippendorff's alpha"),
    "globals_within_one": gettext_lazy("Globals within one point"),
    "icc": gettext_lazy("ICC(2,1), lowest summary score"),
}


class StandardForm(forms.Form):
    min_kappa = forms.FloatField(label=gettext_lazy("Minimum Cohen's kappa"), required=False, min_value=-1, max_value=1)
    min_alpha = forms.FloatField(label=gettext_lazy("Minimum Krippendorff's alpha"), required=False, min_value=-1,
                                 max_value=1)
    min_globals_within_one = forms.FloatField(label=gettext_lazy("Minimum share of globals within one point (0–1)"),
                                              required=False, min_value=0, max_value=1)
    min_icc = forms.FloatField(label=gettext_lazy("Minimum ICC(2,1) of the summary scores"), required=False,
                               min_value=-1, max_value=1)
    drift_kappa = forms.FloatField(label=gettext_lazy("Drift alert below kappa"), min_value=-1, max_value=1)
    drift_window = forms.IntegerField(label=gettext_lazy("Rolling window (seeded codings)"), min_value=1, max_value=100)


class GoldSetForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200)
    site_wide = forms.BooleanField(label=gettext_lazy("Site-wide (staff only)"), required=False)


def _mark_choices(study):
    """Submitted consensus codings and imported labelled codings of the study that may become gold."""
    rows = (
        Assignment.objects.filter(coding_round__study=study, status=Assignment.Status.SUBMITTED, gold_link__isnull=True)
        .filter(Q(kind=Assignment.Kind.CONSENSUS) | Q(transcript__source__kind=TranscriptSource.Kind.IMPORTED))
        .select_related("transcript", "coding_round", "coder").order_by("coding_round_id", "transcript_id", "id")
    )
    return [(a.pk, f"{a.coding_round.name} · {a.transcript.blind_code} · "
             f"{_('consensus') if a.kind == Assignment.Kind.CONSENSUS else a.coder.get_username()}") for a in rows[:500]]


def _sets(study):
    return GoldSet.objects.filter(Q(study=study) | Q(study__isnull=True))


def _drift_chart(result: calibration.StudyCalibration) -> str:
    if not result.drift:
        return ""
    series = {
        result.coders[c]: [(p.number, p.rolling.kappa) for p in s.points] for c, s in result.drift.items()
    }
    return charts.draw_drift(
        series, result.thresholds.drift_kappa, title=_("Rolling agreement with seeded gold"),
        x_label=_("Seeded gold coding (n-th)"), y_label=_("Cohen's kappa"),
    ).decode("utf-8")


@login_required
@require_GET
def calibration_page(request: HttpRequest, slug: str) -> HttpResponse:
    study = queries.study_for_results(request.user, slug)
    coder_ids = list(Membership.objects.filter(study=study, role=Membership.Role.CODER).values_list("user_id", flat=True))
    result = calibration.study_calibration(study, coder_ids=coder_ids)
    t = result.thresholds
    sets = list(_sets(study))
    golds = {s.pk: annotation_actions.current_golds(s) for s in sets}
    context = {
        "study": study,
        "result": result,
        "rows": [(c, result.coders[c], result.proficiency[c], result.drift.get(c)) for c in result.coders],
        "check_labels": CHECK_LABELS,
        "alerts": [(result.coders[c], result.drift[c]) for c in result.alerts],
        "drift_chart": _drift_chart(result),
        "standard_form": StandardForm(initial=vars(t)),
        "gold_sets": [(s, golds[s.pk]) for s in sets],
        "mark_choices": _mark_choices(study),
        "coders": get_user_model().objects.filter(pk__in=coder_ids).order_by("username"),
    }
    return render(request, PAGE, context)


@login_required
@require_POST
def standard_save(request: HttpRequest, slug: str) -> HttpResponse:
    study = queries.study_for_results(request.user, slug)
    form = StandardForm(request.POST)
    if form.is_valid():
        try:
            annotation_actions.set_proficiency_standard(study, **form.cleaned_data)
        except ActionError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("Proficiency standard saved."))
    else:
        messages.error(request, _("Check the thresholds: %(errors)s") % {"errors": form.errors.as_text()})
    return redirect("eval-calibration", slug=slug)


@login_required
@require_POST
def gold_set_create(request: HttpRequest, slug: str) -> HttpResponse:
    study = queries.study_for_results(request.user, slug)
    form = GoldSetForm(request.POST)
    if form.is_valid():
        try:
            annotation_actions.create_gold_set(None if form.cleaned_data["site_wide"] else study,
                                               name=form.cleaned_data["name"], actor=request.user)
        except ActionError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("Gold set created."))
    return redirect("eval-calibration", slug=slug)


@login_required
@require_POST
def gold_mark(request: HttpRequest, slug: str) -> HttpResponse:
    study = queries.study_for_results(request.user, slug)
    gold_set = get_object_or_404(_sets(study), pk=request.POST.get("gold_set") or 0)
    allowed = {pk for pk, _label in _mark_choices(study)}
    ids = [int(v) for v in request.POST.getlist("assignment") if v.isdigit() and int(v) in allowed]
    try:
        for assignment in Assignment.objects.filter(pk__in=ids).select_related("coding_round", "transcript"):
            annotation_actions.mark_gold(gold_set, assignment, actor=request.user)
    except ActionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("%(n)d codings marked as gold.") % {"n": len(ids)})
    return redirect("eval-calibration", slug=slug)


@login_required
@require_POST
def calibration_round_create(request: HttpRequest, slug: str) -> HttpResponse:
    study = queries.study_for_results(request.user, slug)
    gold_set = get_object_or_404(_sets(study), pk=request.POST.get("gold_set") or 0)
    golds = annotation_actions.current_golds(gold_set)
    chosen = {int(v) for v in request.POST.getlist("gold") if v.isdigit()}
    if chosen:
        golds = [g for g in golds if g.pk in chosen]
    coders = list(get_user_model().objects.filter(
        pk__in=[int(v) for v in request.POST.getlist("coder") if v.isdigit()]))
    try:
        coding_round = annotation_actions.create_calibration_round(
            study, name=request.POST.get("name", ""), golds=golds, coders=coders, created_by=request.user)
    except ActionError as exc:
        messages.error(request, str(exc))
        return redirect("eval-calibration", slug=slug)
    messages.success(request, _("Calibration round created."))
    return redirect("round-detail", slug=slug, pk=coding_round.pk)


@login_required
@require_GET
def drift_chart(request: HttpRequest, slug: str) -> HttpResponse:
    study = queries.study_for_results(request.user, slug)
    result = calibration.study_calibration(study)
    return HttpResponse(_drift_chart(result) or "<svg xmlns='http://www.w3.org/2000/svg'/>", content_type="image/svg+xml")


def _csv(rows: list[list], name: str) -> HttpResponse:
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        # A formula-looking cell is prefixed (as in the results exports): usernames are user input.
        writer.writerow(["'" + v if isinstance(v, str) and v[:1] in "=+-@" else v for v in row])
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@login_required
@require_GET
def proficiency_csv(request: HttpRequest, slug: str) -> HttpResponse:
    study = queries.study_for_results(request.user, slug)
    result = calibration.study_calibration(study)
    rows: list[list] = [["coder", "calibration_codings", "utterances", "kappa", "alpha", "globals_within_one",
                         "eligible", "covered_codes", *[f"icc_{s}" for s in calibration.ga.GATE_ICC_KEYS]]]
    for c, name in result.coders.items():
        p = result.proficiency[c]
        rows.append([name, p.n_codings, p.n_utterances, p.kappa.kappa, p.alpha.alpha, p.globals_within_one,
                     p.eligible, " ".join(p.covered_codes), *[s.icc.icc2_1 for s in p.scores]])
    return _csv(rows, f"{study.slug}-proficiency.csv")


@login_required
@require_GET
def drift_csv(request: HttpRequest, slug: str) -> HttpResponse:
    study = queries.study_for_results(request.user, slug)
    result = calibration.study_calibration(study)
    rows: list[list] = [["coder", "n", "submitted_at", "transcript", "kappa", "rolling_kappa", "window_full"]]
    for c, series in result.drift.items():
        for p in series.points:
            rows.append([result.coders[c], p.number, p.submitted_at.isoformat() if p.submitted_at else "",
                         p.transcript, p.kappa.kappa, p.rolling.kappa, p.window_full])
    return _csv(rows, f"{study.slug}-drift.csv")



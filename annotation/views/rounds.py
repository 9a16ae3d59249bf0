"""Coordinator pages: transcripts and segmentation, coding rounds, progress, reopen, adjudication.

Every view here is for the study's coordinators (``queries.study_for(..., role=COORDINATOR)``:
outsiders 404, coders 403). Source labels (model names) appear on these pages only; coder-facing
pages live in ``annotation.views.coding``. Parse → act → render; each form POST redirects (or, for
an HTMX request, returns the page's partial).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from .. import actions, miti, parsers, queries
from ..models import (
    Assignment,
    AuditEvent,
    CodingRound,
    Dialogue,
    GlobalRating,
    GoldAssignment,
    GoldSet,
    RoundGoldPolicy,
    Transcript,
    TranscriptSource,
    UtteranceCode,
    Volley,
)
from ..queries import adjudication as adjudication_queries

COORDINATOR = queries.COORDINATOR


# --------------------------------------------------------------------------------------------------
# Forms (small, page-specific)
# --------------------------------------------------------------------------------------------------


class RoundForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200)
    sources = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Transcript sources"), queryset=TranscriptSource.objects.none(),
        widget=forms.CheckboxSelectMultiple,
    )
    coders = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Coders"), queryset=get_user_model().objects.none(), widget=forms.CheckboxSelectMultiple
    )
    overlap_percent = forms.IntegerField(
        label=gettext_lazy("Double-coded share (%)"), min_value=0, max_value=100, initial=20,
        help_text=gettext_lazy("Usually 20 (the MITI reliability sample); 100 double-codes every transcript."),
    )
    per_overlap = forms.IntegerField(
        label=gettext_lazy("Coders per double-coded transcript"), min_value=2, initial=2,
    )
    seed = forms.IntegerField(
        label=gettext_lazy("Seed"), required=False,
        help_text=gettext_lazy("Blank: drawn at random. The seed is recorded with the round."),
    )
    require_proficiency = forms.BooleanField(
        label=gettext_lazy("Require proficiency"), required=False,
        help_text=gettext_lazy("Coders below the study's proficiency standard, or whose proficiency is not "
                               "estimable, are left out; the round page says who and why."),
    )
    gold_set = forms.ModelChoiceField(
        label=gettext_lazy("Gold set to seed from"), queryset=GoldSet.objects.none(), required=False,
    )
    gold_percent = forms.IntegerField(
        label=gettext_lazy("Seeded gold transcripts (percent of each queue)"), min_value=0, max_value=100, initial=0,
        required=False,
        help_text=gettext_lazy("Gold transcripts placed at random in each coder's queue, to track drift; they look "
                               "like any other transcript to the coder and never count in results."),
    )

    def __init__(self, *args, study, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["gold_set"].queryset = GoldSet.objects.filter(Q(study=study) | Q(study__isnull=True))
        self.fields["sources"].queryset = TranscriptSource.objects.filter(study=study).annotate(
            n=Count("transcripts")
        )
        self.fields["sources"].label_from_instance = lambda s: f"{s.label} ({s.get_kind_display()}, {s.n})"
        self.fields["coders"].queryset = get_user_model().objects.filter(
            memberships__study=study, memberships__role=queries.CODER
        ).order_by("username")
        self.fields["coders"].label_from_instance = lambda u: u.get_username()


class AnnoMIForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Round name"), max_length=200, initial="AnnoMI expert labels")
    file = forms.FileField(label=gettext_lazy("AnnoMI-full.csv"))


# --------------------------------------------------------------------------------------------------
# Transcripts and segmentation
# --------------------------------------------------------------------------------------------------


@login_required
def transcripts(request: HttpRequest, slug: str) -> HttpResponse:
    study = queries.study_for(request.user, slug, role=COORDINATOR)
    sources = TranscriptSource.objects.filter(study=study).annotate(
        n=Count("transcripts", distinct=True),
        locked=Count("transcripts", filter=Q(transcripts__segmentation_locked=True), distinct=True),
        n_rounds=Count("rounds", distinct=True),
    )
    n_test = Dialogue.objects.filter(study=study, split=Dialogue.Split.TEST).count()
    return render(request, "annotation/rounds/transcripts.html", {"study": study, "sources": sources, "n_test": n_test})


@login_required
@require_POST
def create_reference(request: HttpRequest, slug: str) -> HttpResponse:
    study = queries.study_for(request.user, slug, role=COORDINATOR)
    before = Transcript.objects.filter(source__study=study, source__kind=TranscriptSource.Kind.REFERENCE).count()
    source = actions.ensure_reference_source(study)
    made = source.transcripts.count() - before
    messages.success(request, _("%(n)d reference transcripts created from the test split.") % {"n": made})
    return redirect("round-transcripts", slug=slug)


@login_required
def source_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    study = queries.study_for(request.user, slug, role=COORDINATOR)
    source = get_object_or_404(TranscriptSource, study=study, pk=pk)
    rows = (
        source.transcripts.select_related("dialogue")
        .annotate(n_volleys=Count("volleys", distinct=True), n_units=Count("volleys__utterances"))
        .order_by("dialogue__external_id")
    )
    page = Paginator(rows, 100).get_page(request.GET.get("page"))
    return render(request, "annotation/rounds/source_detail.html", {"study": study, "source": source, "page": page})


def _volleys(transcript: Transcript) -> list[Volley]:
    return list(Volley.objects.filter(transcript=transcript).order_by("index").prefetch_related("utterances"))


@login_required
def transcript_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    study = queries.study_for(request.user, slug, role=COORDINATOR)
    transcript = get_object_or_404(Transcript.objects.select_related("source", "dialogue"), source__study=study, pk=pk)
    return render(
        request, "annotation/rounds/transcript_detail.html",
        {"study": study, "transcript": transcript, "volleys": _volleys(transcript)},
    )


@login_required
@require_POST
def segment(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Merge an utterance with the next, or split one (at ``at`` or where ``marked`` carries a ``|``)."""
    study = queries.study_for(request.user, slug, role=COORDINATOR)
    transcript = get_object_or_404(Transcript, source__study=study, pk=pk)
    volley = get_object_or_404(Volley, transcript=transcript, pk=_pk(request.POST.get("volley")))
    error = None
    try:
        index = _int(request.POST.get("index"))
        if request.POST.get("op") == "merge":
            actions.merge_utterances(volley, index)
        elif request.POST.get("op") == "split":
            actions.split_utterance(volley, index, _split_point(volley, index, request.POST))
        else:
            raise actions.ActionError(_("Unknown segmentation operation."))
    except actions.ActionError as exc:
        error = str(exc)
    if request.htmx:
        # The error is shown inside the swapped volley (htmx does not swap 4xx responses by default).
        volley = Volley.objects.prefetch_related("utterances").get(pk=volley.pk)
        return render(
            request, "annotation/rounds/transcript_detail.html#volley",
            {"study": study, "transcript": transcript, "volley": volley, "error": error},
        )
    if error:
        messages.error(request, error)
    return redirect(reverse("round-transcript", args=[slug, pk]) + f"#v{volley.index}")


def _int(value: str | None) -> int:
    try:
        return int(value or "")
    except ValueError:
        raise actions.ActionError(_("A whole number was expected.")) from None


def _pk(value: str | None) -> int:
    """A posted id, or 0 (matches nothing, so the lookup 404s) when it is not a number."""
    return int(value) if value and value.isdigit() else 0


def _split_point(volley: Volley, index: int, data) -> int:
    if data.get("at"):
        return _int(data.get("at"))
    marked = data.get("marked", "")
    unit = volley.utterances.filter(index=index).first()
    if unit is None or marked.count("|") != 1 or marked.replace("|", "") != unit.text:
        raise actions.ActionError(_("Put exactly one | where the new utterance should start, and change nothing else."))
    return marked.index("|")


# --------------------------------------------------------------------------------------------------
# Rounds: list, create, AnnoMI import, progress
# --------------------------------------------------------------------------------------------------


@login_required
def round_list(request: HttpRequest, slug: str) -> HttpResponse:
    study = queries.study_for(request.user, slug, role=COORDINATOR)
    totals = queries.totals_by_round(queries.coding_progress(study))
    rounds = [
        (r, totals.get(r.pk) or queries.RoundTotal(r.pk, r.name)) for r in CodingRound.objects.filter(study=study)
    ]
    return render(request, "annotation/rounds/round_list.html", {"study": study, "rounds": rounds})


@login_required
@require_http_methods(["GET", "POST"])
def round_create(request: HttpRequest, slug: str) -> HttpResponse:
    study = queries.study_for(request.user, slug, role=COORDINATOR)
    form = RoundForm(request.POST or None, study=study)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                coding_round = actions.create_coding_round(
                    study, name=data["name"], sources=list(data["sources"]), coders=list(data["coders"]),
                    overlap=data["overlap_percent"] / 100, seed=data["seed"], per_overlap=data["per_overlap"],
                    created_by=request.user, require_proficiency=data["require_proficiency"],
                    gold_set=data["gold_set"], gold_rate=(data["gold_percent"] or 0) / 100,
                )
            except actions.ActionError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(
                    request, _("Round created with seed %(seed)d.") % {"seed": coding_round.seed}
                )
                return redirect("round-detail", slug=slug, pk=coding_round.pk)
    return render(request, "annotation/rounds/round_form.html", {"study": study, "form": form}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def annomi_import(request: HttpRequest, slug: str) -> HttpResponse:
    study = queries.study_for(request.user, slug, role=COORDINATOR)
    form = AnnoMIForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                parsers.check_size(upload.size, _max_bytes(), upload.name)
                result = actions.import_annomi_round(
                    study, data=upload.read(), filename=upload.name, round_name=form.cleaned_data["name"],
                    created_by=request.user,
                )
            except (parsers.ImportFormatError, actions.ActionError) as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, _(
                    "Imported %(a)d codings of %(t)d transcripts by %(c)d annotators (%(m)d multi-coded)."
                ) % {"a": result.assignments, "t": result.transcripts, "c": result.coders, "m": result.multi_coded})
                return redirect("round-detail", slug=slug, pk=result.coding_round.pk)
    return render(request, "annotation/rounds/annomi_form.html", {"study": study, "form": form}, status=status)


def _max_bytes() -> int:
    from django.conf import settings

    return settings.MI_MAX_IMPORT_BYTES


@login_required
def round_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    study = queries.study_for(request.user, slug, role=COORDINATOR)
    coding_round = queries.round_for(request.user, study, pk)
    assignments = list(
        Assignment.objects.filter(coding_round=coding_round)
        .select_related("coder", "transcript", "transcript__source", "transcript__dialogue")
        .order_by("kind", "coder__username", "position")
    )
    coders = {a.coder_id: a.coder for a in assignments}
    removed = queries.removed_coder_ids(coding_round)
    # Seeded gold transcripts are never in results: that is not a reassignment.
    gold_ids = set(GoldAssignment.objects.filter(assignment__coding_round=coding_round).values_list("assignment_id", flat=True))
    excluded = {a.coder_id for a in assignments if not a.in_results and a.pk not in gold_ids}
    counted = queries.coding_progress(study, coding_round)
    rows = [
        {"coder": coders[r.coder_id], "assigned": r.total, "pending": r.pending, "in_progress": r.in_progress,
         "submitted": r.submitted, "percent": r.percent_whole, "removed": r.coder_id in removed,
         "excluded": r.coder_id in excluded}
        for r in counted
        if r.kind == Assignment.Kind.CODING
    ]
    totals = queries.totals_by_round(counted).get(coding_round.pk) or queries.RoundTotal(coding_round.pk, "")
    context = {
        "study": study,
        "round": coding_round,
        "progress": rows,
        "total": totals.total,
        "done": totals.submitted,
        "percent": totals.percent_whole,
        "assignments": assignments,
        "removed": removed,
        "sources": coding_round.sources.all(),
        "reassign_to": queries.members_of(study).filter(role=queries.CODER, user__is_active=True),
        # Polled while coders are at work; an open round with every coding in, or a closed one, is still.
        "live": coding_round.status == CodingRound.Status.OPEN and totals.submitted < totals.total,
        "gold_ids": gold_ids,
        "gold_policy": RoundGoldPolicy.objects.filter(coding_round=coding_round).select_related("gold_set").first(),
    }
    if getattr(request, "htmx", False):
        return render(request, "annotation/rounds/round_detail.html#progress", context)
    return render(request, "annotation/rounds/round_detail.html", context)


@login_required
@require_POST
def round_reassign(request: HttpRequest, slug: str, pk: int, coder: int) -> HttpResponse:
    """Give a removed coder's work to another coder (fresh assignments; the old ones leave the results)."""
    study = queries.study_for(request.user, slug, role=COORDINATOR)
    coding_round = queries.round_for(request.user, study, pk)
    try:
        moved = actions.reassign_coder(
            coding_round, from_user_id=coder, to_username=request.POST.get("to", ""), actor=request.user
        )
    except actions.ActionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Reassigned %(n)d assignment(s).") % {"n": moved})
    return redirect("round-detail", slug=slug, pk=pk)


@login_required
@require_POST
def round_include(request: HttpRequest, slug: str, pk: int, coder: int) -> HttpResponse:
    """Count a removed coder's reassigned work in results again (``include=1``) or leave it out."""
    study = queries.study_for(request.user, slug, role=COORDINATOR)
    coding_round = queries.round_for(request.user, study, pk)
    actions.include_in_results(coding_round, coder_id=coder, include=request.POST.get("include") == "1")
    return redirect("round-detail", slug=slug, pk=pk)


def _assignment(request: HttpRequest, slug: str, pk: int, apk: int):
    study = queries.study_for(request.user, slug, role=COORDINATOR)
    coding_round = queries.round_for(request.user, study, pk)
    assignment = get_object_or_404(
        Assignment.objects.select_related("coder", "transcript", "transcript__source"),
        coding_round=coding_round, pk=apk,
    )
    return study, coding_round, assignment


# The audit trail stores machine words (action names, "utterance:<id>", "global:<scale key>", status
# values); the history table shows them in the reader's language.
HISTORY_ACTIONS = {
    "code": gettext_lazy("Code"), "global": gettext_lazy("Global rating"), "undo": gettext_lazy("Undo"),
    "submit": gettext_lazy("Submit"), "reopen": gettext_lazy("Reopen"), "reassign": gettext_lazy("Reassign"),
    "consensus": gettext_lazy("Consensus"), "import": gettext_lazy("Import"),
    "machine": gettext_lazy("Machine coding"), "segment": gettext_lazy("Segmentation"),
}


@dataclass(frozen=True)
class HistoryRow:
    """An audit event as the history table shows it."""

    at: datetime
    actor: object
    action: str
    target: str
    old: str
    new: str
    version: int


def _history_rows(events, positions: dict[int, tuple[int, int]]) -> list[HistoryRow]:
    """One display row per audit event; ``positions``: utterance id → (volley index, utterance index)."""
    statuses = dict(Assignment.Status.choices)

    def target(text: str) -> str:
        kind, _sep, key = text.partition(":")
        if kind == "utterance" and key.isdigit() and int(key) in positions:
            volley, utterance = positions[int(key)]
            return _("Volley %(volley)d, utterance %(utterance)d") % {"volley": volley + 1, "utterance": utterance + 1}
        if kind == "utterance":  # no longer in the transcript
            return _("Utterance %(id)s") % {"id": key}
        if kind == "global" and key in miti.GLOBAL_BY_KEY:
            return _(miti.GLOBAL_BY_KEY[key].name)
        if text == "assignment":
            return _("Coding")
        return text

    def value(text: str) -> str:
        return str(statuses.get(text, text))

    return [
        HistoryRow(e.at, e.actor, str(HISTORY_ACTIONS.get(e.action, e.action)), target(e.target), value(e.old),
                   value(e.new), e.version)
        for e in events
    ]


@login_required
def assignment_detail(request: HttpRequest, slug: str, pk: int, apk: int) -> HttpResponse:
    """Read-only view of one coder's work: codes, per-volley tally, globals, summary, history."""
    study, coding_round, assignment = _assignment(request, slug, pk, apk)
    codes = dict(UtteranceCode.objects.filter(assignment=assignment).values_list("utterance_id", "code"))
    ratings = dict(GlobalRating.objects.filter(assignment=assignment).values_list("scale", "value"))
    volleys = []
    for volley in _volleys(assignment.transcript):
        units = [(u, codes.get(u.pk)) for u in volley.utterances.all()]
        tally = miti.tally_volley([c for _u, c in units])
        # Translate the rule's template first, then fill in the numbers (miti keeps them apart for this).
        notes = [_(note.template).format(**note.params) for note in tally.notes]
        volleys.append({"volley": volley, "units": units, "notes": notes})
    counts = miti.tally_transcript([[c for _u, c in v["units"]] for v in volleys])
    scores = miti.summary_scores(counts, {k: ratings.get(k) for k in miti.GLOBAL_KEYS})
    context = {
        "study": study,
        "round": coding_round,
        "assignment": assignment,
        "volleys": volleys,
        "globals": [(scale, ratings.get(scale.key)) for scale in miti.GLOBAL_SCALES],
        "counts": [(miti.CODE_BY_KEY[k], n) for k, n in counts.items()],
        "scores": _score_rows(scores),
        "events": _history_rows(
            AuditEvent.objects.filter(assignment=assignment).select_related("actor"),
            {u.pk: (v["volley"].index, u.index) for v in volleys for u, _code in v["units"]},
        ),
        "coded": len(codes),
        "units": sum(len(v["units"]) for v in volleys),
    }
    return render(request, "annotation/rounds/assignment_detail.html", context)


def _score_rows(scores: miti.SummaryScores) -> list[dict]:
    rows = []
    for key in miti.ALL_SUMMARY_KEYS:
        value = getattr(scores, key)
        shown = "n/a" if value is None else (f"{100 * value:.0f} %" if key == "pct_cr" else f"{value:g}")
        # Translated here, not with {% translate s.label %}: the template tag looks a variable up with
        # each % doubled, so "% Complex Reflection" would need a second msgid no source file holds.
        rows.append({"key": key, "label": _(miti.SUMMARY_LABELS[key]), "value": shown,
                     "status": miti.threshold_status(key, value)})
    return rows


@login_required
@require_POST
def assignment_reopen(request: HttpRequest, slug: str, pk: int, apk: int) -> HttpResponse:
    _study, _round, assignment = _assignment(request, slug, pk, apk)
    try:
        actions.reopen_assignment(assignment, actor=request.user)
    except actions.ActionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Reopened: the coder can edit %(code)s again.") % {
            "code": assignment.transcript.blind_code})
    return redirect("round-assignment", slug=slug, pk=pk, apk=apk)


# --------------------------------------------------------------------------------------------------
# Adjudication
# --------------------------------------------------------------------------------------------------


@login_required
def adjudication_list(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    study = queries.study_for(request.user, slug, role=COORDINATOR)
    coding_round = queries.round_for(request.user, study, pk)
    items = adjudication_queries.adjudication_items(coding_round)
    return render(request, "annotation/rounds/adjudication_list.html", {"study": study, "round": coding_round, "items": items})


def _adjudication_target(request: HttpRequest, slug: str, pk: int, tpk: int):
    study = queries.study_for(request.user, slug, role=COORDINATOR)
    coding_round = queries.round_for(request.user, study, pk)
    if not Assignment.objects.filter(coding_round=coding_round, transcript_id=tpk).exists():
        raise Http404("This transcript is not part of the round.")
    transcript = get_object_or_404(Transcript.objects.select_related("source", "dialogue"), pk=tpk)
    return study, coding_round, transcript


def _adjudication_context(study, coding_round, transcript) -> dict:
    comparison = adjudication_queries.compare(coding_round, transcript)
    editable = comparison.consensus is not None and comparison.consensus.status != Assignment.Status.SUBMITTED
    return {
        "study": study,
        "round": coding_round,
        "transcript": transcript,
        "cmp": comparison,
        "consensus": comparison.consensus,
        "editable": editable,
        "code_choices": [*miti.BEHAVIOUR_CODES, miti.NO_CODE_ENTRY],
        "rating_choices": range(miti.GLOBAL_MIN, miti.GLOBAL_MAX + 1),
        # Coders are named by letter on this page (A, B, …), in the comparison's order.
        "coder_letters": [chr(ord("A") + i) for i in range(len(comparison.codings))],
    }


def _adjudication_page_context(study, coding_round, transcript) -> dict:
    """The whole page: the board plus what adjudication.js needs for the keys and the next transcript."""
    context = _adjudication_context(study, coding_round, transcript)
    next_transcript = adjudication_queries.next_for_consensus(coding_round, transcript)
    context["next_transcript"] = next_transcript
    context["adjudication_data"] = {
        "editable": context["editable"],
        "hotkeys": miti.HOTKEYS,
        "globalMin": miti.GLOBAL_MIN,
        "globalMax": miti.GLOBAL_MAX,
        "urls": {
            "save": reverse("round-consensus-save", args=[study.slug, coding_round.pk, transcript.pk]),
            "next": reverse("round-adjudicate", args=[study.slug, coding_round.pk, next_transcript.pk])
            if next_transcript else None,
        },
        "messages": {
            "saving": _("Saving…"),
            "saved": _("Saved"),
            "failed": _("Not saved — the server could not be reached; try again."),
            "wait": _("Wait until every change is saved."),
            "none_left": _("No other transcript in this round is waiting for a consensus."),
        },
    }
    return context


@login_required
def adjudication_detail(request: HttpRequest, slug: str, pk: int, tpk: int) -> HttpResponse:
    study, coding_round, transcript = _adjudication_target(request, slug, pk, tpk)
    try:
        context = _adjudication_page_context(study, coding_round, transcript)
    except actions.ActionError as exc:
        messages.error(request, str(exc))
        return redirect("round-adjudication", slug=slug, pk=pk)
    return render(request, "annotation/rounds/adjudication_detail.html", context)


@login_required
@require_POST
def consensus_start(request: HttpRequest, slug: str, pk: int, tpk: int) -> HttpResponse:
    _study, coding_round, transcript = _adjudication_target(request, slug, pk, tpk)
    try:
        actions.start_consensus(coding_round, transcript, actor=request.user)
    except actions.ActionError as exc:
        messages.error(request, str(exc))
    return redirect("round-adjudicate", slug=slug, pk=pk, tpk=tpk)


@login_required
@require_POST
def consensus_save(request: HttpRequest, slug: str, pk: int, tpk: int) -> HttpResponse:
    """One consensus change per POST: ``utterance`` + ``code``, ``scale`` + ``value``, or ``submit``.

    A stale ``version`` gets 409 with the message; nothing is overwritten.
    """
    study, coding_round, transcript = _adjudication_target(request, slug, pk, tpk)
    consensus = get_object_or_404(
        Assignment, coding_round=coding_round, transcript=transcript, kind=Assignment.Kind.CONSENSUS
    )
    status, error = 200, None
    try:
        version = _int(request.POST.get("version"))
        if "submit" in request.POST:
            actions.submit_consensus(consensus, version=version, actor=request.user)
            messages.success(request, _("Consensus submitted."))
        elif request.POST.get("utterance"):
            actions.record_consensus_code(
                consensus, utterance_id=_int(request.POST["utterance"]), code=request.POST.get("code") or None,
                version=version, actor=request.user,
            )
        elif request.POST.get("scale"):
            value = request.POST.get("value")
            actions.record_consensus_global(
                consensus, scale=request.POST["scale"], value=_int(value) if value else None,
                version=version, actor=request.user,
            )
        else:
            raise actions.ActionError(_("Nothing to save."))
    except actions.StaleVersion as exc:
        status, error = 409, str(exc)
    except actions.ActionError as exc:
        status, error = 400, str(exc)
    if request.htmx:
        # The board comes back with the latest values and version; htmx swaps only 2xx responses, so
        # the refusal travels as a banner inside the board.
        context = {**_adjudication_context(study, coding_round, transcript), "error": error}
        return render(request, "annotation/rounds/adjudication_detail.html#board", context)
    if status == 409:
        # A 409 page rather than a redirect: the conflict must be visible as such to any client.
        messages.error(request, error)
        context = _adjudication_page_context(study, coding_round, transcript)
        return render(request, "annotation/rounds/adjudication_detail.html", context, status=409)
    if error:
        messages.error(request, error)
    return redirect("round-adjudicate", slug=slug, pk=pk, tpk=tpk)


__all__ = [
    "adjudication_detail",
    "adjudication_list",
    "annomi_import",
    "assignment_detail",
    "assignment_reopen",
    "consensus_save",
    "consensus_start",
    "create_reference",
    "round_create",
    "round_detail",
    "round_list",
    "segment",
    "source_detail",
    "transcript_detail",
    "transcripts",
]

"""The coder's workspace: the blinded queue and the MITI coding page. Parse → act → render.

Each coding action is one small POST. An HTMX request (``HX-Request``; coding.js sends it) gets the
changed part of the page back — a volley with its live tally, or the global ratings — plus the
progress block as an out-of-band swap, and the new version in ``X-Assignment-Version``. Without
JavaScript the same forms post and redirect back to the page. A stale version answers 409.

Blinding: nothing here reads a transcript's source. Pages show the blind code, the study's change goal
and the volleys; the context carries no source, run or model field, so no template can leak one.
Volleys and utterances are named by their position in the transcript, never by a database id
(docs/blinding.md): the ``utterance`` a form posts is its number, translated here.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from .. import miti, queries
from ..actions import coding as coding_actions
from ..errors import ActionError
from ..models import Assignment
from ..queries import calibration as calibration_queries
from ..queries import coding as coding_queries

PAGE = "annotation/coding/transcript.html"
QUEUE = "annotation/coding/queue.html"
VERSION_HEADER = "X-Assignment-Version"

# Button labels: the short forms MITI coders use on paper.
BUTTON_LABELS = {
    "GI": "GI", "PERSUADE": "PER", "PERSUADE_WITH": "PWP", "Q": "Q", "SR": "SR", "CR": "CR",
    "AF": "AF", "SEEK": "SEEK", "EMPHASIZE": "EMPH", "CONFRONT": "CONF", miti.NO_CODE: "NC",
}


class BadInput(Exception):
    """A malformed form field; answered with 400 and the message."""


# --------------------------------------------------------------------------------------------------
# Context building
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeButton:
    key: str
    label: str
    name: str
    short: str
    hotkey: str
    keys: str  # every key that records it, as shown on the button ("0/n" for No code)
    group: str


@dataclass(frozen=True)
class VolleyView:
    row: coding_queries.VolleyRow
    merges: list[str]  # translated explanations of the per-volley rules that merged codes


@dataclass(frozen=True)
class GlobalView:
    key: str
    name: str
    group: str
    anchor_low: str
    anchor_high: str
    note: str
    default_hint: int
    value: int | None


def _palette() -> list[CodeButton]:
    entries = [*miti.BEHAVIOUR_CODES, miti.NO_CODE_ENTRY]
    return [
        CodeButton(
            key=c.key, label=BUTTON_LABELS[c.key], name=_(c.name), short=_(c.short), hotkey=c.hotkey,
            keys="/".join(miti.NO_CODE_HOTKEYS) if c.key == miti.NO_CODE else c.hotkey, group=c.group or "",
        )
        for c in entries
    ]


def _volley_views(rows: list[coding_queries.VolleyRow]) -> list[VolleyView]:
    # Translate the template first, then fill in the numbers, so the catalogue holds one entry per rule.
    return [
        VolleyView(row=row, merges=[_(note.template).format(**note.params) for note in row.tally.notes])
        for row in rows
    ]


def _global_views(values: dict[str, int | None]) -> list[GlobalView]:
    return [
        GlobalView(
            key=s.key, name=_(s.name), group=_(miti.SCALE_GROUP_LABELS[s.group]), anchor_low=_(s.anchor_low),
            anchor_high=_(s.anchor_high), note=_(s.note) if s.note else "", default_hint=s.default_hint,
            value=values.get(s.key),
        )
        for s in miti.GLOBAL_SCALES
    ]


def _base_context(assignment: Assignment) -> dict:
    return {
        "assignment": assignment,
        "transcript": assignment.transcript,
        "study": assignment.coding_round.study,
        "coding_round": assignment.coding_round,
        "editable": coding_queries.is_editable(assignment),
        "globals_rated": assignment.coding_round.globals_rated,
        "palette": _palette(),
        "scale_values": list(range(miti.GLOBAL_MIN, miti.GLOBAL_MAX + 1)),
    }


def _js_data(assignment: Assignment, editable: bool, next_assignment: Assignment | None) -> dict:
    """What coding.js needs: ids, version, URLs, hotkeys and its messages. No source information."""
    pk = assignment.pk
    return {
        "assignment": pk,
        "version": assignment.version,
        "editable": editable,
        "globalsRated": assignment.coding_round.globals_rated,
        "hotkeys": miti.HOTKEYS,
        "noCode": miti.NO_CODE,
        "globalMin": miti.GLOBAL_MIN,
        "globalMax": miti.GLOBAL_MAX,
        "urls": {
            "page": reverse("assignment-code", args=[pk]),
            "code": reverse("assignment-code-save", args=[pk]),
            "clear": reverse("assignment-code-clear", args=[pk]),
            "global": reverse("assignment-global-save", args=[pk]),
            "undo": reverse("assignment-undo", args=[pk]),
            # The next transcript in the coder's own queue (its assignment id, never a transcript's).
            "next": reverse("assignment-code", args=[next_assignment.pk]) if next_assignment else None,
        },
        "messages": {
            "saving": _("Saving…"),
            "saved": _("Saved"),
            "pending": _("Not saved yet — %(n)s change(s) waiting; retrying"),
            "offline": _("Cannot reach the server — %(n)s change(s) kept in this browser; retrying"),
            "conflict": _(
                "This assignment was changed in another tab or device — reload to see the latest version"
            ),
            "readonly": _("This assignment is submitted and read-only until a coordinator reopens it."),
            "session": _("Your session has ended — log in again in another tab; your changes are kept here."),
            "error": _("The server refused this change: %(msg)s"),
            "stale_queue": _(
                "%(n)s change(s) made in this browser were not saved, and the assignment has changed since. "
                "Apply them to the latest version, or discard them?"
            ),
            "apply": _("Apply my changes"),
            "discard": _("Discard them"),
            "reload": _("Reload"),
            "wait_submit": _("Wait until every change is saved before submitting."),
            "wait_next": _("Wait until every change is saved before opening the next transcript."),
            "queue_empty": _("Nothing else is waiting in your queue."),
        },
    }


def _feedback_context(feedback: calibration_queries.Feedback) -> dict:
    """The calibration feedback with the MITI names, definitions and anchors translated."""
    by_key = {c.key: c for c in [*miti.BEHAVIOUR_CODES, miti.NO_CODE_ENTRY]}
    definitions = [
        {"key": key, "label": BUTTON_LABELS[key], "name": _(by_key[key].name), "short": _(by_key[key].short),
         "hints": [_(h.text) for h in miti.hints_for(key)]}
        for key in feedback.codes_used
    ]
    scales = []
    for g in feedback.globals:
        scale = miti.GLOBAL_BY_KEY[g.key]
        scales.append({"key": g.key, "name": _(scale.name), "value": g.value, "gold": g.gold,
                       "within_one": g.within_one, "anchor_low": _(scale.anchor_low),
                       "anchor_high": _(scale.anchor_high)})
    return {"data": feedback, "labels": BUTTON_LABELS, "definitions": definitions, "globals": scales}


def _page_context(request: HttpRequest, assignment: Assignment) -> dict:
    sheet = coding_queries.coding_sheet(assignment)
    context = _base_context(assignment)
    context.update(
        volleys=_volley_views(sheet.volleys),
        globals=_global_views(sheet.globals),
        progress=sheet.progress,
        hints=[_(h.text) for h in miti.WHEN_IN_DOUBT],
        volley_rules=[_(r) for r in miti.VOLLEY_RULES],
        show_hints=request.GET.get("hints") == "1",
        instrument_version=assignment.coding_round.instrument_version,
        next_assignment=queries.next_assignment_for(request.user, assignment),
    )
    context["coding_data"] = _js_data(assignment, context["editable"], context["next_assignment"])
    # Calibration rounds only, once submitted (feedback_for answers None otherwise): never in a study round.
    feedback = calibration_queries.feedback_for(assignment)
    context["feedback"] = _feedback_context(feedback) if feedback is not None else None
    return context


def _render_page(request: HttpRequest, assignment: Assignment, *, status: int = 200, alert: str = "",
                 alert_kind: str = "error") -> HttpResponse:
    context = _page_context(request, assignment)
    context.update(alert=alert, alert_kind=alert_kind)
    response = render(request, PAGE, context, status=status)
    response[VERSION_HEADER] = str(assignment.version)
    return response


def _partials(request: HttpRequest, assignment: Assignment, *, volley_id: int | None = None,
              globals_changed: bool = False, status: int = 200) -> HttpResponse:
    """The changed part (a volley or the globals) plus the progress block as an out-of-band swap."""
    context = _base_context(assignment)
    html: list[str] = []
    if volley_id is not None:
        (view,) = _volley_views(coding_queries.volley_rows(assignment, [volley_id]))
        html.append(render_to_string(f"{PAGE}#volley", {**context, "volley": view}, request=request))
    if globals_changed:
        context["globals"] = _global_views(coding_queries.global_values(assignment))
        html.append(render_to_string(f"{PAGE}#globals", context, request=request))
    progress = coding_queries.assignment_progress(assignment)
    html.append(render_to_string(f"{PAGE}#status", {**context, "progress": progress, "oob": True}, request=request))
    response = HttpResponse("".join(html), status=status)
    response[VERSION_HEADER] = str(assignment.version)
    return response


def _alert(request: HttpRequest, assignment: Assignment, message: str, *, status: int,
           version: int | None = None) -> HttpResponse:
    """An error for an HTMX request: the alert partial with the status (409/400), never a page."""
    html = render_to_string(
        f"{PAGE}#alert", {"assignment": assignment, "alert": message, "alert_kind": "error"}, request=request
    )
    response = HttpResponse(html, status=status)
    response[VERSION_HEADER] = str(assignment.version if version is None else version)
    return response


# --------------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------------


def _int_field(request: HttpRequest, name: str, *, required: bool = True) -> int | None:
    raw = request.POST.get(name, "").strip()
    if raw == "" and not required:
        return None
    try:
        return int(raw)
    except ValueError:
        raise BadInput(f"field '{name}' must be a whole number, got {raw!r}") from None


def _do(request: HttpRequest, assignment: Assignment, act, *, anchor: str = "",
        sent: dict[str, int] | None = None) -> HttpResponse:
    """Run one coding action and answer: partial (HTMX) or redirect (plain form); 409/400 on refusal."""
    try:
        result = act()
    except coding_actions.StaleVersion as exc:
        return _refused(request, assignment, _(str(exc)), status=409, version=exc.current_version)
    except coding_actions.AssignmentReadOnly as exc:
        assignment.refresh_from_db(fields=["version", "status"])
        return _refused(request, assignment, _(str(exc)), status=409)
    except (ActionError, BadInput) as exc:
        return _refused(request, assignment, str(exc), status=400)
    # The element the change landed on, by its coder-facing id (its number), never the database id.
    # ``sent``: the number the coder sent, when the change landed on that utterance (a save or a clear),
    # so the hot path does not look it up again; an undo lands wherever the undone change was.
    number = (sent or {}).get("number")
    landed = (
        f"u-{number if number is not None else coding_queries.utterance_number(assignment, result.utterance_id)}"
        if result.utterance_id
        else f"g-{result.scale}" if result.scale else ""
    )
    if not request.htmx:
        target = reverse("assignment-code", args=[assignment.pk])
        return redirect(f"{target}#{landed}" if landed else target)
    response = _partials(request, assignment, volley_id=result.volley_id, globals_changed=bool(result.scale))
    # So coding.js can move focus there (after an undo).
    response["X-Coding-Target"] = landed
    return response


def _refused(request: HttpRequest, assignment: Assignment, message: str, *, status: int,
             version: int | None = None) -> HttpResponse:
    if request.htmx:
        return _alert(request, assignment, message, status=status, version=version)
    # Without JavaScript: the latest state of the page, with the message on top and the same status.
    assignment.refresh_from_db()
    return _render_page(request, assignment, status=status, alert=message)


# --------------------------------------------------------------------------------------------------
# Views
# --------------------------------------------------------------------------------------------------


@login_required
@require_GET
def coder_queue(request: HttpRequest) -> HttpResponse:
    """The coder's assignments across rounds, in queue order, under blind codes only."""
    assignments = list(queries.assignments_for(request.user))
    progress = coding_queries.progress_for(assignments)
    rows = [(a, progress[a.pk]) for a in assignments]
    next_up = next((a for a, _p in rows if a.status != Assignment.Status.SUBMITTED), None)
    return render(request, QUEUE, {"rows": rows, "next_up": next_up})


@login_required
@require_GET
def assignment_code(request: HttpRequest, pk: int) -> HttpResponse:
    """The coding page of one assignment (read-only once submitted)."""
    assignment = queries.assignment_for(request.user, pk)
    return _render_page(request, assignment)


@login_required
@require_POST
def code_save(request: HttpRequest, pk: int) -> HttpResponse:
    assignment = queries.assignment_for(request.user, pk)

    sent: dict[str, int] = {}

    def act():
        sent["number"] = _int_field(request, "utterance")
        return coding_actions.save_code(
            assignment, utterance_id=coding_queries.utterance_pk(assignment, sent["number"]),
            code=request.POST.get("code", ""),
            version=_int_field(request, "version"), actor=request.user, tally=False,
            # The accept key / button of an assisted round (the action checks it is the suggestion).
            accept_suggestion="1" in (request.POST.get("accept"), request.GET.get("accept")),
        )

    return _do(request, assignment, act, sent=sent)


@login_required
@require_POST
def code_clear(request: HttpRequest, pk: int) -> HttpResponse:
    assignment = queries.assignment_for(request.user, pk)

    sent: dict[str, int] = {}

    def act():
        sent["number"] = _int_field(request, "utterance")
        return coding_actions.clear_code(
            assignment, utterance_id=coding_queries.utterance_pk(assignment, sent["number"]),
            version=_int_field(request, "version"),
            actor=request.user,
        )

    return _do(request, assignment, act, sent=sent)


@login_required
@require_POST
def global_save(request: HttpRequest, pk: int) -> HttpResponse:
    """Rate a global scale; an empty ``value`` clears the rating."""
    assignment = queries.assignment_for(request.user, pk)

    def act():
        return coding_actions.set_global(
            assignment, scale=request.POST.get("scale", ""), value=_int_field(request, "value", required=False),
            version=_int_field(request, "version"), actor=request.user,
        )

    return _do(request, assignment, act)


@login_required
@require_POST
def code_undo(request: HttpRequest, pk: int) -> HttpResponse:
    assignment = queries.assignment_for(request.user, pk)

    def act():
        return coding_actions.undo_last(assignment, version=_int_field(request, "version"), actor=request.user)

    return _do(request, assignment, act)


@login_required
@require_POST
def assignment_submit(request: HttpRequest, pk: int) -> HttpResponse:
    """Submit finished work; refused, with what is missing, until everything is coded and rated."""
    assignment = queries.assignment_for(request.user, pk)
    try:
        coding_actions.submit_assignment(assignment, version=_int_field(request, "version"), actor=request.user)
    except coding_actions.StaleVersion as exc:
        assignment.refresh_from_db()
        return _render_page(request, assignment, status=409, alert=_(str(exc)))
    except coding_actions.AssignmentReadOnly as exc:
        assignment.refresh_from_db()
        return _render_page(request, assignment, status=409, alert=_(str(exc)))
    except (ActionError, BadInput) as exc:
        assignment.refresh_from_db()
        return _render_page(request, assignment, status=400, alert=str(exc))
    messages.success(request, _("Submitted %(code)s. It is read-only now; thank you.") % {
        "code": assignment.transcript.blind_code})
    return redirect("assignment-code", pk=assignment.pk)


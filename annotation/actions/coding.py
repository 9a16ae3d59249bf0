"""Coding actions: save a code or a global rating, clear, undo, submit.

The reads of the coding page (volleys, globals, progress, what is missing) are
``annotation.queries.coding``.

Every write is one small transaction that starts with a compare-and-set on the assignment's
``version``: ``UPDATE … WHERE id = ? AND version = ? AND status <> 'submitted'``. The update takes the
row lock, so concurrent writers to one assignment are serialised, and a writer holding a stale version
(another tab, another device, a reopened assignment) updates nothing and gets ``StaleVersion`` — never a
silent overwrite. Every change writes an ``AuditEvent`` (who, when, action, target, old → new, version),
and ``undo_last`` walks that trail back.

Audit targets are ``utterance:<id>`` and ``global:<SCALE>``; an empty ``old``/``new`` means "not
coded"/"not rated".
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext

from .. import miti
from ..errors import ActionError
from ..models import Assignment, AuditEvent, CodingRound, GlobalRating, Membership, Utterance, UtteranceCode
from ..queries.coding import loaded_volley_of, missing_for_submit, suggestion_for, volley_tally
from .summaries import store_summaries

# Audit actions this module writes; "reopen" is written by rounds.reopen_assignment.
CODE, GLOBAL, UNDO, SUBMIT = "code", "global", "undo", "submit"
UNDOABLE = (CODE, GLOBAL)


class StaleVersion(ActionError):
    """The write was based on an old version of the assignment (HTTP 409)."""

    def __init__(self, current_version: int, message: str | None = None) -> None:
        self.current_version = current_version
        super().__init__(
            message
            or gettext("This assignment was changed in another tab or device — reload to see the latest version.")
        )


class AssignmentReadOnly(ActionError):
    """The assignment is submitted (or its round closed): nothing can change until it is reopened."""


@dataclass(frozen=True)
class SaveResult:
    """What a coding action changed, so the page can re-render just that part.

    ``volley_id``/``utterance_id`` are set when an utterance code changed, ``scale`` when a global did;
    ``tally`` is the volley's new MITI tally.
    """

    version: int
    action: str
    target: str
    old: str
    new: str
    volley_id: int | None = None
    utterance_id: int | None = None
    scale: str | None = None
    tally: miti.VolleyTally | None = None


# --------------------------------------------------------------------------------------------------
# Compare-and-set on the version
# --------------------------------------------------------------------------------------------------


def _claim_update(pk: int, version: int, now, *, submit: bool) -> int:
    """The compare-and-set itself, one UPDATE: bump the version of assignment ``pk`` if it is still
    ``version``, not submitted, its round open and its coder still a member of the study (or it is
    consensus work, or machine work: a service user is no member of any study); return the rows changed
    (0 or 1).

    The conditions are correlated ``EXISTS`` subqueries (no join, so PostgreSQL re-checks ``version`` on
    the locked row). Written as SQL because it runs on every save and building the same statement
    through the ORM (two ``Exists``, ``Coalesce``, ``F``) cost more Python time than anything else in
    the action (docs/benchmarks.md, "Fourth session").
    """
    qn = connection.ops.quote_name
    a, r, m = (qn(model._meta.db_table) for model in (Assignment, CodingRound, Membership))
    stamp = connection.ops.adapt_datetimefield_value(now)
    if submit:
        set_status, params = "status = %s, submitted_at = %s", [Assignment.Status.SUBMITTED, stamp]
    else:
        set_status, params = "status = %s, started_at = COALESCE(started_at, %s)", [Assignment.Status.IN_PROGRESS, stamp]
    sql = (
        f"UPDATE {a} SET version = version + 1, updated_at = %s, {set_status} "
        f"WHERE id = %s AND version = %s AND NOT (status = %s) "
        f"AND EXISTS (SELECT 1 FROM {r} WHERE {r}.id = {a}.coding_round_id AND {r}.status = %s) "
        f"AND ({a}.kind IN (%s, %s) OR EXISTS (SELECT 1 FROM {m} INNER JOIN {r} AS study_round "
        f"ON study_round.study_id = {m}.study_id "
        f"WHERE {m}.user_id = {a}.coder_id AND study_round.id = {a}.coding_round_id))"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [stamp, *params, pk, version, Assignment.Status.SUBMITTED, CodingRound.Status.OPEN,
                             Assignment.Kind.CONSENSUS, Assignment.Kind.MACHINE])
        return cursor.rowcount


def _claim(assignment: Assignment, version: int, *, submit: bool = False) -> int:
    """Bump the version if it still equals ``version`` and the work is editable; return the new one.

    Must run inside the caller's transaction: the row lock it takes is held until commit, which is
    what serialises two writers of one assignment.
    """
    if isinstance(version, bool) or not isinstance(version, int):
        raise ActionError(f"version must be a whole number, got {version!r}")
    now = timezone.now()
    updated = _claim_update(assignment.pk, version, now, submit=submit)
    if updated != 1:
        current = (
            Assignment.objects.filter(pk=assignment.pk).values("version", "status", "coding_round__status").first()
        )
        if current is None:
            raise ActionError("This assignment no longer exists.")
        # The gate checked membership when the request came in; the UPDATE re-checked it on the locked
        # row, so a coder removed while their save was in flight writes nothing. Consensus work is a
        # coordinator's (staff need no membership); machine work a service user's.
        still_member = Q(kind__in=(Assignment.Kind.CONSENSUS, Assignment.Kind.MACHINE)) | Exists(
            Membership.objects.filter(user_id=OuterRef("coder_id"), study__rounds=OuterRef("coding_round_id"))
        )
        if not Assignment.objects.filter(still_member, pk=assignment.pk).exists():
            raise ActionError("You are no longer a member of this study; your work is kept but cannot be changed.")
        if current["coding_round__status"] != CodingRound.Status.OPEN:
            raise AssignmentReadOnly("This coding round is closed; its work can no longer be changed.")
        if current["status"] == Assignment.Status.SUBMITTED:
            raise AssignmentReadOnly(
                "This assignment is submitted and read-only until a coordinator reopens it."
            )
        raise StaleVersion(current["version"])
    # Keep the caller's instance in step, so a view can render the new state without a re-read.
    assignment.version = version + 1
    if submit:
        assignment.status, assignment.submitted_at = Assignment.Status.SUBMITTED, now
    else:
        assignment.status = Assignment.Status.IN_PROGRESS
        assignment.started_at = assignment.started_at or now
    return assignment.version


def _audit(assignment: Assignment, actor, action: str, target: str, old: str, new: str) -> None:
    AuditEvent.objects.create(
        assignment=assignment, actor=actor, action=action, target=target, old=old, new=new,
        version=assignment.version,
    )


def _utterance_of(assignment: Assignment, utterance_id: object) -> Utterance:
    if isinstance(utterance_id, bool) or not isinstance(utterance_id, int):
        raise ActionError(f"utterance must be an utterance id (a whole number), got {utterance_id!r}")
    # The view resolved the coder's number through ``reading_order`` on this same instance: that list is
    # the transcript's utterances, so it already says the utterance belongs here (no second query).
    volley_id = loaded_volley_of(assignment, utterance_id)
    if volley_id is not None:
        return Utterance(pk=utterance_id, volley_id=volley_id)
    utterance = (
        Utterance.objects.select_related("volley")
        .filter(pk=utterance_id, volley__transcript_id=assignment.transcript_id)
        .first()
    )
    if utterance is None:
        raise ActionError(f"Utterance {utterance_id} is not part of transcript {assignment.transcript.blind_code}.")
    return utterance


def _write_code(assignment: Assignment, utterance: Utterance, code: str | None, accepted: bool = False) -> str:
    """Set (or with ``None`` delete) the assignment's code for ``utterance``; return the old value.

    ``accepted``: the code is the machine's suggestion, taken as it was (assisted rounds)."""
    existing = UtteranceCode.objects.filter(assignment=assignment, utterance=utterance).first()
    old = existing.code if existing else ""
    if code is None:
        if existing:
            existing.delete()
    elif existing is None:
        UtteranceCode.objects.create(assignment=assignment, utterance=utterance, code=code, suggestion_accepted=accepted)
    elif existing.code != code or existing.suggestion_accepted != accepted:
        existing.code, existing.suggestion_accepted = code, accepted
        existing.save(update_fields=["code", "suggestion_accepted", "updated_at"])
    return old


def _write_global(assignment: Assignment, scale: str, value: int | None) -> str:
    existing = GlobalRating.objects.filter(assignment=assignment, scale=scale).first()
    old = str(existing.value) if existing else ""
    if value is None:
        if existing:
            existing.delete()
    elif existing is None:
        GlobalRating.objects.create(assignment=assignment, scale=scale, value=value)
    elif existing.value != value:
        existing.value = value
        existing.save(update_fields=["value", "updated_at"])
    return old


def _code_result(
    assignment: Assignment, utterance: Utterance, action: str, old: str, new: str, *, tally: bool = True
) -> SaveResult:
    return SaveResult(
        version=assignment.version, action=action, target=f"utterance:{utterance.pk}", old=old, new=new,
        volley_id=utterance.volley_id, utterance_id=utterance.pk,
        # The coding page re-reads the whole volley for its partial anyway: it asks for no tally here.
        tally=volley_tally(assignment, utterance.volley_id) if tally else None,
    )


# --------------------------------------------------------------------------------------------------
# Actions
# --------------------------------------------------------------------------------------------------


@transaction.atomic
def save_code(
    assignment: Assignment, *, utterance_id: int, code: str, version: int, actor, tally: bool = True,
    accept_suggestion: bool = False,
) -> SaveResult:
    """Record ``code`` (a MITI behaviour code key or ``"NONE"`` for "no code") for one utterance.

    ``accept_suggestion``: the coder took the machine's suggestion with its key (assisted rounds). The
    code records it only when the round is assisted and ``code`` is what the machine suggested there,
    so a flag can never mark a code the coder chose themselves.

    Refused with ``ActionError`` for an unknown code or an utterance outside the assignment's
    transcript, ``StaleVersion`` when ``version`` is not the current one, ``AssignmentReadOnly`` when
    the work is submitted. Saving the value already stored still bumps the version (so a stale tab
    learns it is stale) but writes no audit event, so undo never "undoes" a no-op.
    """
    try:
        code = miti.validate_code(code)
    except ValueError:
        raise ActionError(miti.unknown_code_message(code, gettext)) from None
    utterance = _utterance_of(assignment, utterance_id)
    accepted = accept_suggestion and suggestion_for(assignment, utterance.pk) == code
    _claim(assignment, version)
    old = _write_code(assignment, utterance, code, accepted)
    if old != code:
        _audit(assignment, actor, CODE, f"utterance:{utterance.pk}", old, code)
    return _code_result(assignment, utterance, CODE, old, code, tally=tally)


@transaction.atomic
def clear_code(assignment: Assignment, *, utterance_id: int, version: int, actor) -> SaveResult:
    """Put an utterance back to "not coded yet" (unlike ``"NONE"``, which is a coding decision)."""
    utterance = _utterance_of(assignment, utterance_id)
    _claim(assignment, version)
    old = _write_code(assignment, utterance, None)
    if old:
        _audit(assignment, actor, CODE, f"utterance:{utterance.pk}", old, "")
    return _code_result(assignment, utterance, CODE, old, "")


@transaction.atomic
def set_global(assignment: Assignment, *, scale: str, value: int | None, version: int, actor) -> SaveResult:
    """Rate one of the four global scales 1–5; ``value=None`` clears the rating (back to "not rated").

    Globals start unset: the manual's "start from 3" is a hint on the page, never a stored value.
    """
    if not assignment.coding_round.globals_rated:
        raise ActionError("Global scales are not rated in this round.")
    try:
        if value is None:
            if scale not in miti.GLOBAL_BY_KEY:
                raise ValueError(
                    f"unknown MITI global scale {scale!r}; expected one of: {', '.join(miti.GLOBAL_KEYS)}"
                )
        else:
            miti.validate_global(scale, value)
    except ValueError as exc:
        raise ActionError(str(exc)) from None
    _claim(assignment, version)
    old = _write_global(assignment, scale, value)
    new = "" if value is None else str(value)
    if old != new:
        _audit(assignment, actor, GLOBAL, f"global:{scale}", old, new)
    return SaveResult(version=assignment.version, action=GLOBAL, target=f"global:{scale}", old=old, new=new,
                      scale=scale)


def _last_undoable(assignment: Assignment, actor) -> AuditEvent | None:
    """The actor's most recent code/global change that no later undo has reverted.

    The trail is read as a stack: walking back from the newest event, each undo cancels the nearest
    earlier change not already cancelled, so pressing undo repeatedly steps further back.
    """
    pending_undos = 0
    events = AuditEvent.objects.filter(assignment=assignment, actor=actor, action__in=(*UNDOABLE, UNDO))
    for event in events.order_by("-id").iterator():
        if event.action == UNDO:
            pending_undos += 1
        elif pending_undos:
            pending_undos -= 1
        else:
            return event
    return None


@transaction.atomic
def undo_last(assignment: Assignment, *, version: int, actor) -> SaveResult:
    """Revert the actor's last code or global change on this assignment, from the audit trail."""
    _claim(assignment, version)  # first: the row lock makes the trail we read below stable
    event = _last_undoable(assignment, actor)
    if event is None:
        raise ActionError("Nothing to undo.")
    kind, _, key = event.target.partition(":")
    if kind == "utterance":
        utterance = _utterance_of(assignment, int(key))
        old = _write_code(assignment, utterance, event.old or None)
        _audit(assignment, actor, UNDO, event.target, old, event.old)
        return _code_result(assignment, utterance, UNDO, old, event.old)
    if kind == "global":
        old = _write_global(assignment, key, int(event.old) if event.old else None)
        _audit(assignment, actor, UNDO, event.target, old, event.old)
        return SaveResult(version=assignment.version, action=UNDO, target=event.target, old=old, new=event.old,
                          scale=key)
    raise ActionError(f"Cannot undo a change to {event.target!r}.")  # pragma: no cover - we write no other


# --------------------------------------------------------------------------------------------------
# Submit
# --------------------------------------------------------------------------------------------------


@transaction.atomic
def submit_assignment(assignment: Assignment, *, version: int, actor) -> Assignment:
    """Hand in finished work: refused (with what is missing) until every utterance has a code or
    "No code" and all four globals are rated (unless the round does not rate globals).

    Submitted work is read-only until a coordinator reopens it (``rounds.reopen_assignment``).
    """
    previous = assignment.status
    _claim(assignment, version, submit=True)  # lock first, then check: no save can slip in between
    missing = missing_for_submit(assignment)
    if not missing.complete:
        # Raising rolls the claim back: the version and status stay as they were.
        assignment.version, assignment.status, assignment.submitted_at = version, previous, None
        raise ActionError(missing.message())
    _audit(assignment, actor, SUBMIT, "assignment", previous, Assignment.Status.SUBMITTED)
    # The results pages read this stored row instead of tallying the codes on every view.
    known = None
    if Assignment.coding_round.is_cached(assignment):  # the completeness check loaded the round
        known = {assignment.pk: (assignment.version, assignment.coding_round.globals_rated)}
    store_summaries([assignment.pk], known=known)
    return assignment


__all__ = [
    "AssignmentReadOnly",
    "SaveResult",
    "StaleVersion",
    "clear_code",
    "save_code",
    "set_global",
    "submit_assignment",
    "undo_last",
]

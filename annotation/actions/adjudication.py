"""Adjudication of double-coded transcripts: compare the coders, then record one consensus coding.

A transcript is adjudicable in a round once at least two of its *coding* assignments are submitted.
The coordinator sees the coders side by side (per utterance and per global), starts a consensus
assignment — pre-filled where every coder agrees — records the rest and submits it. Evaluation
takes a submitted consensus as the transcript's final coding.

The comparison itself (which transcripts are ready, the coders side by side) is a read, in
``annotation.queries.adjudication``. Writes to the consensus go through the coders' own actions
(``annotation.actions.coding``), so the same rules hold: the caller sends the version it read, a
stale version raises ``StaleVersion`` (HTTP 409 in the views), each change bumps the version and
writes an audit event.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..errors import ActionError
from ..models import Assignment, AuditEvent, CodingRound, GlobalRating, Transcript, UtteranceCode
from ..queries.adjudication import compare
from . import coding

CONSENSUS = Assignment.Kind.CONSENSUS


@transaction.atomic
def start_consensus(coding_round: CodingRound, transcript: Transcript, *, actor) -> Assignment:
    """The round's consensus assignment for ``transcript``, created once and pre-filled where coders agree.

    Idempotent: a second call (or a concurrent one) returns the existing consensus untouched.
    """
    existing = Assignment.objects.filter(coding_round=coding_round, transcript=transcript, kind=CONSENSUS).first()
    if existing is not None:
        return existing
    comparison = compare(coding_round, transcript)
    now = timezone.now()
    try:
        # A savepoint: a concurrent start that won the unique constraint leaves this transaction usable.
        with transaction.atomic():
            consensus = Assignment.objects.create(
                coding_round=coding_round,
                transcript=transcript,
                coder=actor,
                kind=CONSENSUS,
                status=Assignment.Status.IN_PROGRESS,
                started_at=now,
            )
    except IntegrityError:
        return Assignment.objects.get(coding_round=coding_round, transcript=transcript, kind=CONSENSUS)
    agreed_codes = [
        UtteranceCode(assignment=consensus, utterance=u.utterance, code=u.codes[0])
        for v in comparison.volleys
        for u in v.utterances
        if u.agreed
    ]
    agreed_globals = [
        GlobalRating(assignment=consensus, scale=g.scale.key, value=g.values[0]) for g in comparison.globals if g.agreed
    ]
    UtteranceCode.objects.bulk_create(agreed_codes)
    GlobalRating.objects.bulk_create(agreed_globals)
    AuditEvent.objects.create(
        assignment=consensus, actor=actor, action="consensus", target="start",
        new=f"{len(agreed_codes)} codes, {len(agreed_globals)} globals agreed", version=consensus.version,
    )
    return consensus


def _consensus(assignment: Assignment) -> Assignment:
    if assignment.kind != CONSENSUS:
        raise ActionError("Only a consensus assignment is recorded here.")
    return assignment


def record_consensus_code(
    assignment: Assignment, *, utterance_id: int, code: str | None, version: int, actor
) -> coding.SaveResult:
    """Set (or with ``code`` None/"" clear) the consensus code of one utterance.

    The coders' own rules apply (``coding.save_code``): ``StaleVersion`` for an old version,
    ``AssignmentReadOnly`` once submitted, one audit event per change.
    """
    _consensus(assignment)
    if code:
        return coding.save_code(assignment, utterance_id=utterance_id, code=code, version=version, actor=actor)
    return coding.clear_code(assignment, utterance_id=utterance_id, version=version, actor=actor)


def record_consensus_global(
    assignment: Assignment, *, scale: str, value: int | None, version: int, actor
) -> coding.SaveResult:
    """Set (or with ``value`` None clear) one consensus global rating (1–5), as ``coding.set_global``."""
    _consensus(assignment)
    return coding.set_global(assignment, scale=scale, value=value, version=version, actor=actor)


def submit_consensus(assignment: Assignment, *, version: int, actor) -> Assignment:
    """Submit the consensus: refused until every utterance has a code (or "no code") and, in a round
    with globals, all four globals are set. Submitted consensus is read-only until reopened."""
    _consensus(assignment)
    return coding.submit_assignment(assignment, version=version, actor=actor)

"""Adjudication of double-coded transcripts: compare the coders, then record one consensus coding.

A transcript is adjudicable in a round once at least two of its *coding* assignments are submitted.
The coordinator sees the coders side by side (per utterance and per global), starts a consensus
assignment — pre-filled where every coder agrees — records the rest and submits it. Evaluation
takes a submitted consensus as the transcript's final coding.

Writes to the consensus go through the coders' own actions (``annotation.actions.coding``), so the
same rules hold: the caller sends the version it read, a stale version raises ``StaleVersion``
(HTTP 409 in the views), each change bumps the version and writes an audit event.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import miti
from ..errors import ActionError
from ..models import (
    Assignment,
    AuditEvent,
    CodingRound,
    GlobalRating,
    Transcript,
    Utterance,
    UtteranceCode,
    Volley,
)
from . import coding

CODING = Assignment.Kind.CODING
CONSENSUS = Assignment.Kind.CONSENSUS
SUBMITTED = Assignment.Status.SUBMITTED


# --------------------------------------------------------------------------------------------------
# Reads: which transcripts are double-coded, and how the coders compare
# --------------------------------------------------------------------------------------------------


@dataclass
class AdjudicationItem:
    """One transcript coded by two or more coders in a round (a row of the adjudication list)."""

    transcript: Transcript
    assigned: int  # coding assignments in the round
    submitted: int  # of which submitted
    utterances: int
    utterance_disagreements: int  # utterances where the submitted codings differ (or one is missing)
    global_disagreements: int
    consensus: Assignment | None

    @property
    def ready(self) -> bool:
        return self.submitted >= 2


@dataclass
class UtteranceComparison:
    utterance: Utterance
    codes: list[str | None]  # one per submitted coding, in the comparison's coder order
    consensus: str | None

    @property
    def agreed(self) -> bool:
        return None not in self.codes and len(set(self.codes)) == 1


@dataclass
class VolleyComparison:
    volley: Volley
    utterances: list[UtteranceComparison]


@dataclass
class GlobalComparison:
    scale: miti.GlobalScale
    values: list[int | None]
    consensus: int | None

    @property
    def agreed(self) -> bool:
        return None not in self.values and len(set(self.values)) == 1


@dataclass
class Comparison:
    """Side by side: every submitted coding of one transcript, and the consensus so far."""

    coding_round: CodingRound
    transcript: Transcript
    codings: list[Assignment]  # submitted coding assignments, ordered by coder username
    volleys: list[VolleyComparison]
    globals: list[GlobalComparison]
    consensus: Assignment | None
    notes: list[str] = field(default_factory=list)

    @property
    def utterance_disagreements(self) -> int:
        return sum(1 for v in self.volleys for u in v.utterances if not u.agreed)

    @property
    def global_disagreements(self) -> int:
        return sum(1 for g in self.globals if not g.agreed)


def adjudication_items(coding_round: CodingRound) -> list[AdjudicationItem]:
    """Transcripts of the round with two or more coding assignments, with disagreement counts."""
    per_transcript: dict[int, list[Assignment]] = defaultdict(list)
    for a in Assignment.objects.filter(coding_round=coding_round, kind=CODING).order_by("id"):
        per_transcript[a.transcript_id].append(a)
    ids = [tid for tid, rows in per_transcript.items() if len(rows) >= 2]
    if not ids:
        return []
    transcripts = Transcript.objects.in_bulk(ids)
    consensus = {
        a.transcript_id: a
        for a in Assignment.objects.filter(coding_round=coding_round, kind=CONSENSUS, transcript_id__in=ids)
    }
    units: dict[int, list[int]] = defaultdict(list)
    for uid, tid in Utterance.objects.filter(volley__transcript_id__in=ids).values_list("id", "volley__transcript_id"):
        units[tid].append(uid)
    submitted_ids = {a.pk for rows in per_transcript.values() for a in rows if a.status == SUBMITTED}
    codes: dict[int, dict[int, str]] = defaultdict(dict)  # assignment -> utterance -> code
    for aid, uid, code in UtteranceCode.objects.filter(assignment_id__in=submitted_ids).values_list(
        "assignment_id", "utterance_id", "code"
    ):
        codes[aid][uid] = code
    ratings: dict[int, dict[str, int]] = defaultdict(dict)
    if coding_round.globals_rated:
        for aid, scale, value in GlobalRating.objects.filter(assignment_id__in=submitted_ids).values_list(
            "assignment_id", "scale", "value"
        ):
            ratings[aid][scale] = value
    items = []
    for tid in sorted(ids, key=lambda t: transcripts[t].blind_code):
        done = [a for a in per_transcript[tid] if a.status == SUBMITTED]
        u_dis = g_dis = 0
        if len(done) >= 2:
            u_dis = sum(1 for uid in units[tid] if not _all_same([codes[a.pk].get(uid) for a in done]))
            if coding_round.globals_rated:
                g_dis = sum(1 for key in miti.GLOBAL_KEYS if not _all_same([ratings[a.pk].get(key) for a in done]))
        items.append(
            AdjudicationItem(
                transcript=transcripts[tid],
                assigned=len(per_transcript[tid]),
                submitted=len(done),
                utterances=len(units[tid]),
                utterance_disagreements=u_dis,
                global_disagreements=g_dis,
                consensus=consensus.get(tid),
            )
        )
    return items


def compare(coding_round: CodingRound, transcript: Transcript) -> Comparison:
    """Every submitted coding of ``transcript`` in ``coding_round`` side by side (needs two or more)."""
    codings = list(
        Assignment.objects.filter(coding_round=coding_round, transcript=transcript, kind=CODING, status=SUBMITTED)
        .select_related("coder")
        .order_by("coder__username")
    )
    if len(codings) < 2:
        raise ActionError("Adjudication needs at least two submitted codings of this transcript.")
    consensus = Assignment.objects.filter(coding_round=coding_round, transcript=transcript, kind=CONSENSUS).first()
    wanted = [a.pk for a in codings] + ([consensus.pk] if consensus else [])
    codes: dict[int, dict[int, str]] = defaultdict(dict)
    for aid, uid, code in UtteranceCode.objects.filter(assignment_id__in=wanted).values_list(
        "assignment_id", "utterance_id", "code"
    ):
        codes[aid][uid] = code
    ratings: dict[int, dict[str, int]] = defaultdict(dict)
    for aid, scale, value in GlobalRating.objects.filter(assignment_id__in=wanted).values_list(
        "assignment_id", "scale", "value"
    ):
        ratings[aid][scale] = value
    by_volley: dict[int, list[Utterance]] = defaultdict(list)
    for unit in Utterance.objects.filter(volley__transcript=transcript).order_by("volley__index", "index"):
        by_volley[unit.volley_id].append(unit)
    volleys = [
        VolleyComparison(
            volley=volley,
            utterances=[
                UtteranceComparison(
                    utterance=unit,
                    codes=[codes[a.pk].get(unit.pk) for a in codings],
                    consensus=codes[consensus.pk].get(unit.pk) if consensus else None,
                )
                for unit in by_volley[volley.pk]
            ],
        )
        for volley in Volley.objects.filter(transcript=transcript).order_by("index")
    ]
    globals_ = []
    if coding_round.globals_rated:
        globals_ = [
            GlobalComparison(
                scale=scale,
                values=[ratings[a.pk].get(scale.key) for a in codings],
                consensus=ratings[consensus.pk].get(scale.key) if consensus else None,
            )
            for scale in miti.GLOBAL_SCALES
        ]
    return Comparison(coding_round, transcript, codings, volleys, globals_, consensus)


def _all_same(values: list) -> bool:
    return None not in values and len(set(values)) == 1


# --------------------------------------------------------------------------------------------------
# Writes: start, record, submit
# --------------------------------------------------------------------------------------------------


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

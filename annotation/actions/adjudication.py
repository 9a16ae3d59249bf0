"""Adjudication of double-coded transcripts: compare the coders, then record one consensus coding.

A transcript is adjudicable in a round once at least two of its *coding* assignments are submitted.
The coordinator sees the coders side by side (per utterance and per global), starts a consensus
assignment — pre-filled where every coder agrees — records the rest and submits it. Evaluation
takes a submitted consensus as the transcript's final coding.

Writes to the consensus follow the coders' rules: the caller sends the version it read, a stale
version is refused (HTTP 409 in the views), each change bumps the version and writes an audit event.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from .. import miti
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
from .studies import ActionError

CODING = Assignment.Kind.CODING
CONSENSUS = Assignment.Kind.CONSENSUS
SUBMITTED = Assignment.Status.SUBMITTED


class StaleConsensus(ActionError):
    """The consensus changed since the page was loaded (another tab or coordinator): reload first."""


class ConsensusReadOnly(ActionError):
    """A submitted consensus is read-only until it is reopened."""


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


def _lock_for_write(assignment: Assignment, version: int) -> Assignment:
    locked = Assignment.objects.select_for_update().select_related("transcript", "coding_round").get(pk=assignment.pk)
    if locked.kind != CONSENSUS:
        raise ActionError("Only a consensus assignment is recorded here.")
    if locked.status == SUBMITTED:
        raise ConsensusReadOnly("This consensus is submitted and read-only; reopen it to change it.")
    if locked.version != version:
        raise StaleConsensus(
            f"This consensus was changed elsewhere (now version {locked.version}, your page has version "
            f"{version}). Reload the page to see the latest values; nothing was overwritten."
        )
    return locked


def _bump(locked: Assignment, *, actor, action: str, target: str, old: str, new: str) -> Assignment:
    Assignment.objects.filter(pk=locked.pk).update(version=F("version") + 1, updated_at=timezone.now())
    locked.refresh_from_db(fields=["version", "updated_at", "status"])
    AuditEvent.objects.create(
        assignment=locked, actor=actor, action=action, target=target, old=old, new=new, version=locked.version
    )
    return locked


@transaction.atomic
def record_consensus_code(
    assignment: Assignment, *, utterance_id: int, code: str | None, version: int, actor
) -> Assignment:
    """Set (or with ``code`` None/"" clear) the consensus code of one utterance; returns the new version."""
    locked = _lock_for_write(assignment, version)
    if not Utterance.objects.filter(pk=utterance_id, volley__transcript_id=locked.transcript_id).exists():
        raise ActionError(f"Utterance {utterance_id} is not part of transcript {locked.transcript.blind_code}.")
    current = UtteranceCode.objects.filter(assignment=locked, utterance_id=utterance_id).first()
    old = current.code if current else ""
    if code:
        try:
            code = miti.validate_code(code)
        except ValueError as exc:
            raise ActionError(str(exc)) from exc
        UtteranceCode.objects.update_or_create(assignment=locked, utterance_id=utterance_id, defaults={"code": code})
    elif current is not None:
        current.delete()
    return _bump(locked, actor=actor, action="code", target=f"utterance {utterance_id}", old=old, new=code or "")


@transaction.atomic
def record_consensus_global(
    assignment: Assignment, *, scale: str, value: int | None, version: int, actor
) -> Assignment:
    """Set (or with ``value`` None clear) one consensus global rating (1–5)."""
    locked = _lock_for_write(assignment, version)
    if not locked.coding_round.globals_rated:
        raise ActionError("This round has no global ratings.")
    try:
        if value is not None:
            value = miti.validate_global(scale, value)
        elif scale not in miti.GLOBAL_BY_KEY:
            miti.validate_global(scale, 3)
    except ValueError as exc:
        raise ActionError(str(exc)) from exc
    current = GlobalRating.objects.filter(assignment=locked, scale=scale).first()
    old = str(current.value) if current else ""
    if value is not None:
        GlobalRating.objects.update_or_create(assignment=locked, scale=scale, defaults={"value": value})
    elif current is not None:
        current.delete()
    return _bump(locked, actor=actor, action="global", target=scale, old=old, new="" if value is None else str(value))


@transaction.atomic
def submit_consensus(assignment: Assignment, *, version: int, actor) -> Assignment:
    """Submit the consensus: refused until every utterance has a code (or "no code") and, in a round
    with globals, all four globals are set. Submitted consensus is read-only until reopened."""
    locked = _lock_for_write(assignment, version)
    units = Utterance.objects.filter(volley__transcript_id=locked.transcript_id).count()
    coded = UtteranceCode.objects.filter(assignment=locked).count()
    problems = []
    if coded < units:
        problems.append(f"{units - coded} utterance(s) still without a consensus code")
    if locked.coding_round.globals_rated:
        rated = set(GlobalRating.objects.filter(assignment=locked).values_list("scale", flat=True))
        missing = [miti.GLOBAL_BY_KEY[k].name for k in miti.GLOBAL_KEYS if k not in rated]
        if missing:
            problems.append("globals not set: " + ", ".join(missing))
    if problems:
        raise ActionError("Cannot submit yet: " + "; ".join(problems) + ".")
    now = timezone.now()
    Assignment.objects.filter(pk=locked.pk).update(
        status=SUBMITTED, submitted_at=now, version=F("version") + 1, updated_at=now
    )
    locked.refresh_from_db()
    AuditEvent.objects.create(
        assignment=locked, actor=actor, action="submit", old="in_progress", new="submitted", version=locked.version
    )
    return locked

"""Gold transcripts, calibration rounds, proficiency thresholds (docs/calibration.md).

A gold transcript is a frozen copy of a submitted coding — an adjudicated consensus, or an imported
labelled transcript (AnnoMI) — in a gold set. Its codes and globals are copied into gold rows that are
never updated (a database trigger refuses it on PostgreSQL); :func:`revise_gold` makes a new version.
Codings of gold transcripts (calibration rounds, seeded drift checks) are linked to the gold version
they are compared with and stay out of study results (``in_results`` off).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext

from .. import miti, tally
from ..errors import ActionError
from ..models import (
    AdditionalCode,
    Assignment,
    CodingRound,
    GlobalRating,
    GoldAssignment,
    GoldCode,
    GoldRating,
    GoldSet,
    GoldTranscript,
    Membership,
    ProficiencyStandard,
    Study,
    Transcript,
    TranscriptSource,
    Utterance,
    UtteranceCode,
)


def _may_manage(actor, gold_set_study: Study | None) -> None:
    if gold_set_study is None and not (actor is not None and actor.is_staff):
        raise ActionError("Only site staff manage site-wide gold sets.")


@transaction.atomic
def create_gold_set(study: Study | None, *, name: str, actor, description: str = "") -> GoldSet:
    """A new gold set of ``study``, or a site-wide one (``study`` None; staff only)."""
    _may_manage(actor, study)
    name = name.strip()
    if not name:
        raise ActionError("Give the gold set a name.")
    if GoldSet.objects.filter(study=study, name=name).exists():
        raise ActionError(f"A gold set named '{name}' already exists.")
    return GoldSet.objects.create(study=study, name=name, description=description, created_by=actor)


def _freeze(gold_set: GoldSet, transcript: Transcript, *, origin: str, origin_assignment_id: int | None,
            codes: Mapping[int, str], additional: Sequence[tuple[int, str]], ratings: Mapping[str, int],
            globals_rated: bool, actor, note: str) -> GoldTranscript:
    utterances = list(
        Utterance.objects.filter(volley__transcript=transcript).order_by("volley__index", "index")
        .values_list("pk", "volley_id")
    )
    missing = [pk for pk, _v in utterances if pk not in codes]
    if missing:
        raise ActionError(f"A gold coding needs a code on every utterance; {len(missing)} have none.")
    if globals_rated and set(ratings) != set(miti.GLOBAL_KEYS):
        raise ActionError("A gold coding with globals needs all four global ratings.")
    try:
        for key, value in ratings.items():
            miti.validate_global(key, value)
    except ValueError as exc:
        raise ActionError(str(exc)) from None
    volley_of = dict(utterances)
    counts, n_coded = tally.tally_rows(
        [(0, u, volley_of[u], c) for u, c in codes.items()], [(0, u, volley_of[u], c) for u, c in additional]
    )
    del n_coded
    counts_, globals_, scores = tally.summarise(counts.get(0), ratings, globals_rated=globals_rated)
    version = (GoldTranscript.objects.filter(gold_set=gold_set, transcript=transcript)
               .aggregate(v=Max("version"))["v"] or 0) + 1
    gold = GoldTranscript.objects.create(
        gold_set=gold_set, transcript=transcript, version=version, origin=origin,
        origin_assignment_id=origin_assignment_id, marked_by=actor.get_username() if actor else "", note=note,
        globals_rated=globals_rated, counts=counts_, globals=globals_, scores=scores,
    )
    GoldCode.objects.bulk_create(
        [GoldCode(gold=gold, utterance_id=u, code=c) for u, c in codes.items()]
        + [GoldCode(gold=gold, utterance_id=u, code=c, additional=True) for u, c in additional]
    )
    if globals_rated:
        GoldRating.objects.bulk_create([GoldRating(gold=gold, scale=k, value=v) for k, v in ratings.items()])
    return gold


@transaction.atomic
def mark_gold(gold_set: GoldSet, assignment: Assignment, *, actor, note: str = "") -> GoldTranscript:
    """Copy a submitted consensus coding, or an imported labelled transcript's coding, into ``gold_set``.

    Marking the same transcript again makes a new version; earlier versions stay (codings already
    compared with them keep their comparison).
    """
    _may_manage(actor, gold_set.study)
    if assignment.status != Assignment.Status.SUBMITTED:
        raise ActionError("Only submitted work can become gold.")
    source_kind = (
        TranscriptSource.objects.filter(transcripts=assignment.transcript_id).values_list("kind", flat=True).get()
    )
    if assignment.kind == Assignment.Kind.CONSENSUS:
        origin = GoldTranscript.Origin.CONSENSUS
    elif source_kind == TranscriptSource.Kind.IMPORTED:
        origin = GoldTranscript.Origin.IMPORTED
    else:
        raise ActionError("Gold comes from an adjudicated consensus or from imported labels, not one coder's coding.")
    if hasattr(assignment, "gold_link"):
        raise ActionError("A coding of a gold transcript cannot itself become gold.")
    if gold_set.study_id is not None and assignment.coding_round.study_id != gold_set.study_id:
        raise ActionError("This coding belongs to another study than the gold set.")
    codes = dict(UtteranceCode.objects.filter(assignment=assignment).values_list("utterance_id", "code"))
    additional = list(AdditionalCode.objects.filter(assignment=assignment).values_list("utterance_id", "code"))
    ratings = dict(GlobalRating.objects.filter(assignment=assignment).values_list("scale", "value"))
    return _freeze(
        gold_set, assignment.transcript, origin=origin, origin_assignment_id=assignment.pk, codes=codes,
        additional=additional, ratings=ratings, globals_rated=assignment.coding_round.globals_rated,
        actor=actor, note=note,
    )


@transaction.atomic
def revise_gold(gold: GoldTranscript, *, actor, codes: Mapping[int, str] | None = None,
                ratings: Mapping[str, int] | None = None, note: str = "") -> GoldTranscript:
    """A new version of ``gold`` with some utterance codes (by coder-facing number) or globals changed.

    The old version stays as it was (gold rows are never updated).
    """
    _may_manage(actor, gold.gold_set.study)
    order = list(
        Utterance.objects.filter(volley__transcript_id=gold.transcript_id).order_by("volley__index", "index")
        .values_list("pk", flat=True)
    )
    current = dict(GoldCode.objects.filter(gold=gold, additional=False).values_list("utterance_id", "code"))
    additional = list(GoldCode.objects.filter(gold=gold, additional=True).values_list("utterance_id", "code"))
    for number, code in (codes or {}).items():
        if not 1 <= number <= len(order):
            raise ActionError(f"This transcript has no utterance {number}.")
        try:
            current[order[number - 1]] = miti.validate_code(code)
        except ValueError as exc:
            raise ActionError(str(exc)) from None
    new_ratings = dict(GoldRating.objects.filter(gold=gold).values_list("scale", "value"))
    new_ratings.update(ratings or {})
    globals_rated = gold.globals_rated or bool(ratings)
    return _freeze(
        gold.gold_set, gold.transcript, origin=GoldTranscript.Origin.REVISION,
        origin_assignment_id=gold.origin_assignment_id, codes=current, additional=additional,
        ratings=new_ratings, globals_rated=globals_rated, actor=actor, note=note,
    )


def current_golds(gold_set: GoldSet) -> list[GoldTranscript]:
    """The latest version of every transcript of the set, in transcript order."""
    latest: dict[int, GoldTranscript] = {}
    for gold in GoldTranscript.objects.filter(gold_set=gold_set).order_by("transcript_id", "version"):
        latest[gold.transcript_id] = gold
    return list(latest.values())


def _coders_of(study: Study, coders: Sequence) -> None:
    members = set(
        Membership.objects.filter(study=study, user__in=coders, role=Membership.Role.CODER).values_list("user_id", flat=True)
    )
    missing = [u for u in coders if u.pk not in members]
    if missing:
        raise ActionError(f"Not coders of this study: {', '.join(u.get_username() for u in missing)}.")


@transaction.atomic
def create_calibration_round(
    study: Study, *, name: str, golds: Sequence[GoldTranscript], coders: Sequence, seed: int | None = None,
    created_by=None,
) -> CodingRound:
    """A calibration round: every coder codes every gold transcript (in a seeded shuffled order) and sees
    feedback against gold after submitting. Its codings never count in study results."""
    if not name.strip():
        raise ActionError(gettext("Give the round a name."))
    if CodingRound.objects.filter(study=study, name=name).exists():
        raise ActionError(f"A round named '{name}' already exists in this study.")
    if not golds:
        raise ActionError("Choose at least one gold transcript.")
    if not coders:
        raise ActionError("Choose at least one coder.")
    for gold in golds:
        if gold.gold_set.study_id not in (None, study.pk):
            raise ActionError("A gold transcript of another study's gold set cannot be used here.")
    if len({g.transcript_id for g in golds}) != len(golds):
        raise ActionError("Choose one version of each gold transcript.")
    _coders_of(study, coders)
    seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
    rng = random.Random(seed)
    coding_round = CodingRound.objects.create(
        study=study, name=name, overlap=1.0, seed=seed, created_by=created_by,
        globals_rated=all(g.globals_rated for g in golds), purpose=CodingRound.Purpose.CALIBRATION,
    )
    coding_round.sources.set(TranscriptSource.objects.filter(study=study, transcripts__golds__in=golds).distinct())
    coding_round.coders.set(coders)
    rows: list[tuple[Assignment, GoldTranscript]] = []
    for coder in coders:
        queue = list(golds)
        rng.shuffle(queue)
        rows += [
            (Assignment(coding_round=coding_round, transcript_id=g.transcript_id, coder=coder, position=pos,
                        in_results=False), g)
            for pos, g in enumerate(queue)
        ]
    made = Assignment.objects.bulk_create([a for a, _g in rows])
    GoldAssignment.objects.bulk_create(
        [GoldAssignment(assignment=a, gold=g, seeded=False) for a, (_x, g) in zip(made, rows, strict=True)]
    )
    return coding_round


def seed_plan(queues: Mapping[int, list[int]], golds: Sequence[int], *, rate: float, seed: int
              ) -> dict[int, list[tuple[int, bool]]]:
    """Pure: each coder's queue with ``round(rate × len(queue))`` gold transcripts (at least one when the
    rate is above 0 and the queue is not empty) inserted at random places; entries are (transcript id,
    seeded). A gold transcript already in a coder's queue is not seeded to them again."""
    rng = random.Random(seed ^ 0x5EED)
    out: dict[int, list[tuple[int, bool]]] = {}
    for coder_id, queue in queues.items():
        entries: list[tuple[int, bool]] = [(t, False) for t in queue]
        candidates = [g for g in golds if g not in set(queue)]
        n = min(len(candidates), max(1, round(rate * len(queue)))) if rate > 0 and queue else 0
        for gold in rng.sample(candidates, n):
            entries.insert(rng.randrange(len(entries) + 1), (gold, True))
        out[coder_id] = entries
    return out


@transaction.atomic
def set_proficiency_standard(study: Study, **values: float | int | None) -> ProficiencyStandard:
    """Store the study's proficiency thresholds (None: not required); see docs/miti.md for the defaults."""
    allowed = {"min_kappa", "min_alpha", "min_globals_within_one", "min_icc", "drift_kappa", "drift_window"}
    unknown = set(values) - allowed
    if unknown:
        raise ActionError(f"Unknown thresholds: {', '.join(sorted(unknown))}.")
    for key, value in values.items():
        if value is None:
            if key in ("drift_kappa", "drift_window"):
                raise ActionError(f"{key} cannot be empty.")
            continue
        low, high = (1, 100) if key == "drift_window" else (0, 1) if key == "min_globals_within_one" else (-1, 1)
        if not low <= value <= high:
            raise ActionError(f"{key} must lie between {low} and {high}.")
    standard, _created = ProficiencyStandard.objects.get_or_create(study=study)
    for key, value in values.items():
        setattr(standard, key, value)
    standard.save()
    return standard


@transaction.atomic
def mark_imported_round_gold(gold_set: GoldSet, coding_round: CodingRound, *, actor,
                             limit: int | None = None) -> list[GoldTranscript]:
    """Mark an imported labelled round (AnnoMI) as gold: one coding per transcript — its consensus if it
    has one, else the lowest-numbered annotator's (the one whose rows fixed the utterances on import) —
    for the first ``limit`` transcripts (all by default)."""
    chosen: dict[int, Assignment] = {}
    rows = (
        Assignment.objects.filter(coding_round=coding_round, status=Assignment.Status.SUBMITTED)
        .select_related("coding_round", "transcript").order_by("transcript_id", "kind", "pk")
    )
    for a in rows:
        current = chosen.get(a.transcript_id)
        if current is None or (a.kind == Assignment.Kind.CONSENSUS and current.kind != Assignment.Kind.CONSENSUS):
            chosen[a.transcript_id] = a
    picked = list(chosen.values())[:limit] if limit is not None else list(chosen.values())
    if not picked:
        raise ActionError("The round has no submitted coding to mark as gold.")
    return [mark_gold(gold_set, a, actor=actor) for a in picked]

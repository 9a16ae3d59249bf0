"""Coding rounds: who codes what, with a recorded seed; reopening submitted work."""

from __future__ import annotations

import random
from collections.abc import Sequence

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext

from .. import proficiency
from ..errors import ActionError
from ..models import (
    Assignment,
    AuditEvent,
    CodingRound,
    GoldAssignment,
    GoldSet,
    Membership,
    RoundGoldPolicy,
    Transcript,
    TranscriptSource,
)
from ..queries.access import removed_coder_ids
from .gold import current_golds, seed_plan
from .summaries import drop_summaries


def plan_assignments(
    transcript_ids: Sequence[int], coder_ids: Sequence[int], *, overlap: float, seed: int, per_overlap: int = 2
) -> dict[int, list[int]]:
    """Pure allocation: ``{coder_id: [transcript_id, ...]}`` in each coder's shuffled queue order.

    ``round(overlap × n)`` transcripts (chosen at random) are coded by ``per_overlap`` coders, the rest by
    one; each transcript goes to the coders with the fewest transcripts so far (ties broken by a
    rotating order), which balances load to within one transcript.
    """
    if not coder_ids:
        raise ActionError("Choose at least one coder.")
    if not 0 <= overlap <= 1:
        raise ActionError("Overlap must be between 0 and 1 (e.g. 0.2 for 20 %).")
    per_overlap = min(per_overlap, len(coder_ids))
    if overlap > 0 and per_overlap < 2:
        raise ActionError("Double coding needs at least two coders.")
    rng = random.Random(seed)
    ids = list(transcript_ids)
    rng.shuffle(ids)
    n_double = round(overlap * len(ids))
    load = {c: 0 for c in coder_ids}
    queues: dict[int, list[int]] = {c: [] for c in coder_ids}
    order = list(coder_ids)
    for i, tid in enumerate(ids):
        k = per_overlap if i < n_double else 1
        rotation = order[i % len(order) :] + order[: i % len(order)]
        chosen = sorted(rotation, key=lambda c: load[c])[:k]
        for c in chosen:
            load[c] += 1
            queues[c].append(tid)
    for c in coder_ids:
        rng.shuffle(queues[c])
    return queues


@transaction.atomic
def create_coding_round(
    study,
    *,
    name: str,
    sources: Sequence[TranscriptSource],
    coders: Sequence,
    overlap: float = 0.2,
    seed: int | None = None,
    per_overlap: int = 2,
    created_by=None,
    globals_rated: bool = True,
    purpose: str = CodingRound.Purpose.STUDY,
    require_proficiency: bool = False,
    gold_set: GoldSet | None = None,
    gold_rate: float = 0.0,
) -> CodingRound:
    """Create a round over all transcripts of ``sources`` and the coders' balanced, shuffled queues.

    Opening a round freezes the segmentation of its transcripts, so every coder codes the same units.

    ``require_proficiency``: coders below the study's proficiency standard, or whose proficiency is not
    estimable, are left out (the round records who and why; docs/calibration.md). ``gold_set`` with
    ``gold_rate`` > 0 seeds that many gold transcripts per study transcript into each coder's queue, at
    random places, to track drift; those codings stay out of the study's results.
    """
    if not name.strip():
        raise ActionError(gettext("Give the round a name."))
    if CodingRound.objects.filter(study=study, name=name).exists():
        raise ActionError(f"A round named '{name}' already exists in this study.")
    if not sources:
        raise ActionError("Choose at least one transcript source.")
    for source in sources:
        if source.study_id != study.pk:
            raise ActionError(f"Source {source.pk} does not belong to this study.")
    coder_members = set(
        Membership.objects.filter(study=study, user__in=coders, role=Membership.Role.CODER).values_list("user_id", flat=True)
    )
    missing = [u for u in coders if u.pk not in coder_members]
    if missing:
        raise ActionError(f"Not coders of this study: {', '.join(u.get_username() for u in missing)}.")
    transcript_ids = list(Transcript.objects.filter(source__in=sources).order_by("id").values_list("id", flat=True))
    if not transcript_ids:
        raise ActionError("The chosen sources have no transcripts yet.")
    if not 0 <= gold_rate <= 1:
        raise ActionError("The gold rate must be between 0 and 1.")
    golds = []
    if gold_rate > 0:
        if gold_set is None:
            raise ActionError("Choose the gold set to seed from.")
        if gold_set.study_id not in (None, study.pk):
            raise ActionError("That gold set belongs to another study.")
        golds = [g for g in current_golds(gold_set) if g.transcript_id not in set(transcript_ids)]
        if not golds:
            raise ActionError("The gold set has no transcript to seed (outside this round's sources).")
    excluded: list[dict] = []
    if require_proficiency:
        verdicts = proficiency.assess(study, [u.pk for u in coders])
        if verdicts is None:
            raise ActionError("Proficiency cannot be assessed here (the evaluation app is not installed).")
        excluded = [
            {"user_id": u.pk, "username": u.get_username(), "reasons": verdicts[u.pk].reasons,
             "failed": verdicts[u.pk].failed}
            for u in coders if not verdicts[u.pk].eligible
        ]
        left_out = {e["user_id"] for e in excluded}
        coders = [u for u in coders if u.pk not in left_out]
        if not coders:
            raise ActionError("No chosen coder meets the proficiency standard: "
                              + "; ".join(f"{e['username']}: {', '.join(e['reasons'])}" for e in excluded))
    seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
    queues = plan_assignments(transcript_ids, [u.pk for u in coders], overlap=overlap, seed=seed, per_overlap=per_overlap)
    gold_of = {g.transcript_id: g for g in golds}
    planned = seed_plan(queues, list(gold_of), rate=gold_rate, seed=seed)
    coding_round = CodingRound.objects.create(
        study=study, name=name, overlap=overlap, seed=seed, created_by=created_by, globals_rated=globals_rated,
        purpose=purpose,
    )
    coding_round.sources.set(sources)
    coding_round.coders.set(coders)
    # One insert in queue order: a seeded gold transcript's assignment id and position fall among the
    # study transcripts' (docs/blinding.md); only ``in_results`` (never sent to a coder) tells them apart.
    entries = [(coder_id, pos, tid, seeded) for coder_id, queue in planned.items()
               for pos, (tid, seeded) in enumerate(queue)]
    made = Assignment.objects.bulk_create(
        [
            Assignment(coding_round=coding_round, transcript_id=tid, coder_id=coder_id, position=pos,
                       in_results=not seeded)
            for coder_id, pos, tid, seeded in entries
        ]
    )
    GoldAssignment.objects.bulk_create(
        [GoldAssignment(assignment=a, gold=gold_of[tid], seeded=True)
         for a, (_c, _p, tid, seeded) in zip(made, entries, strict=True) if seeded]
    )
    if require_proficiency or golds:
        RoundGoldPolicy.objects.create(
            coding_round=coding_round, require_proficiency=require_proficiency, gold_set=gold_set if golds else None,
            gold_rate=gold_rate if golds else 0.0, excluded=excluded,
        )
    Transcript.objects.filter(id__in=transcript_ids).update(segmentation_locked=True)
    return coding_round


@transaction.atomic
def reopen_assignment(assignment: Assignment, *, actor) -> Assignment:
    """Make submitted work editable again (coordinators); bumps the version so open tabs get a 409."""
    locked = Assignment.objects.select_for_update().get(pk=assignment.pk)
    if locked.status != Assignment.Status.SUBMITTED:
        raise ActionError(gettext("Only submitted work can be reopened."))
    Assignment.objects.filter(pk=locked.pk).update(
        status=Assignment.Status.IN_PROGRESS, submitted_at=None, version=F("version") + 1, updated_at=timezone.now()
    )
    locked.refresh_from_db()
    drop_summaries([locked.pk])
    AuditEvent.objects.create(
        assignment=locked, actor=actor, action="reopen", old="submitted", new="in_progress", version=locked.version
    )
    return locked


@transaction.atomic
def reassign_coder(coding_round: CodingRound, *, from_user_id: int, to_username: str, actor=None) -> int:
    """Give a removed coder's work in the round to another coder; returns how many assignments moved.

    Each of their coding assignments gets a fresh one for the new coder, at the end of that coder's
    queue; the old ones stay as history and leave the results (``in_results``) until a coordinator
    includes them again (:func:`include_in_results`). Transcripts the new coder already has in this
    round are skipped (one coding per coder and transcript).
    """
    if from_user_id not in removed_coder_ids(coding_round):
        raise ActionError(gettext("Only the work of a coder removed from the study can be reassigned."))
    target = (
        Membership.objects.select_related("user")
        .filter(study_id=coding_round.study_id, user__username=to_username, role=Membership.Role.CODER,
                user__is_active=True)
        .first()
    )
    if target is None:
        raise ActionError(f"'{to_username}' is not an active coder of this study.")
    old = list(
        Assignment.objects.select_for_update()
        .filter(coding_round=coding_round, coder_id=from_user_id, kind=Assignment.Kind.CODING, in_results=True)
        .order_by("position")
    )
    taken = set(
        Assignment.objects.filter(coding_round=coding_round, coder=target.user, kind=Assignment.Kind.CODING)
        .values_list("transcript_id", flat=True)
    )
    moving = [a for a in old if a.transcript_id not in taken]
    start = (
        Assignment.objects.filter(coding_round=coding_round, coder=target.user).order_by("-position")
        .values_list("position", flat=True).first()
    )
    start = -1 if start is None else start
    Assignment.objects.bulk_create(
        [
            Assignment(coding_round=coding_round, transcript_id=a.transcript_id, coder=target.user, position=start + 1 + i)
            for i, a in enumerate(moving)
        ]
    )
    Assignment.objects.filter(pk__in=[a.pk for a in moving]).update(in_results=False, updated_at=timezone.now())
    coding_round.coders.add(target.user)
    for a in moving:
        AuditEvent.objects.create(
            assignment=a, actor=actor, action="reassign", old=str(from_user_id), new=target.user.get_username(),
            version=a.version,
        )
    return len(moving)


@transaction.atomic
def include_in_results(coding_round: CodingRound, *, coder_id: int, include: bool) -> int:
    """Count a removed coder's (reassigned) work in results again, or leave it out; returns the rows changed."""
    # Codings of gold transcripts (seeded drift checks) never count in results.
    return Assignment.objects.filter(
        coding_round=coding_round, coder_id=coder_id, kind=Assignment.Kind.CODING, gold_link__isnull=True
    ).exclude(in_results=include).update(in_results=include, updated_at=timezone.now())

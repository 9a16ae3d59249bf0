"""Coding rounds: who codes what, with a recorded seed; reopening submitted work."""

from __future__ import annotations

import random
from collections.abc import Sequence

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ..errors import ActionError
from ..models import Assignment, AuditEvent, CodingRound, Membership, Transcript, TranscriptSource
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
) -> CodingRound:
    """Create a round over all transcripts of ``sources`` and the coders' balanced, shuffled queues.

    Opening a round freezes the segmentation of its transcripts, so every coder codes the same units.
    """
    if not name.strip():
        raise ActionError("Give the round a name.")
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
    seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
    queues = plan_assignments(transcript_ids, [u.pk for u in coders], overlap=overlap, seed=seed, per_overlap=per_overlap)
    coding_round = CodingRound.objects.create(
        study=study, name=name, overlap=overlap, seed=seed, created_by=created_by, globals_rated=globals_rated
    )
    coding_round.sources.set(sources)
    coding_round.coders.set(coders)
    Assignment.objects.bulk_create(
        [
            Assignment(coding_round=coding_round, transcript_id=tid, coder_id=coder_id, position=pos)
            for coder_id, queue in queues.items()
            for pos, tid in enumerate(queue)
        ]
    )
    Transcript.objects.filter(id__in=transcript_ids).update(segmentation_locked=True)
    return coding_round


@transaction.atomic
def reopen_assignment(assignment: Assignment, *, actor) -> Assignment:
    """Make submitted work editable again (coordinators); bumps the version so open tabs get a 409."""
    locked = Assignment.objects.select_for_update().get(pk=assignment.pk)
    if locked.status != Assignment.Status.SUBMITTED:
        raise ActionError("Only submitted work can be reopened.")
    Assignment.objects.filter(pk=locked.pk).update(
        status=Assignment.Status.IN_PROGRESS, submitted_at=None, version=F("version") + 1, updated_at=timezone.now()
    )
    locked.refresh_from_db()
    drop_summaries([locked.pk])
    AuditEvent.objects.create(
        assignment=locked, actor=actor, action="reopen", old="submitted", new="in_progress", version=locked.version
    )
    return locked

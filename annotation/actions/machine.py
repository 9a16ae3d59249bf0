"""Machine codings: a machine coder codes a round like a coder, through a service user.

The service user cannot sign in (inactive, no usable password) and belongs to no study: it never
reaches a queue, a page or the API, and the permission gate (``annotation.queries.access``) gives it
nothing. Its work is ``Assignment.Kind.MACHINE``: one assignment per transcript of the round, whatever
the round's overlap, its codes ``UtteranceCode`` rows like a human's, tallied and summarised by the same
rules when the transcript is complete. ``annotation`` knows no machine coder: ``inference`` names the
service user and calls these actions.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .. import miti
from ..errors import ActionError
from ..models import Assignment, AuditEvent, CodingRound, Transcript, Utterance, UtteranceCode
from .summaries import drop_summaries, store_summaries

MACHINE = Assignment.Kind.MACHINE


def create_service_user(username: str):
    """A user for a machine coder: inactive, without a usable password, in no study (cannot sign in)."""
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise ActionError(f"The user name '{username}' is taken.")
    user = User(username=username, is_active=False)
    user.set_unusable_password()
    user.save()
    return user


@transaction.atomic
def add_machine_coding(coding_round: CodingRound, service_user) -> int:
    """Give ``service_user`` a machine assignment for every transcript of the round; returns how many are new.

    Idempotent: transcripts it already has are skipped. It is not added to the round's coders (that
    list is the people who code it).
    """
    if service_user.is_active or service_user.has_usable_password():
        raise ActionError("Only a service user that cannot sign in may code as a machine.")
    transcript_ids = set(
        Transcript.objects.filter(source__rounds=coding_round).values_list("id", flat=True)
    )
    have = set(
        Assignment.objects.filter(coding_round=coding_round, coder=service_user, kind=MACHINE)
        .values_list("transcript_id", flat=True)
    )
    new = sorted(transcript_ids - have)
    Assignment.objects.bulk_create(
        [
            Assignment(coding_round=coding_round, transcript_id=tid, coder=service_user, kind=MACHINE, position=i)
            for i, tid in enumerate(new, start=len(have))
        ]
    )
    return len(new)


@transaction.atomic
def record_machine_codes(assignment: Assignment, codes: Mapping[int, str]) -> bool:
    """Store a machine's codes (utterance pk → code key or ``"NONE"``) on its assignment, all or nothing.

    Every code is checked first: an unknown code or an utterance of another transcript stores nothing.
    Codes already there are replaced. When every utterance of the transcript is coded, the coding is
    submitted and its summary stored (globals "not rated" unless set); returns whether it is complete.
    """
    if assignment.kind != MACHINE:
        raise ActionError("Only machine codings are recorded this way.")
    locked = Assignment.objects.select_for_update().get(pk=assignment.pk)
    try:
        checked = {int(u): miti.validate_code(c) for u, c in codes.items()}
    except ValueError as exc:
        raise ActionError(str(exc)) from None
    utterances = set(Utterance.objects.filter(volley__transcript_id=locked.transcript_id).values_list("id", flat=True))
    foreign = sorted(set(checked) - utterances)
    if foreign:
        raise ActionError(f"Utterances {foreign[:5]} are not part of transcript {locked.transcript_id}.")
    UtteranceCode.objects.filter(assignment=locked, utterance_id__in=list(checked)).delete()
    UtteranceCode.objects.bulk_create(
        [UtteranceCode(assignment=locked, utterance_id=u, code=c) for u, c in checked.items()]
    )
    complete = UtteranceCode.objects.filter(assignment=locked).count() == len(utterances)
    now = timezone.now()
    if complete:
        status = Assignment.Status.SUBMITTED
    else:
        status = Assignment.Status.IN_PROGRESS
    Assignment.objects.filter(pk=locked.pk).update(
        version=F("version") + 1, status=status, started_at=locked.started_at or now,
        submitted_at=now if complete else None, updated_at=now,
    )
    locked.refresh_from_db()
    AuditEvent.objects.create(
        assignment=locked, actor=None, action="machine", target="assignment", old="",
        new=f"{len(checked)} codes", version=locked.version,
    )
    if complete:
        store_summaries([locked.pk])
    else:
        drop_summaries([locked.pk])
    assignment.version, assignment.status = locked.version, locked.status
    return complete


@transaction.atomic
def reset_machine_coding(assignment: Assignment) -> None:
    """Remove a machine coding's codes (a new run codes the transcript again from nothing)."""
    if assignment.kind != MACHINE:
        raise ActionError("Only machine codings are reset this way.")
    UtteranceCode.objects.filter(assignment=assignment).delete()
    Assignment.objects.filter(pk=assignment.pk).update(
        status=Assignment.Status.PENDING, submitted_at=None, version=F("version") + 1, updated_at=timezone.now()
    )
    drop_summaries([assignment.pk])


__all__ = ["add_machine_coding", "create_service_user", "record_machine_codes", "reset_machine_coding"]

"""The permission gate: who may see which study, round and assignment. Every other read starts here.

An outsider gets 404 (the study's existence is not revealed); a member without the needed role gets
403. Site staff (Django ``is_staff``) act as coordinators everywhere.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.http import Http404

from ..models import Assignment, CodingRound, Dialogue, ImportBatch, Membership, Study, Transcript

COORDINATOR = Membership.Role.COORDINATOR
CODER = Membership.Role.CODER

User = AbstractBaseUser | AnonymousUser


def studies_for(user: User) -> QuerySet[Study]:
    """Studies the user belongs to (all studies for staff)."""
    if not user.is_authenticated:
        return Study.objects.none()
    if user.is_staff:
        return Study.objects.all()
    return Study.objects.filter(memberships__user=user).distinct()


def role_in(user: User, study: Study) -> str | None:
    """The user's role in the study: 'coordinator', 'coder' or None. Staff count as coordinators."""
    if not user.is_authenticated:
        return None
    if user.is_staff:
        return COORDINATOR
    return Membership.objects.filter(study=study, user=user).values_list("role", flat=True).first()


def is_coordinator(user: User, study: Study) -> bool:
    return role_in(user, study) == COORDINATOR


def study_for(user: User, slug: str, role: str | None = None) -> Study:
    """The study with ``slug`` if the user belongs to it (404 otherwise); 403 if ``role`` is missing."""
    study = Study.objects.filter(slug=slug).first()
    if study is None:
        raise Http404("No such study.")
    actual = role_in(user, study)
    if actual is None:
        raise Http404("No such study.")
    if role == COORDINATOR and actual != COORDINATOR:
        raise PermissionDenied("Only the study's coordinators can do this.")
    return study


def study_with_counts(study: Study) -> dict[str, int]:
    counts = Dialogue.objects.filter(study=study).aggregate(
        dialogues=Count("id"),
        train=Count("id", filter=Q(split="train")),
        test=Count("id", filter=Q(split="test")),
        unused=Count("id", filter=Q(split="unused")),
        duplicates=Count("id", filter=Q(duplicate_of__isnull=False)),
    )
    counts["members"] = Membership.objects.filter(study=study).count()
    counts["transcripts"] = Transcript.objects.filter(source__study=study).count()
    counts["rounds"] = CodingRound.objects.filter(study=study).count()
    return counts


def members_of(study: Study) -> QuerySet[Membership]:
    return Membership.objects.filter(study=study).select_related("user").order_by("role", "user__username")


def dialogues_for(user: User, study: Study) -> QuerySet[Dialogue]:
    """Dialogues of a study: coordinators only (coders see transcripts, never the source table)."""
    if not is_coordinator(user, study):
        raise PermissionDenied("Only the study's coordinators can browse dialogues.")
    return Dialogue.objects.filter(study=study)


def import_batch_for(user: User, study: Study, pk: int) -> ImportBatch:
    """One import of the study, for its coordinators (404 when it is another study's)."""
    if not is_coordinator(user, study):
        raise PermissionDenied("Only the study's coordinators can follow imports.")
    batch = ImportBatch.objects.select_related("study").filter(study=study, pk=pk).first()
    if batch is None:
        raise Http404("No such import.")
    return batch


def _own_assignments(user: User) -> QuerySet[Assignment]:
    """The user's assignments in studies they still belong to; none for an inactive user.

    Membership is the gate for everything a coder touches: removing a member (or deactivating the
    user) ends their access to queue, pages, partials, API and writes at once, while the assignments
    themselves stay as history; re-adding the member restores access. Staff see their own work in
    every study, as they act as coordinators everywhere.
    """
    if not user.is_authenticated or not user.is_active:
        return Assignment.objects.none()
    own = Assignment.objects.filter(coder=user)
    if user.is_staff:
        return own
    # Membership is unique per (study, user): the join adds at most one row per assignment.
    return own.filter(coding_round__study__memberships__user=user)


def assignments_for(user: User) -> QuerySet[Assignment]:
    """The user's own coding queue across the studies they belong to, in queue order."""
    return (
        _own_assignments(user)
        .filter(kind=Assignment.Kind.CODING)
        .select_related("transcript", "coding_round", "coding_round__study")
        .order_by("coding_round__study__name", "coding_round_id", "position")
    )


def next_assignment_for(user: User, current: Assignment | None = None) -> Assignment | None:
    """The next transcript to code in the user's own queue, or None when nothing is left.

    The first pending or in-progress assignment of an open round that comes after ``current`` in queue
    order (``assignments_for``), wrapping around to the start of the queue; never ``current`` itself,
    never submitted work, never another coder's. Without ``current``: the first one in the queue.
    """
    queue = list(
        assignments_for(user)
        .filter(
            Q(status__in=[Assignment.Status.PENDING, Assignment.Status.IN_PROGRESS],
              coding_round__status=CodingRound.Status.OPEN)
            | Q(pk=current.pk if current is not None else None)
        )
        .values_list("pk", flat=True)
    )
    start = queue.index(current.pk) + 1 if current is not None and current.pk in queue else 0
    # After the current one first, then from the top of the queue: skipping ahead never loops back early.
    for pk in queue[start:] + queue[:start]:
        if current is None or pk != current.pk:
            return assignments_for(user).get(pk=pk)
    return None


def assignment_for(user: User, pk: int) -> Assignment:
    """The user's own assignment in a study they belong to (404 for anybody else's, another coder's,
    or their own once they were removed from the study)."""
    assignment = (
        _own_assignments(user).select_related("transcript", "coding_round", "coding_round__study")
        .filter(pk=pk)
        .first()
    )
    if assignment is None:
        raise Http404("No such assignment.")
    return assignment


def removed_coder_ids(coding_round: CodingRound) -> set[int]:
    """Coders with work in the round who no longer belong to its study (or were deactivated)."""
    involved = Assignment.objects.filter(coding_round=coding_round, kind=Assignment.Kind.CODING)
    members = Membership.objects.filter(study_id=coding_round.study_id, user__is_active=True)
    return set(
        involved.exclude(coder_id__in=members.values("user_id")).order_by().values_list("coder_id", flat=True).distinct()
    )


def round_for(user: User, study: Study, pk: int, role: str | None = COORDINATOR) -> CodingRound:
    """A coding round of the study; coordinators only by default."""
    if role == COORDINATOR and not is_coordinator(user, study):
        raise PermissionDenied("Only the study's coordinators can manage coding rounds.")
    coding_round = CodingRound.objects.filter(study=study, pk=pk).first()
    if coding_round is None:
        raise Http404("No such coding round.")
    return coding_round

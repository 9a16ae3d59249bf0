"""Permission-aware reads of the registry and of runs; views, API and commands go through these.

Runs belong to a study and are coordinator-only (a coder must never learn which model wrote what):
an outsider gets 404, a coder 403 (``annotation.queries.study_for``). The registry is global: site
staff and anybody who coordinates a study may see and register models.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db.models import Count, Max, Q, QuerySet, Sum
from django.http import Http404
from django.utils import timezone

from annotation import queries as annotation_queries
from annotation.models import Membership, Study

from .models import GenerationItem, GenerationRun, RegisteredModel, WorkerPreflight

COORDINATOR = annotation_queries.COORDINATOR


def can_manage_models(user) -> bool:
    """Staff, and coordinators of at least one study, may use the model registry."""
    if not user.is_authenticated:
        return False
    return user.is_staff or Membership.objects.filter(user=user, role=Membership.Role.COORDINATOR).exists()


def models_for(user) -> QuerySet[RegisteredModel]:
    if not can_manage_models(user):
        raise PermissionDenied("Only coordinators and site staff can use the model registry.")
    return RegisteredModel.objects.all()


def model_for(user, pk: int) -> RegisteredModel:
    model = models_for(user).filter(pk=pk).first()
    if model is None:
        raise Http404("No such model.")
    return model


def runs_for(user, study: Study) -> QuerySet[GenerationRun]:
    """The study's runs, newest first; coordinators only."""
    if not annotation_queries.is_coordinator(user, study):
        raise PermissionDenied("Only the study's coordinators can see generation runs.")
    return GenerationRun.objects.filter(study=study).select_related("model", "created_by")


def run_for(user, slug: str, pk: int) -> GenerationRun:
    """A run of the study ``slug``: 404 for outsiders and for runs of other studies, 403 for coders."""
    study = annotation_queries.study_for(user, slug, role=COORDINATOR)
    run = GenerationRun.objects.filter(study=study, pk=pk).select_related("model", "study").first()
    if run is None:
        raise Http404("No such run.")
    return run


def item_for(run: GenerationRun, pk: int) -> GenerationItem:
    item = GenerationItem.objects.filter(run=run, pk=pk).first()
    if item is None:
        raise Http404("No such item.")
    return item


def runs_of_model_for(user, model: RegisteredModel) -> QuerySet[GenerationRun]:
    """The model's runs in the studies the user coordinates (every run for staff)."""
    runs = GenerationRun.objects.filter(model=model).select_related("study")
    if user.is_staff:
        return runs
    return runs.filter(
        study__memberships__user=user, study__memberships__role=Membership.Role.COORDINATOR
    ).distinct()


@dataclass(frozen=True)
class RunProgress:
    """What the progress bar shows. Rates count items finished since the run (re)started."""

    total: int
    done: int
    failed: int
    pending: int
    claimed: int
    completion_tokens: int
    elapsed_seconds: float | None
    tokens_per_second: float | None
    rounds_per_second: float | None
    eta_seconds: float | None
    finished: bool

    @property
    def percent(self) -> float:
        return 100.0 * (self.done + self.failed) / self.total if self.total else 0.0

    @property
    def percent_done(self) -> float:
        return 100.0 * self.done / self.total if self.total else 0.0

    @property
    def percent_failed(self) -> float:
        return 100.0 * self.failed / self.total if self.total else 0.0


def run_progress(run: GenerationRun) -> RunProgress:
    """Counts, throughput and ETA of a run, computed on read from its items (no stored counters)."""
    items = GenerationItem.objects.filter(run=run)
    counts = items.aggregate(
        total=Count("id"),
        done=Count("id", filter=Q(status=GenerationItem.Status.DONE)),
        failed=Count("id", filter=Q(status=GenerationItem.Status.FAILED)),
        pending=Count("id", filter=Q(status=GenerationItem.Status.PENDING)),
        claimed=Count("id", filter=Q(status=GenerationItem.Status.CLAIMED)),
        tokens=Sum("completion_tokens", filter=Q(status=GenerationItem.Status.DONE)),
    )
    finished = run.status in (
        GenerationRun.Status.DONE,
        GenerationRun.Status.FAILED,
        GenerationRun.Status.CANCELLED,
    )
    elapsed = tokens_per_second = rounds_per_second = eta = None
    if run.started_at is not None:
        recent = items.filter(finished_at__gte=run.started_at).aggregate(
            n=Count("id"), tokens=Sum("completion_tokens"), last=Max("finished_at")
        )
        end = run.finished_at or (recent["last"] if finished else None) or timezone.now()
        elapsed = max((end - run.started_at).total_seconds(), 1e-6)
        if recent["n"]:
            tokens_per_second = (recent["tokens"] or 0) / elapsed
            rounds_per_second = recent["n"] / elapsed
            remaining = counts["pending"] + counts["claimed"]
            eta = None if finished else remaining / rounds_per_second
    return RunProgress(
        total=counts["total"],
        done=counts["done"],
        failed=counts["failed"],
        pending=counts["pending"],
        claimed=counts["claimed"],
        completion_tokens=counts["tokens"] or 0,
        elapsed_seconds=elapsed,
        tokens_per_second=tokens_per_second,
        rounds_per_second=rounds_per_second,
        eta_seconds=eta,
        finished=finished,
    )


def run_items(run: GenerationRun, status: str | None = None) -> QuerySet[GenerationItem]:
    items = (
        GenerationItem.objects.filter(run=run)
        .select_related("dialogue")
        .order_by("dialogue_id", "round_index")
    )
    if status:
        items = items.filter(status=status)
    return items


def gpu_workers_for(user) -> QuerySet[WorkerPreflight]:
    """The last preflight of every GPU worker machine, for those who may manage models (else none)."""
    if not can_manage_models(user):
        return WorkerPreflight.objects.none()
    return WorkerPreflight.objects.order_by("hostname")

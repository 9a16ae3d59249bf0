"""Tables of machine coders: the coder with its provenance, and its runs over coding rounds.

A ``MachineCoder`` codes through its own service user (``service_user``: inactive, no password, in no
study), so its codings are ordinary ``annotation`` assignments of kind ``machine``. A
``MachineCodingRun`` is one pass of a coder over one round; its ``MachineCodingItem`` rows (one per
volley) carry the claim kernel's fields, as generation items do. Imported by name in
``inference.models`` (Django finds the app's tables there); nothing here imports ``inference.models``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from annotation.claims import ClaimedWork


class MachineCoder(models.Model):
    class Kind(models.TextChoices):
        CLASSIFIER = "classifier", _("Classifier trained on coded transcripts")
        LLM = "llm", _("Language model prompted with the codebook")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued for training")
        TRAINING = "training", _("Training")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Failed")

    study = models.ForeignKey("annotation.Study", on_delete=models.CASCADE, related_name="machine_coders")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    # An LLM coder uses a registered model (any backend); a classifier has none.
    model = models.ForeignKey(
        "inference.RegisteredModel", null=True, blank=True, on_delete=models.PROTECT, related_name="machine_coders"
    )
    service_user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="machine_coder")
    # What it learnt from: the labelled round (classifier) …
    training_round = models.ForeignKey(
        "annotation.CodingRound", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # … and its provenance as data: rounds, counts, labels, seed, folds (classifier) or the codebook
    # text it is prompted with and the model's parameters (LLM).
    trained_with = models.JSONField(default=dict, blank=True)
    codebook = models.TextField(blank=True, help_text=_("The codebook an LLM coder is prompted with."))
    seed = models.BigIntegerField(default=0)
    folds = models.PositiveSmallIntegerField(default=5)
    # Transcript-level cross-validation: kappa, macro F1, per-fold scores, labels, confusion matrix.
    validation = models.JSONField(default=dict, blank=True)
    artefact_path = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    trained_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["study", "name"]
        constraints = [
            models.UniqueConstraint(fields=["study", "name"], name="machine_coder_name_unique_per_study"),
            models.CheckConstraint(condition=Q(kind__in=["classifier", "llm"]), name="machine_coder_kind_valid"),
            models.CheckConstraint(
                condition=Q(kind="classifier") | Q(model__isnull=False), name="machine_coder_llm_has_model"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["queued", "training", "ready", "failed"]), name="machine_coder_status_valid"
            ),
            models.CheckConstraint(condition=Q(progress__gte=0.0, progress__lte=1.0), name="machine_coder_progress_range"),
        ]

    def __str__(self) -> str:
        return self.name


class MachineCodingRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Finished with failed items")

    coder = models.ForeignKey(MachineCoder, on_delete=models.CASCADE, related_name="runs")
    coding_round = models.ForeignKey("annotation.CodingRound", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    params = models.JSONField(default=dict, blank=True, help_text=_("Snapshot of the model's parameters at start."))
    chunk_size = models.PositiveIntegerField(default=8)
    queue = models.CharField(max_length=20, default="cpu")
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "done", "failed"]), name="machine_run_status_valid"
            ),
            models.CheckConstraint(condition=Q(chunk_size__gte=1), name="machine_run_chunk_size_positive"),
        ]


class MachineCodingItem(ClaimedWork):
    """One volley of one transcript for a run: its codes are stored whole or not at all."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        CLAIMED = "claimed", _("Claimed")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    run = models.ForeignKey(MachineCodingRun, on_delete=models.CASCADE, related_name="items")
    assignment = models.ForeignKey("annotation.Assignment", on_delete=models.CASCADE, related_name="+")
    volley = models.ForeignKey("annotation.Volley", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    response = models.TextField(blank=True)  # the model's raw answer (LLM), kept for the record
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "assignment_id", "volley_id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "volley"], name="one_machine_item_per_run_volley"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "claimed", "done", "failed"]), name="machine_item_status_valid"
            ),
        ]
        indexes = [models.Index(fields=["run", "status"])]

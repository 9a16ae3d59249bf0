"""Tables of the MI-LLM recipe: versioned prompts, MI-style transformation jobs and their items,
LLM-judge quality scores, LoRA fine-tuning jobs and their per-step loss.

Django finds them because ``inference.models`` imports them by name: they are models of the
``inference`` app (tables ``inference_*``, migrations in ``inference/migrations``). Transformation
items carry the claim kernel's fields (``inference.claims.ClaimedWork``). Invariants are database
constraints: one item per (job, source dialogue), one prompt per
(name, version), one loss row per (job, step), rubric scores within CPsyCoun's ranges.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from annotation.models import Dialogue, Study

from ..claims import ClaimedWork

# Referenced by label, not imported: inference.models imports this module (a circle otherwise).
RegisteredModel = "inference.RegisteredModel"

__all__ = [
    "FineTuneJob",
    "FineTuneStep",
    "PromptTemplate",
    "QualityScore",
    "TransformationItem",
    "TransformationJob",
]


class PromptTemplate(models.Model):
    """One version of a prompt. Editing a prompt saves a new version; old versions stay, because
    derived dialogues and judge scores name the version that produced them."""

    class Kind(models.TextChoices):
        TRANSFORM = "transform", _("MI-style rewrite")
        JUDGE = "judge", _("Quality judge")

    name = models.CharField(max_length=100)
    version = models.PositiveIntegerField()
    kind = models.CharField(max_length=12, choices=Kind.choices)
    text = models.TextField()
    note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="prompt_name_version_unique"),
            models.CheckConstraint(condition=Q(version__gte=1), name="prompt_version_positive"),
            models.CheckConstraint(condition=Q(kind__in=["transform", "judge"]), name="prompt_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class TransformationJob(models.Model):
    """Rewrite dialogues MI-style with a model and a prompt version; one item per source dialogue."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        CANCELLED = "cancelled", _("Cancelled")
        DONE = "done", _("Done")

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="transformation_jobs")
    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="transformation_jobs")
    prompt = models.ForeignKey(PromptTemplate, on_delete=models.PROTECT, related_name="transformation_jobs")
    params = models.JSONField(default=dict, help_text=_("Snapshot of the model's parameters at start."))
    max_new_tokens = models.PositiveIntegerField(default=2048)
    judge_model = models.ForeignKey(
        RegisteredModel, null=True, blank=True, on_delete=models.PROTECT, related_name="judge_jobs"
    )
    judge_prompt = models.ForeignKey(
        PromptTemplate, null=True, blank=True, on_delete=models.PROTECT, related_name="judge_jobs"
    )
    judge_params = models.JSONField(default=dict, blank=True)
    selection = models.JSONField(
        default=dict, blank=True, help_text=_("How the source dialogues were picked.")
    )
    output_split = models.CharField(max_length=10, default="train")
    suffix = models.CharField(max_length=40, help_text=_("Appended to the source id: <source>-<suffix>."))
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    chunk_size = models.PositiveIntegerField(default=4)
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
            models.CheckConstraint(condition=Q(chunk_size__gte=1), name="transform_chunk_size_positive"),
            models.CheckConstraint(
                condition=Q(output_split__in=["train", "test", "unused"]), name="transform_output_split_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"transformation {self.pk} ({self.model} · {self.prompt})"


class TransformationItem(ClaimedWork):
    """One source dialogue of a job: accepted (a new derived dialogue), rejected (the model's output
    failed validation: raw output and reason kept) or failed (no output: the backend's error)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        CLAIMED = "claimed", _("Claimed")
        ACCEPTED = "accepted", _("Accepted")
        REJECTED = "rejected", _("Rejected")
        FAILED = "failed", _("Failed")

    job = models.ForeignKey(TransformationJob, on_delete=models.CASCADE, related_name="items")
    source = models.ForeignKey(Dialogue, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    raw_output = models.TextField(blank=True)
    reason_code = models.CharField(max_length=30, blank=True)
    reason = models.TextField(blank=True)
    result = models.ForeignKey(Dialogue, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    finish_reason = models.CharField(max_length=20, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "source_id"]
        constraints = [
            models.UniqueConstraint(fields=["job", "source"], name="one_transformation_item_per_source"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "claimed", "accepted", "rejected", "failed"]),
                name="transformation_item_status_valid",
            ),
        ]
        indexes = [models.Index(fields=["job", "status"])]


class QualityScore(models.Model):
    """An LLM judge's CPsyCoun rubric scores for one dialogue. Scores are null when the verdict could
    not be read; ``error`` says why and ``raw_output`` keeps what the judge said."""

    dialogue = models.ForeignKey(Dialogue, on_delete=models.CASCADE, related_name="quality_scores")
    judge_model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="quality_scores")
    prompt = models.ForeignKey(PromptTemplate, on_delete=models.PROTECT, related_name="quality_scores")
    job = models.ForeignKey(
        TransformationJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="quality_scores"
    )
    comprehensiveness = models.PositiveSmallIntegerField(null=True, blank=True)
    professionalism = models.PositiveSmallIntegerField(null=True, blank=True)
    authenticity = models.PositiveSmallIntegerField(null=True, blank=True)
    safety = models.PositiveSmallIntegerField(null=True, blank=True)
    total = models.PositiveSmallIntegerField(null=True, blank=True)
    raw_output = models.TextField(blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dialogue_id", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["dialogue", "judge_model", "prompt"],
                name="one_quality_score_per_dialogue_judge_prompt",
            ),
            models.CheckConstraint(
                condition=Q(comprehensiveness__lte=2), name="quality_comprehensiveness_0_2"
            ),
            models.CheckConstraint(condition=Q(professionalism__lte=3), name="quality_professionalism_0_3"),
            models.CheckConstraint(condition=Q(authenticity__lte=3), name="quality_authenticity_0_3"),
            models.CheckConstraint(condition=Q(safety__lte=1), name="quality_safety_0_1"),
            models.CheckConstraint(condition=Q(total__lte=9), name="quality_total_0_9"),
        ]
        indexes = [models.Index(fields=["total"])]


class FineTuneJob(models.Model):
    """LoRA SFT of a registered base model on a study's split; registers the adapter when done."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        STOPPED = "stopped", _("Stopped")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="finetune_jobs")
    base_model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="finetune_jobs")
    output_name = models.CharField(
        max_length=120, help_text=_("Name the fine-tuned model is registered under.")
    )
    split = models.CharField(max_length=10, default="train")
    derived_only = models.BooleanField(
        default=False, help_text=_("Train only on derived (e.g. MI-style rewritten) dialogues of the split.")
    )
    min_judge_total = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text=_("Train only on dialogues whose judge total is at least this.")
    )
    system_prompt = models.TextField(blank=True)
    hyperparameters = models.JSONField(default=dict)
    # The training set is fixed when the job starts, so a later split change cannot alter a queued job.
    dialogue_ids = models.JSONField(default=list, blank=True)
    dialogue_count = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    stop_requested = models.BooleanField(default=False)
    claim_token = models.CharField(max_length=64, blank=True)
    queue = models.CharField(max_length=20, default="train")
    current_step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    log = models.TextField(blank=True)
    error = models.TextField(blank=True)
    adapter_path = models.CharField(max_length=500, blank=True)
    result_model = models.ForeignKey(
        RegisteredModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="trained_by"
    )
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
                condition=Q(status__in=["queued", "running", "stopped", "done", "failed"]),
                name="finetune_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(split__in=["train", "test", "unused"]), name="finetune_split_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"fine-tune {self.pk} ({self.base_model} → {self.output_name})"


class FineTuneStep(models.Model):
    """The loss of one optimizer step, written as training goes (the job page draws them)."""

    job = models.ForeignKey(FineTuneJob, on_delete=models.CASCADE, related_name="steps")
    step = models.PositiveIntegerField()
    loss = models.FloatField()
    learning_rate = models.FloatField()
    epoch = models.FloatField()
    elapsed_s = models.FloatField()

    class Meta:
        ordering = ["job", "step"]
        constraints = [models.UniqueConstraint(fields=["job", "step"], name="one_loss_per_job_step")]

"""Model registry, generation runs and their per-round items — and, imported by name below, the
MI-LLM recipe's tables (``inference.recipe.models``), which belong to this app too.

A ``GenerationItem`` is one round of one test dialogue; ``(run, dialogue, round_index)`` is unique in
the database, so creating items is idempotent and a re-sent task can never duplicate a row. Items
carry the claim kernel's fields (``inference.claims.ClaimedWork``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from annotation.models import Dialogue, Study

from .claims import ClaimedWork
from .coders.models import MachineCoder, MachineCodingItem, MachineCodingRun
from .recipe.models import (
    FineTuneJob,
    FineTuneStep,
    PromptTemplate,
    QualityScore,
    TransformationItem,
    TransformationJob,
)

__all__ = [
    "FineTuneJob",
    "FineTuneStep",
    "GenerationItem",
    "GenerationRun",
    "MachineCoder",
    "MachineCodingItem",
    "MachineCodingRun",
    "PromptTemplate",
    "QualityScore",
    "RegisteredModel",
    "WorkerPreflight",
    "TransformationItem",
    "TransformationJob",
]


class PromptMessagesField(models.JSONField):
    """A JSON field whose bulk inserts use ``VALUES`` rather than Django 5.2's ``UNNEST`` on PostgreSQL.

    For ``UNNEST`` psycopg writes each column as a text array and escapes every double quote of every
    JSON document through a regex callback; a run's items carry whole prompt histories, so inserting
    them that way took 2-3x longer (600 items: 1.3-2.1 s against 0.5-0.7 s, measured under load; see
    docs/benchmarks.md, "Platform cost per round"). A field with its own placeholder opts out.
    """

    def get_placeholder(self, value, compiler, connection):
        return "%s"


class RegisteredModel(models.Model):
    class Backend(models.TextChoices):
        VLLM = "vllm", "vLLM (GPU)"
        TRANSFORMERS = "transformers", "transformers (CPU/GPU)"
        OPENAI = "openai", _("OpenAI-compatible server")

    name = models.CharField(_("name"), max_length=120, unique=True)
    backend = models.CharField(_("backend"), max_length=20, choices=Backend.choices)
    base_model = models.CharField(_("base model"), max_length=500, help_text=_("Local path or hub id of the base model."))
    adapter_path = models.CharField(_("adapter path"), max_length=500, blank=True, help_text=_("Optional LoRA adapter folder."))
    chat_template = models.TextField(_("chat template"), blank=True, help_text=_("Optional Jinja chat template override."))
    system_prompt = models.TextField(_("system prompt"), blank=True)
    server_url = models.CharField(_("server URL"), max_length=500, blank=True, help_text=_("For the openai backend."))
    api_key_env = models.CharField(
        _("API key variable"), max_length=100, blank=True, help_text=_("Name of the environment variable holding the API key.")
    )
    context_length = models.PositiveIntegerField(_("context length"), null=True, blank=True)
    engine_options = models.JSONField(
        _("engine options"),
        default=dict,
        blank=True,
        help_text=_(
            "Backend options as JSON, e.g. {\"max_lora_rank\": 128, \"gpu_memory_utilization\": 0.85} "
            "for vLLM or {\"batch_size\": 16} for transformers; checked before an engine starts."
        ),
    )
    temperature = models.FloatField(_("temperature"), default=0.0)
    top_p = models.FloatField("top_p", default=1.0)
    top_k = models.IntegerField("top_k", default=-1)
    max_new_tokens = models.PositiveIntegerField(_("max new tokens"), default=256)
    repetition_penalty = models.FloatField(_("repetition penalty"), default=1.0)
    seed = models.BigIntegerField(_("seed"), null=True, blank=True, default=0)
    is_finetuned = models.BooleanField(_("fine-tuned"), default=False)
    base_of = models.ForeignKey(
        "self", verbose_name=_("trained from"), null=True, blank=True, on_delete=models.SET_NULL, related_name="finetunes",
        help_text=_("For a fine-tuned model: the registered base model it was trained from."),
    )
    provenance = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(backend__in=["vllm", "transformers", "openai"]), name="model_backend_valid"
            ),
            models.CheckConstraint(condition=Q(temperature__gte=0), name="model_temperature_nonneg"),
            models.CheckConstraint(condition=Q(top_p__gt=0) & Q(top_p__lte=1), name="model_top_p_range"),
        ]

    def __str__(self) -> str:
        return self.name


class GenerationRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        CANCELLED = "cancelled", _("Cancelled")
        DONE = "done", _("Done")
        FAILED = "failed", _("Finished with failed items")

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="generation_runs")
    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="runs")
    split = models.CharField(max_length=10, default="test")
    params = models.JSONField(default=dict, help_text=_("Snapshot of the model's parameters at start."))
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    chunk_size = models.PositiveIntegerField(default=8)
    queue = models.CharField(max_length=20, default="cpu")
    error = models.TextField(blank=True)
    source_id = models.BigIntegerField(null=True, blank=True, help_text=_("TranscriptSource created on finish."))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=Q(chunk_size__gte=1), name="run_chunk_size_positive")]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.model})"


class GenerationItem(ClaimedWork):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        CLAIMED = "claimed", _("Claimed")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    run = models.ForeignKey(GenerationRun, on_delete=models.CASCADE, related_name="items")
    dialogue = models.ForeignKey(Dialogue, on_delete=models.CASCADE, related_name="+")
    round_index = models.PositiveIntegerField()
    messages = PromptMessagesField(default=list)
    reference = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    response = models.TextField(blank=True)
    finish_reason = models.CharField(max_length=20, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    dropped_pairs = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "dialogue_id", "round_index"]
        constraints = [
            models.UniqueConstraint(fields=["run", "dialogue", "round_index"], name="one_item_per_run_round")
        ]
        indexes = [models.Index(fields=["run", "status"])]


class WorkerPreflight(models.Model):
    """The last ``gpu_preflight`` of a GPU worker machine (``--record``): shown on the models page.

    ``checks`` is the list of ``{"name", "status", "message"}`` lines (``inference.preflight``)."""

    hostname = models.CharField(max_length=200, unique=True)
    ok = models.BooleanField()
    checks = models.JSONField(default=list)
    checked_at = models.DateTimeField()

    class Meta:
        ordering = ["hostname"]

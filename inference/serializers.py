"""Machine API serializers of the inference app: registry, runs with progress, items.

Coordinator-facing only: model names, run ids and checkpoint paths live here and never in a coder's
response (the coder endpoints are in ``annotation.api``).
"""

from __future__ import annotations

from rest_framework import serializers

from annotation.models import Dialogue
from annotation.serializers import status_field

from .forms import MODEL_FIELDS
from .models import GenerationItem, GenerationRun, RegisteredModel


class RegisteredModelSerializer(serializers.ModelSerializer):
    class Meta:
        model = RegisteredModel
        fields = ["id", *MODEL_FIELDS, "provenance", "created_at"]
        read_only_fields = ["id", "provenance", "created_at"]


class ModelRegisterSerializer(serializers.ModelSerializer):
    """Registration input; the registry's own checks (paths, chat template, server) run in the action."""

    class Meta:
        model = RegisteredModel
        fields = MODEL_FIELDS
        # Uniqueness is reported by the action with its own message; keep one source of that text.
        extra_kwargs = {"name": {"validators": []}}


class RunProgressSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    failed = serializers.IntegerField()
    pending = serializers.IntegerField()
    claimed = serializers.IntegerField()
    percent = serializers.FloatField()
    completion_tokens = serializers.IntegerField()
    elapsed_seconds = serializers.FloatField(allow_null=True)
    tokens_per_second = serializers.FloatField(allow_null=True)
    rounds_per_second = serializers.FloatField(allow_null=True)
    eta_seconds = serializers.FloatField(allow_null=True)
    finished = serializers.BooleanField()


class RunSerializer(serializers.ModelSerializer):
    model_name = serializers.CharField(source="model.name", read_only=True)
    status = status_field(GenerationRun.Status.choices)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    params = serializers.JSONField(read_only=True)
    progress = RunProgressSerializer(read_only=True, help_text="Computed on read from the items.")

    class Meta:
        model = GenerationRun
        fields = [
            "id", "model", "model_name", "split", "status", "chunk_size", "queue", "params", "error", "source_id",
            "created_by", "created_at", "started_at", "finished_at", "progress",
        ]
        read_only_fields = fields


class RunStartSerializer(serializers.Serializer):
    model = serializers.IntegerField(min_value=1, max_value=2**62, help_text="A registered model's id.")
    split = serializers.ChoiceField(choices=Dialogue.Split.choices, default=Dialogue.Split.TEST)
    chunk_size = serializers.IntegerField(min_value=1, max_value=512, default=8,
                                          help_text="Rounds per task: one backend batch, one transaction.")


class ResumeSerializer(serializers.Serializer):
    retry_failed = serializers.BooleanField(default=False, help_text="Also send failed items again.")


class RunChangeSerializer(serializers.Serializer):
    changed = serializers.BooleanField(help_text="False when there was nothing to do (e.g. already finished).")
    enqueued = serializers.IntegerField(help_text="Items sent to the workers.")
    run = RunSerializer()


class ItemSerializer(serializers.ModelSerializer):
    dialogue_external_id = serializers.CharField(source="dialogue.external_id", read_only=True)
    status = status_field(GenerationItem.Status.choices)

    class Meta:
        model = GenerationItem
        fields = [
            "id", "dialogue", "dialogue_external_id", "round_index", "status", "attempts", "response", "reference",
            "finish_reason", "prompt_tokens", "completion_tokens", "latency_ms", "dropped_pairs", "error", "finished_at",
        ]
        read_only_fields = fields

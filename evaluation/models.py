"""Stored results of long computations: automatic metrics per run, export jobs."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from annotation.claims import ClaimedWork
from annotation.models import Study
from inference.models import GenerationRun


class MetricReport(models.Model):
    """BLEU-4/ROUGE and friends of one generation run against the reference counselor turns."""

    run = models.OneToOneField(GenerationRun, on_delete=models.CASCADE, related_name="metric_report")
    language = models.CharField(max_length=8)
    tokenizer = models.CharField(max_length=100)
    n_rounds = models.PositiveIntegerField(default=0)
    pooled = models.JSONField(default=dict)
    per_dialogue = models.JSONField(default=dict)
    per_round = models.JSONField(default=list)
    extra = models.JSONField(default=dict)
    computed_at = models.DateTimeField(auto_now=True)


class ExportJob(ClaimedWork):
    """One export, written by a worker that claims it (``annotation.claims``): queued → running → done
    or failed. A job is taken once; a running job whose claim went stale (no progress for
    ``MI_EXPORT_CLAIM_STALE_SECONDS``: its worker died) is taken over; a writer whose claim was taken
    over writes nothing, and each delivery writes its own temporary file."""

    OPEN_STATUS = "queued"
    CLAIMED_STATUS = "running"
    STALE_SECONDS_SETTING = "MI_EXPORT_CLAIM_STALE_SECONDS"
    STALE_SECONDS_DEFAULT = 900

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="export_jobs")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=30)  # codes, summaries, aggregates, reliability, metrics, report
    format = models.CharField(max_length=10)  # csv, xlsx, jsonl, html, pdf
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    # What to export beyond kind/format, e.g. {"round": 3}; and what the finished file holds.
    options = models.JSONField(default=dict, blank=True)
    rows = models.PositiveIntegerField(default=0)
    file_path = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

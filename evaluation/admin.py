from __future__ import annotations

from django.contrib import admin

from . import models


@admin.register(models.MetricReport)
class MetricReportAdmin(admin.ModelAdmin):
    list_display = ["run", "language", "tokenizer", "n_rounds", "computed_at"]


@admin.register(models.ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    list_display = ["id", "study", "kind", "format", "status", "progress", "created_at"]
    list_filter = ["status", "kind"]

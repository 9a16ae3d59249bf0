from __future__ import annotations

from django.contrib import admin

from . import models


class MembershipInline(admin.TabularInline):
    model = models.Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(models.Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "language", "instrument_version", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(models.Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["study", "user", "role"]
    list_filter = ["role", "study"]


@admin.register(models.ImportBatch)
class ImportBatchAdmin(admin.ModelAdmin):
    list_display = ["filename", "study", "status", "format", "dialogue_count", "round_count", "attempts", "created_at"]
    list_filter = ["status", "study", "format"]


class TurnInline(admin.TabularInline):
    model = models.Turn
    extra = 0


@admin.register(models.Dialogue)
class DialogueAdmin(admin.ModelAdmin):
    list_display = ["external_id", "study", "source_dataset", "split", "round_count", "duplicate_of"]
    list_filter = ["study", "split", "source_dataset"]
    search_fields = ["external_id", "topic"]
    raw_id_fields = ["duplicate_of", "derived_from", "import_batch"]
    inlines = [TurnInline]


@admin.register(models.TranscriptSource)
class TranscriptSourceAdmin(admin.ModelAdmin):
    list_display = ["label", "study", "kind", "generation_run_id"]
    list_filter = ["study", "kind"]


class VolleyInline(admin.TabularInline):
    model = models.Volley
    extra = 0


@admin.register(models.Transcript)
class TranscriptAdmin(admin.ModelAdmin):
    list_display = ["blind_code", "source", "dialogue", "segmentation_locked"]
    list_filter = ["source__study", "source"]
    search_fields = ["blind_code"]
    raw_id_fields = ["dialogue"]
    inlines = [VolleyInline]


@admin.register(models.Utterance)
class UtteranceAdmin(admin.ModelAdmin):
    list_display = ["volley", "index", "text"]
    raw_id_fields = ["volley"]


@admin.register(models.CodingRound)
class CodingRoundAdmin(admin.ModelAdmin):
    list_display = ["name", "study", "status", "overlap", "seed", "created_at"]
    list_filter = ["study", "status"]
    filter_horizontal = ["sources", "coders"]


@admin.register(models.Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "coding_round", "coder", "transcript", "kind", "status", "version"]
    list_filter = ["coding_round__study", "status", "kind"]
    raw_id_fields = ["transcript"]


@admin.register(models.UtteranceCode)
class UtteranceCodeAdmin(admin.ModelAdmin):
    list_display = ["assignment", "utterance", "code", "updated_at"]
    raw_id_fields = ["assignment", "utterance"]


@admin.register(models.AdditionalCode)
class AdditionalCodeAdmin(admin.ModelAdmin):
    list_display = ["assignment", "utterance", "code"]
    raw_id_fields = ["assignment", "utterance"]


@admin.register(models.GlobalRating)
class GlobalRatingAdmin(admin.ModelAdmin):
    list_display = ["assignment", "scale", "value"]
    raw_id_fields = ["assignment"]


@admin.register(models.AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["assignment", "actor", "at", "action", "target", "old", "new", "version"]
    raw_id_fields = ["assignment"]


@admin.register(models.ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["digest"]

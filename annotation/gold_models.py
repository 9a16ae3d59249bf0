"""Gold-standard codings, calibration and proficiency gates (docs/calibration.md).

A :class:`GoldTranscript` is a frozen copy of one submitted coding (an adjudicated consensus or an
imported labelled transcript): its codes and globals are copied into gold rows that are never updated —
on PostgreSQL a trigger refuses any UPDATE of them (migration ``0010_gold``); a correction is a new
version. Coders' codings of gold transcripts are linked to the gold version they are compared with
(:class:`GoldAssignment`); those codings never count in study results (``Assignment.in_results`` is
off for them). Models are named from ``annotation.models`` (Django finds them there).

Foreign keys are named by string so that this module imports nothing of ``annotation.models``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from . import miti


class GoldSet(models.Model):
    """A named set of gold transcripts: a study's own, or site-wide (``study`` empty; staff manage those)."""

    study = models.ForeignKey(
        "annotation.Study", null=True, blank=True, on_delete=models.CASCADE, related_name="gold_sets"
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["study", "name"], name="gold_set_name_unique_per_study"),
            models.UniqueConstraint(fields=["name"], condition=Q(study__isnull=True), name="gold_set_name_unique_site"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def site_wide(self) -> bool:
        return self.study_id is None


class GoldTranscript(models.Model):
    """One version of a transcript's gold coding. Immutable: rows are inserted, never updated."""

    class Origin(models.TextChoices):
        CONSENSUS = "consensus", _("Adjudicated consensus")
        IMPORTED = "imported", _("Imported labels")
        REVISION = "revision", _("Revised gold")

    gold_set = models.ForeignKey(GoldSet, on_delete=models.CASCADE, related_name="golds")
    transcript = models.ForeignKey("annotation.Transcript", on_delete=models.CASCADE, related_name="golds")
    version = models.PositiveIntegerField(default=1)
    origin = models.CharField(max_length=12, choices=Origin.choices)
    # Provenance as plain values, not foreign keys: deleting the source assignment or the user must not
    # update (SET_NULL) an immutable row.
    origin_assignment_id = models.BigIntegerField(null=True, blank=True)
    marked_by = models.CharField(max_length=150, blank=True)
    note = models.CharField(max_length=500, blank=True)
    globals_rated = models.BooleanField(default=True)
    counts = models.JSONField(default=dict)  # the gold's ten behaviour tallies
    globals = models.JSONField(default=dict)  # the four ratings, None where the gold has none
    scores = models.JSONField(default=dict)  # miti.ALL_SUMMARY_KEYS
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["gold_set", "transcript", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["gold_set", "transcript", "version"], name="gold_version_unique"),
            models.CheckConstraint(condition=Q(version__gte=1), name="gold_version_positive"),
            models.CheckConstraint(
                condition=Q(origin__in=["consensus", "imported", "revision"]), name="gold_origin_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.transcript_id} v{self.version}"


class GoldCode(models.Model):
    """A gold code of one utterance: the main one, or (``additional``) a further flagged behaviour."""

    gold = models.ForeignKey(GoldTranscript, on_delete=models.CASCADE, related_name="codes")
    utterance = models.ForeignKey("annotation.Utterance", on_delete=models.CASCADE, related_name="+")
    code = models.CharField(max_length=16)
    additional = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["gold", "utterance"], condition=Q(additional=False), name="gold_one_main_code"
            ),
            models.UniqueConstraint(fields=["gold", "utterance", "code"], name="gold_code_once"),
            models.CheckConstraint(condition=Q(code__in=[*miti.CODE_KEYS, miti.NO_CODE]), name="gold_code_valid"),
            models.CheckConstraint(
                condition=Q(additional=False) | ~Q(code=miti.NO_CODE), name="gold_additional_is_behaviour"
            ),
        ]


class GoldRating(models.Model):
    gold = models.ForeignKey(GoldTranscript, on_delete=models.CASCADE, related_name="ratings")
    scale = models.CharField(max_length=32)
    value = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["gold", "scale"], name="gold_one_rating_per_scale"),
            models.CheckConstraint(condition=Q(value__gte=1) & Q(value__lte=5), name="gold_rating_1_5"),
            models.CheckConstraint(condition=Q(scale__in=list(miti.GLOBAL_KEYS)), name="gold_scale_valid"),
        ]


class GoldAssignment(models.Model):
    """A coder's coding of a gold transcript: in a calibration round, or seeded into a study round."""

    assignment = models.OneToOneField("annotation.Assignment", on_delete=models.CASCADE, related_name="gold_link")
    gold = models.ForeignKey(GoldTranscript, on_delete=models.PROTECT, related_name="uses")
    seeded = models.BooleanField(default=False, help_text=_("Seeded into a study round to track drift."))


class ProficiencyStandard(models.Model):
    """A study's proficiency thresholds; an empty threshold is not required. Defaults: docs/miti.md."""

    study = models.OneToOneField("annotation.Study", on_delete=models.CASCADE, related_name="proficiency_standard")
    min_kappa = models.FloatField(null=True, blank=True, default=0.60)
    min_alpha = models.FloatField(null=True, blank=True, default=0.667)
    min_globals_within_one = models.FloatField(null=True, blank=True, default=0.80)
    min_icc = models.FloatField(null=True, blank=True, default=None)
    drift_kappa = models.FloatField(default=0.60)
    drift_window = models.PositiveSmallIntegerField(default=5)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(min_kappa__isnull=True) | Q(min_kappa__gte=-1, min_kappa__lte=1))
                & (Q(min_alpha__isnull=True) | Q(min_alpha__gte=-1, min_alpha__lte=1))
                & (Q(min_icc__isnull=True) | Q(min_icc__gte=-1, min_icc__lte=1))
                & (Q(min_globals_within_one__isnull=True) | Q(min_globals_within_one__gte=0, min_globals_within_one__lte=1))
                & Q(drift_kappa__gte=-1, drift_kappa__lte=1) & Q(drift_window__gte=1),
                name="proficiency_thresholds_in_range",
            )
        ]


class RoundGoldPolicy(models.Model):
    """What a round asks of gold: a proficiency gate, and gold transcripts seeded into the queues."""

    coding_round = models.OneToOneField("annotation.CodingRound", on_delete=models.CASCADE, related_name="gold_policy")
    require_proficiency = models.BooleanField(default=False)
    gold_set = models.ForeignKey(GoldSet, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    gold_rate = models.FloatField(default=0.0, help_text=_("Seeded gold transcripts per study transcript (0–1)."))
    # Coders the gate left out at creation: [{"user_id", "username", "reasons": [...]}].
    excluded = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(gold_rate__gte=0) & Q(gold_rate__lte=1), name="gold_rate_0_1"),
        ]

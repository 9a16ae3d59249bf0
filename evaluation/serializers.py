"""Machine API serializers of the evaluation app: summaries, aggregates, reliability, metrics, exports.

Coordinator-facing only (source labels and model names are in here). Numbers are unrounded; a value
that is undefined (zero denominator, too few transcripts) is null, never NaN.
"""

from __future__ import annotations

from rest_framework import serializers

from annotation.serializers import status_field

from .exports import EXPORT_FORMATS, EXPORT_KINDS
from .models import ExportJob

Number = serializers.FloatField


def _values(help_text: str = "") -> serializers.DictField:
    return serializers.DictField(child=Number(allow_null=True), help_text=help_text)


class SourceRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    label = serializers.CharField()
    kind = serializers.CharField()
    generation_run_id = serializers.IntegerField(allow_null=True)


class SummarySerializer(serializers.Serializer):
    """The MITI numbers of one submitted coding (or consensus)."""

    assignment = serializers.IntegerField()
    round = serializers.IntegerField()
    round_name = serializers.CharField()
    kind = serializers.CharField(help_text="coding or consensus")
    transcript = serializers.IntegerField()
    blind_code = serializers.CharField()
    source = SourceRefSerializer()
    coder = serializers.CharField()
    submitted_at = serializers.DateTimeField(allow_null=True)
    globals_rated = serializers.BooleanField()
    n_coded = serializers.IntegerField()
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="The 10 behaviour-code tallies.")
    globals = serializers.DictField(child=serializers.IntegerField(allow_null=True))
    scores = _values("Technical, Relational, %CR, R:Q, MI-adherent, MI non-adherent…; null for a zero denominator.")
    thresholds = serializers.DictField(
        child=serializers.CharField(allow_null=True), help_text="Fair/Good status per summary score."
    )


class ScoreStatsSerializer(serializers.Serializer):
    n = serializers.IntegerField()
    mean = Number(allow_null=True)
    sd = Number(allow_null=True)
    n_fair = serializers.IntegerField(allow_null=True)
    n_good = serializers.IntegerField(allow_null=True)
    share_fair = Number(allow_null=True)
    share_good = Number(allow_null=True)


class SourceAggregateSerializer(serializers.Serializer):
    source = SourceRefSerializer()
    group = serializers.CharField(help_text="The group value under `group_by` (empty when grouped by source).")
    transcripts = serializers.IntegerField()
    consensus = serializers.IntegerField()
    stats = serializers.DictField(child=ScoreStatsSerializer())


class CoderAggregateSerializer(serializers.Serializer):
    coder = serializers.CharField()
    codings = serializers.IntegerField()
    stats = serializers.DictField(child=ScoreStatsSerializer())


class AggregatesSerializer(serializers.Serializer):
    note = serializers.CharField()
    group_by = serializers.CharField()
    per_source = SourceAggregateSerializer(many=True)
    per_coder = CoderAggregateSerializer(many=True)


class EstimateSerializer(serializers.Serializer):
    """One statistic: its value, or null and the reason it is not estimable (docs/metrics.md)."""

    value = Number(allow_null=True)
    reason = serializers.CharField(allow_blank=True)
    ci95 = serializers.ListField(child=Number(allow_null=True), allow_null=True, min_length=2, max_length=2)
    ci_reason = serializers.CharField(allow_blank=True)


class IccSerializer(serializers.Serializer):
    single = EstimateSerializer(help_text="ICC(2,1)")
    average = EstimateSerializer(help_text="ICC(2,k)")
    icc2_1 = Number(allow_null=True)
    icc2_k = Number(allow_null=True)
    ci95_2_1 = serializers.ListField(child=Number(allow_null=True), allow_null=True, min_length=2, max_length=2)
    ci95_2_k = serializers.ListField(child=Number(allow_null=True), allow_null=True, min_length=2, max_length=2)
    n = serializers.IntegerField()
    k = serializers.IntegerField()
    n_dropped = serializers.IntegerField()
    status = serializers.CharField()
    reason = serializers.CharField(allow_blank=True)
    band = serializers.CharField(allow_null=True)
    band_k = serializers.CharField(allow_null=True)


class AlphaSerializer(serializers.Serializer):
    alpha = Number(allow_null=True)
    level = serializers.CharField()
    n_units = serializers.IntegerField()
    n_coders = serializers.IntegerField()
    n_values = serializers.IntegerField()
    status = serializers.CharField()
    reason = serializers.CharField(allow_blank=True)


class KappaSerializer(serializers.Serializer):
    kappa = Number(allow_null=True)
    n_units = serializers.IntegerField()
    status = serializers.CharField()
    reason = serializers.CharField(allow_blank=True)
    band = serializers.CharField(allow_null=True)


class ScoreReliabilitySerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    group = serializers.CharField()
    icc = IccSerializer()
    alpha = AlphaSerializer()


class PairAgreementSerializer(serializers.Serializer):
    coder_a = serializers.CharField()
    coder_b = serializers.CharField()
    kappa = KappaSerializer()


class CodeAgreementSerializer(serializers.Serializer):
    code = serializers.CharField()
    alpha = AlphaSerializer()
    fleiss = KappaSerializer()
    n_coded = serializers.IntegerField()


class UtteranceReliabilitySerializer(serializers.Serializer):
    n_units = serializers.IntegerField()
    alpha = AlphaSerializer()
    fleiss = KappaSerializer()
    pairs = PairAgreementSerializer(many=True)
    per_code = CodeAgreementSerializer(many=True)


class DriftSerializer(serializers.Serializer):
    coder = serializers.CharField()
    key = serializers.CharField()
    n = serializers.IntegerField()
    mean_difference = Number(allow_null=True)
    first_half = Number(allow_null=True)
    second_half = Number(allow_null=True)


class ReliabilitySerializer(serializers.Serializer):
    n_transcripts = serializers.IntegerField(help_text="Transcripts with two or more submitted codings.")
    enough = serializers.BooleanField()
    coders = serializers.ListField(child=serializers.CharField())
    raters = serializers.CharField(help_text="'coders' or 'positions' (rotating pairs).")
    k = serializers.IntegerField()
    scores = ScoreReliabilitySerializer(many=True)
    utterances = UtteranceReliabilitySerializer()
    drift = DriftSerializer(many=True)
    notes = serializers.ListField(child=serializers.CharField())


class MetricRowSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    model = serializers.CharField()
    base_model = serializers.CharField(allow_blank=True)
    finetuned = serializers.BooleanField()
    split = serializers.CharField()
    status = serializers.CharField()
    report = serializers.BooleanField(help_text="False until the run's metrics are computed.")
    n_rounds = serializers.IntegerField()
    n_dialogues = serializers.IntegerField()
    values = _values("bleu4, rouge1, rouge2, rougeL, length, distinct_1, distinct_2, empty_rate.")
    tokenizer = serializers.CharField(allow_blank=True)
    language = serializers.CharField(allow_blank=True)


class ProgressRowSerializer(serializers.Serializer):
    round = serializers.IntegerField()
    round_name = serializers.CharField()
    coder = serializers.CharField()
    kind = serializers.CharField()
    total = serializers.IntegerField()
    submitted = serializers.IntegerField()
    in_progress = serializers.IntegerField()
    pending = serializers.IntegerField()
    percent = Number()


class QueuedSerializer(serializers.Serializer):
    detail = serializers.CharField()


_ALL_FORMATS = sorted({fmt for formats in EXPORT_FORMATS.values() for fmt in formats})


class ExportRequestSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=[(k, k) for k in EXPORT_KINDS], help_text="; ".join(
        f"{k}: {v} ({'/'.join(EXPORT_FORMATS[k])})" for k, v in EXPORT_KINDS.items()))
    format = serializers.ChoiceField(choices=[(f, f) for f in _ALL_FORMATS])
    round = serializers.IntegerField(min_value=1, max_value=2**62, required=False, allow_null=True,
                                     help_text="Only this coding round (default: all rounds).")
    group_by = serializers.RegexField(
        r"^(source|split|coder|metadata\.[\w-]{1,100})$", required=False, default="source",
        help_text="Split the per-source tables by `split`, `coder` or `metadata.<key>` (default `source`).",
    )


class ExportJobSerializer(serializers.ModelSerializer):
    status = status_field(ExportJob.Status.choices)
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    round = serializers.SerializerMethodField()
    status_url = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField(help_text="Set once the export is done.")

    class Meta:
        model = ExportJob
        fields = [
            "id", "kind", "format", "round", "status", "progress", "rows", "error", "requested_by", "created_at",
            "finished_at", "status_url", "download_url",
        ]
        read_only_fields = fields

    def get_round(self, job: ExportJob) -> int | None:
        return (job.options or {}).get("round")

    def get_status_url(self, job: ExportJob) -> str:
        return f"/api/studies/{job.study.slug}/exports/{job.pk}/"

    def get_download_url(self, job: ExportJob) -> str | None:
        if job.status != ExportJob.Status.DONE:
            return None
        return f"/api/studies/{job.study.slug}/exports/{job.pk}/download/"

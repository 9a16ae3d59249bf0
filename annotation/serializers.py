"""Machine API serializers of the annotation app: they validate input and shape output, nothing else.

Two families: coordinator-facing (studies, members, dialogues, imports, sources, rounds, assignments)
and coder-facing (queue, assignment workspace). The coder-facing ones are the blinding boundary: they
carry blind codes, texts and the coder's own codes only — never a source, model, run or label.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from . import miti, parsers
from .accounts.serializers import ErrorSerializer
from .models import (
    Assignment,
    CodingRound,
    Dialogue,
    ImportBatch,
    Membership,
    Study,
    Turn,
)


def status_field(choices, **kwargs) -> serializers.CharField:
    """A read-only status as an inline enum.

    Several models have a ``status`` with different choices; drf-spectacular would lift them into
    colliding ``StatusEnum`` components (a schema warning needing a settings entry), so each stays
    inline where it is used.
    """

    # Wrapped in allOf: drf-spectacular's enum post-processing only lifts bare property enums.
    @extend_schema_field({"allOf": [{"type": "string", "enum": [value for value, _label in choices]}]})
    class StatusField(serializers.CharField):
        pass

    return StatusField(read_only=True, **kwargs)


# --- errors (documented in every operation's responses) --------------------------------------------


class ConflictSerializer(ErrorSerializer):
    """409 on a stale write: the client's version is behind; ``current_version`` says where the server is."""

    current_version = serializers.IntegerField()


# --- studies and members -------------------------------------------------------------------------------


class StudySerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField(help_text="Your role: coordinator or coder (staff count as coordinators).")

    class Meta:
        model = Study
        fields = ["id", "slug", "name", "language", "change_goal", "description", "instrument_version", "created_at", "role"]
        read_only_fields = fields

    def get_role(self, study: Study) -> str | None:
        roles = self.context.get("roles") or {}
        return roles.get(study.pk)


class StudyCountsSerializer(serializers.Serializer):
    dialogues = serializers.IntegerField()
    train = serializers.IntegerField()
    test = serializers.IntegerField()
    unused = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    members = serializers.IntegerField()
    transcripts = serializers.IntegerField()
    rounds = serializers.IntegerField()


class StudyDetailSerializer(StudySerializer):
    counts = StudyCountsSerializer(allow_null=True, help_text="Coordinators only; null for coders.")
    split_info = serializers.JSONField(allow_null=True, help_text="Coordinators only: how the last split was made.")

    class Meta(StudySerializer.Meta):
        fields = [*StudySerializer.Meta.fields, "counts", "split_info"]
        read_only_fields = fields


class StudyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=80, required=False, allow_blank=True, default="")
    language = serializers.ChoiceField(choices=Study.Language.choices, default=Study.Language.ZH)
    change_goal = serializers.CharField(max_length=500)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["username", "role", "created_at"]
        read_only_fields = fields


class MembershipWriteSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Membership.Role.choices)


# --- dialogues and imports -------------------------------------------------------------------------------


class DialogueSerializer(serializers.ModelSerializer):
    duplicate_of = serializers.SlugRelatedField(slug_field="external_id", read_only=True, allow_null=True)

    class Meta:
        model = Dialogue
        fields = [
            "id", "external_id", "source_dataset", "split", "topic", "round_count", "content_hash",
            "duplicate_of", "import_batch", "created_at",
        ]
        read_only_fields = fields


class TurnSerializer(serializers.ModelSerializer):
    class Meta:
        model = Turn
        fields = ["index", "speaker", "text"]
        read_only_fields = fields


class DialogueDetailSerializer(DialogueSerializer):
    turns = TurnSerializer(many=True, read_only=True)
    metadata = serializers.JSONField(read_only=True)

    class Meta(DialogueSerializer.Meta):
        fields = [*DialogueSerializer.Meta.fields, "metadata", "turns"]
        read_only_fields = fields


class ImportBatchSerializer(serializers.ModelSerializer):
    status = status_field(ImportBatch.Status.choices)
    duplicates = serializers.DictField(
        child=serializers.CharField(), read_only=True,
        help_text="Content duplicates, flagged not dropped: {new external_id: first external_id}.",
    )
    warnings = serializers.ListField(child=serializers.CharField(), read_only=True)
    errors = serializers.ListField(
        child=serializers.CharField(), read_only=True,
        help_text="Why a failed import was refused (file, record and field named); nothing was imported.",
    )
    progress = serializers.FloatField(read_only=True, help_text="0–1 while queued or running; 1 when done.")
    options = serializers.JSONField(read_only=True, help_text="Format, split, prefixes, columns and merge tick asked for.")
    status_url = serializers.SerializerMethodField()

    class Meta:
        model = ImportBatch
        fields = [
            "id", "filename", "format", "status", "progress", "dialogue_count", "round_count", "duplicates",
            "warnings", "errors", "options", "attempts", "created_at", "started_at", "finished_at", "status_url",
        ]
        read_only_fields = fields

    def get_status_url(self, batch: ImportBatch) -> str:
        return f"/api/studies/{batch.study.slug}/imports/{batch.pk}/"


class ImportRequestSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="JSONL, CPsyCounD .txt or .zip, PsyDTCorpus / ShareGPT / Alpaca / OpenAI chat JSON(L), "
        "speaker-prefixed text or JSON lists (CPsyCounE), AnnoMI CSV, dialogue_id/speaker/text CSV or Parquet.",
    )
    format = serializers.ChoiceField(
        choices=list(parsers.FORMATS), required=False, allow_blank=True, default="",
        help_text="Empty: detected from the file name and content.",
    )
    split = serializers.ChoiceField(
        choices=Dialogue.Split.choices, required=False, allow_blank=True, default="",
        help_text="Empty: as in the file (default unused).",
    )
    client_prefix = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=40,
        help_text="Speaker-prefixed files: the client's speaker name (e.g. 求助者; a trailing colon is optional). "
        "CSV/Parquet: the client's speaker value. Empty (with counselor_prefix): detect a known pair.",
    )
    counselor_prefix = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=40,
        help_text="The counselor's speaker name or value (e.g. 支持者); named together with client_prefix.",
    )
    dialogue_column = serializers.CharField(required=False, default="dialogue_id", max_length=100,
                                            help_text="CSV/Parquet: the dialogue id column.")
    speaker_column = serializers.CharField(required=False, default="speaker", max_length=100,
                                           help_text="CSV/Parquet: the speaker column.")
    text_column = serializers.CharField(required=False, default="text", max_length=100,
                                        help_text="CSV/Parquet: the text column.")
    merge_consecutive = serializers.BooleanField(
        required=False, default=False,
        help_text="Role-tagged formats (JSONL, ShareGPT, OpenAI chat, PsyDTCorpus, Alpaca): merge two turns of "
        "one speaker in a row (and keep a counselor turn first) instead of refusing the record; each place "
        "becomes a warning on the batch.",
    )

    def validate(self, attrs: dict) -> dict:
        if bool(attrs["client_prefix"].strip()) != bool(attrs["counselor_prefix"].strip()):
            raise serializers.ValidationError(
                {"counselor_prefix" if attrs["client_prefix"].strip() else "client_prefix":
                 ["Name both the client and the counselor prefix, or neither."]}
            )
        return attrs

    def import_options(self) -> parsers.ImportOptions:
        data = self.validated_data
        return parsers.ImportOptions(
            client_prefix=data["client_prefix"], counselor_prefix=data["counselor_prefix"],
            merge_consecutive=data["merge_consecutive"], dialogue_column=data["dialogue_column"],
            speaker_column=data["speaker_column"], text_column=data["text_column"],
        )


class SplitRequestSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=[("random", "random"), ("ids", "ids")])
    n_test = serializers.IntegerField(min_value=0, max_value=10_000_000, required=False)
    n_train = serializers.IntegerField(min_value=0, max_value=10_000_000, required=False, allow_null=True)
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0)
    split = serializers.ChoiceField(choices=Dialogue.Split.choices, required=False)
    external_ids = serializers.ListField(child=serializers.CharField(max_length=200), required=False, max_length=100_000)

    def validate(self, attrs: dict) -> dict:
        if attrs["mode"] == "random" and attrs.get("n_test") is None:
            raise serializers.ValidationError({"n_test": ["Required for a random split."]})
        if attrs["mode"] == "ids" and (not attrs.get("split") or not attrs.get("external_ids")):
            raise serializers.ValidationError({"external_ids": ["Give split and external_ids for a split by ids."]})
        return attrs


class SplitResultSerializer(serializers.Serializer):
    counts = serializers.DictField(child=serializers.IntegerField())


# --- transcript sources, rounds and assignments (coordinators) ------------------------------------------


class SourceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    label = serializers.CharField()
    generation_run_id = serializers.IntegerField(allow_null=True)
    transcript_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class RoundProgressSerializer(serializers.Serializer):
    assignments = serializers.IntegerField()
    pending = serializers.IntegerField()
    in_progress = serializers.IntegerField()
    submitted = serializers.IntegerField()


class CodingRoundSerializer(serializers.ModelSerializer):
    status = status_field(CodingRound.Status.choices)
    sources = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    coders = serializers.SlugRelatedField(many=True, read_only=True, slug_field="username")
    progress = serializers.SerializerMethodField()

    class Meta:
        model = CodingRound
        fields = [
            "id", "name", "status", "overlap", "seed", "globals_rated", "instrument_version", "sources", "coders",
            "created_at", "progress",
        ]
        read_only_fields = fields

    @extend_schema_field(RoundProgressSerializer)
    def get_progress(self, coding_round: CodingRound) -> dict[str, int]:
        counts = {s: 0 for s in Assignment.Status.values}
        for status, n in self.context.get("progress", {}).get(coding_round.pk, {}).items():
            counts[status] = n
        return {"assignments": sum(counts.values()), **counts}



class CodingRoundCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    sources = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**62), min_length=1)
    coders = serializers.ListField(child=serializers.CharField(max_length=150), min_length=1)
    overlap = serializers.FloatField(min_value=0, max_value=1, default=0.2)
    seed = serializers.IntegerField(min_value=0, max_value=2**62, required=False, allow_null=True)
    per_overlap = serializers.IntegerField(min_value=2, max_value=10, default=2)


class AssignmentSerializer(serializers.ModelSerializer):
    """An assignment as a coordinator sees it (source label included: coordinators are not blinded)."""

    coder = serializers.CharField(source="coder.username", read_only=True)
    blind_code = serializers.CharField(source="transcript.blind_code", read_only=True)
    source = serializers.IntegerField(source="transcript.source_id", read_only=True)
    source_label = serializers.CharField(source="transcript.source.label", read_only=True)
    status = status_field(Assignment.Status.choices)

    class Meta:
        model = Assignment
        fields = [
            "id", "coding_round", "coder", "blind_code", "source", "source_label", "kind", "status", "version",
            "position", "started_at", "submitted_at", "updated_at", "in_results",
        ]
        read_only_fields = fields


# --- coder-facing (blinded) -------------------------------------------------------------------------------


class ProgressSerializer(serializers.Serializer):
    coded = serializers.IntegerField()
    total = serializers.IntegerField()
    globals_set = serializers.IntegerField()
    globals_total = serializers.IntegerField()
    percent = serializers.IntegerField()
    complete = serializers.BooleanField()


class QueueItemSerializer(serializers.ModelSerializer):
    """One entry of a coder's queue: nothing that could tell which source wrote the transcript."""

    study = serializers.CharField(source="coding_round.study.slug", read_only=True)
    study_name = serializers.CharField(source="coding_round.study.name", read_only=True)
    round = serializers.IntegerField(source="coding_round_id", read_only=True)
    round_name = serializers.CharField(source="coding_round.name", read_only=True)
    blind_code = serializers.CharField(source="transcript.blind_code", read_only=True)
    status = status_field(Assignment.Status.choices)
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Assignment
        fields = [
            "id", "study", "study_name", "round", "round_name", "blind_code", "position", "status", "version",
            "started_at", "submitted_at", "progress",
        ]
        read_only_fields = fields

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, assignment: Assignment) -> dict:
        return self.context["progress"][assignment.pk]


class UtteranceOutSerializer(serializers.Serializer):
    id = serializers.IntegerField(
        help_text="The utterance's number in the transcript (1-based, reading order): send it as `utterance`."
    )
    number = serializers.IntegerField(help_text="1-based within the volley.")
    text = serializers.CharField(allow_blank=True)
    code = serializers.CharField(allow_null=True, help_text="Your code, 'NONE' for an explicit no code, null if not coded yet.")


class TallySerializer(serializers.Serializer):
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="Code keys this volley counts (MITI slot rules).")
    merges = serializers.ListField(child=serializers.CharField(), help_text="Which slot rules merged codes, in words.")


class VolleyOutSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The volley's number in the transcript (as `number`).")
    number = serializers.IntegerField(help_text="1-based within the transcript.")
    client_context = serializers.CharField(allow_blank=True)
    tally = TallySerializer()
    utterances = UtteranceOutSerializer(many=True)


class WorkspaceSerializer(serializers.Serializer):
    """A coder's assignment with the transcript, the coder's own codes and globals."""

    id = serializers.IntegerField()
    study = serializers.CharField()
    change_goal = serializers.CharField()
    blind_code = serializers.CharField()
    status = status_field(Assignment.Status.choices)
    version = serializers.IntegerField(help_text="Send it with your next write; a stale one gets 409.")
    editable = serializers.BooleanField()
    globals_rated = serializers.BooleanField()
    instrument_version = serializers.CharField()
    volleys = VolleyOutSerializer(many=True)
    globals = serializers.DictField(
        child=serializers.IntegerField(allow_null=True), help_text="Scale key → 1–5, or null while unset."
    )
    progress = ProgressSerializer()


_CODE_CHOICES = [(k, k) for k in (*miti.CODE_KEYS, miti.NO_CODE)]


class CodeWriteSerializer(serializers.Serializer):
    utterance = serializers.IntegerField(
        min_value=1, max_value=2**62, help_text="The utterance's id in the workspace: its number in the transcript."
    )
    code = serializers.ChoiceField(
        choices=_CODE_CHOICES, allow_null=True,
        help_text="A MITI code key, 'NONE' for no code, or null to clear the utterance.",
    )
    version = serializers.IntegerField(min_value=0, max_value=2**31 - 1, help_text="The version you last saw.")


class GlobalWriteSerializer(serializers.Serializer):
    scale = serializers.ChoiceField(choices=[(k, k) for k in miti.GLOBAL_KEYS])
    value = serializers.IntegerField(min_value=miti.GLOBAL_MIN, max_value=miti.GLOBAL_MAX, allow_null=True)
    version = serializers.IntegerField(min_value=0, max_value=2**31 - 1)


class VersionSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=0, max_value=2**31 - 1, help_text="The version you last saw.")


class SavedSerializer(serializers.Serializer):
    """What a coding write returns: the new version to send with the next write."""

    id = serializers.IntegerField()
    status = status_field(Assignment.Status.choices)
    version = serializers.IntegerField()
    progress = ProgressSerializer()
    volley = serializers.IntegerField(
        allow_null=True, help_text="The number of the volley whose tally changed (code writes)."
    )
    tally = TallySerializer(allow_null=True)


def usernames_to_users(usernames: list[str]) -> list:
    """Users by username, in order; raises a field error naming the unknown ones."""
    users = {u.username: u for u in get_user_model().objects.filter(username__in=usernames)}
    missing = [u for u in usernames if u not in users]
    if missing:
        raise serializers.ValidationError({"coders": [f"No user named {', '.join(repr(m) for m in missing)}."]})
    return [users[u] for u in dict.fromkeys(usernames)]

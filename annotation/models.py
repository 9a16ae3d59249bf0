"""Studies, dialogues, transcripts and MITI coding.

Invariants live in the database (unique and check constraints), not in ``save()``: one code per
coder per utterance, global ratings 1–5, one transcript per (source, dialogue), one reference source
per study. Every state change goes through ``annotation.actions``.
"""

from __future__ import annotations

from pathlib import PurePath

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from . import miti
from .claims import ClaimedWork


class Study(models.Model):
    class Language(models.TextChoices):
        ZH = "zh", _("Chinese")
        EN = "en", _("English")

    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=80, unique=True)
    language = models.CharField(_("language"), max_length=8, choices=Language.choices, default=Language.ZH)
    change_goal = models.CharField(
        _("change goal"),
        max_length=500,
        help_text=_("The target behaviour coders rate change talk against (MITI requires it)."),
    )
    instrument_version = models.CharField(max_length=40, default=miti.INSTRUMENT_VERSION, editable=False)
    description = models.TextField(_("description"), blank=True)
    # How the last split was made (method, seed, counts) so a split can be reproduced and reported.
    split_info = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "studies"

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        COORDINATOR = "coordinator", _("Coordinator")
        CODER = "coder", _("Coder")

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "user"], name="membership_one_role_per_study"),
            models.CheckConstraint(condition=Q(role__in=["coordinator", "coder"]), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.study} ({self.role})"


class ImportBatch(ClaimedWork):
    """One import (file, folder or zip): its progress on the worker, and provenance of the dialogues it made.

    A page or API import is stored under ``MI_IMPORT_DIR`` (``upload_path``) and queued; the worker
    claims the batch (``claim_token``; ``claimed_at`` is its heartbeat), parses and writes in one
    transaction, and ends it ``done`` (counts, warnings) or ``failed`` (``errors``) — the stored upload is
    removed then. ``attempts`` counts claims: a redelivered task that took over a stale claim makes it 2.
    The claim is the claim kernel's (``annotation.claims``), as for export jobs and generation items.
    """

    OPEN_STATUS = "queued"
    CLAIMED_STATUS = "running"
    STALE_SECONDS_SETTING = "MI_IMPORT_CLAIM_STALE_SECONDS"
    STALE_SECONDS_DEFAULT = 900

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="imports")
    filename = models.CharField(max_length=500)
    format = models.CharField(max_length=20, blank=True)  # requested (or "") until done, then what was read
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    # What the coordinator asked for: format, split, prefixes, CSV columns, merge tick.
    options = models.JSONField(default=dict, blank=True)
    upload_path = models.CharField(max_length=500, blank=True)
    dialogue_count = models.PositiveIntegerField(default=0)
    round_count = models.PositiveIntegerField(default=0)
    # Content duplicates are flagged, never silently dropped: {external_id: first external_id}.
    duplicates = models.JSONField(default=dict, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    errors = models.JSONField(default=list, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)  # the current attempt's start on the worker
    finished_at = models.DateTimeField(null=True, blank=True)  # commit (done) or failure
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    @property
    def display_name(self) -> str:
        """The file's own name: a server-side import stores its path, which pages must not show."""
        return PurePath(self.filename.replace("\\", "/")).name or self.filename

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "import batches"  # not Django's "import batchs"
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "done", "failed"]), name="import_batch_status_valid"
            ),
            models.CheckConstraint(condition=Q(progress__gte=0.0, progress__lte=1.0), name="import_batch_progress_range"),
        ]

    # Share of the progress bar given to parsing (per file of a zip or folder); writing is the rest.
    PARSE_SHARE = 0.7

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)

    @property
    def writing(self) -> bool:
        """Parsed, now writing to the database (the last part of the progress bar)."""
        return self.status == self.Status.RUNNING and self.progress >= self.PARSE_SHARE


class Dialogue(models.Model):
    class Split(models.TextChoices):
        TRAIN = "train", _("train")
        TEST = "test", _("test")
        UNUSED = "unused", _("unused")

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="dialogues")
    external_id = models.CharField(max_length=200)
    source_dataset = models.CharField(max_length=100, blank=True)
    split = models.CharField(max_length=10, choices=Split.choices, default=Split.UNUSED)
    topic = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    content_hash = models.CharField(max_length=64, blank=True, db_index=True)
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="duplicates"
    )
    # Provenance of derived dialogues (e.g. MI-style rewrites of a general counselling dialogue).
    derived_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="derivatives"
    )
    import_batch = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="dialogues"
    )
    round_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "id"]
        constraints = [
            models.UniqueConstraint(fields=["study", "external_id"], name="dialogue_external_id_unique_per_study"),
            models.CheckConstraint(condition=Q(split__in=["train", "test", "unused"]), name="dialogue_split_valid"),
        ]
        indexes = [models.Index(fields=["study", "split"])]

    def __str__(self) -> str:
        return self.external_id


class Turn(models.Model):
    class Speaker(models.TextChoices):
        CLIENT = "client", _("Client")
        COUNSELOR = "counselor", _("Counselor")
        SYSTEM = "system", _("System")

    dialogue = models.ForeignKey(Dialogue, on_delete=models.CASCADE, related_name="turns")
    index = models.PositiveIntegerField()
    speaker = models.CharField(max_length=10, choices=Speaker.choices)
    text = models.TextField()

    class Meta:
        ordering = ["dialogue", "index"]
        constraints = [
            models.UniqueConstraint(fields=["dialogue", "index"], name="turn_index_unique"),
            models.CheckConstraint(
                condition=Q(speaker__in=["client", "counselor", "system"]), name="turn_speaker_valid"
            ),
        ]


class TranscriptSource(models.Model):
    """Where a set of transcripts comes from: the reference dialogues, or one generation run.

    ``label`` (model name, run) is coordinator-only: it must never reach a coder-facing response.
    ``annotation`` does not import ``inference``; a run is referenced by its integer id only.
    """

    class Kind(models.TextChoices):
        REFERENCE = "reference", _("Reference dialogues")
        GENERATED = "generated", _("Generated by a model")
        IMPORTED = "imported", _("Imported coded transcripts")

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="sources")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    label = models.CharField(max_length=200)
    generation_run_id = models.BigIntegerField(null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "id"]
        constraints = [
            models.UniqueConstraint(fields=["study", "label"], name="source_label_unique_per_study"),
            models.UniqueConstraint(
                fields=["study"], condition=Q(kind="reference"), name="one_reference_source_per_study"
            ),
        ]

    def __str__(self) -> str:
        return self.label


class Transcript(models.Model):
    """A dialogue as seen through one source, under a random blind code (e.g. ``T-7F3K2``)."""

    source = models.ForeignKey(TranscriptSource, on_delete=models.CASCADE, related_name="transcripts")
    dialogue = models.ForeignKey(Dialogue, on_delete=models.CASCADE, related_name="transcripts")
    blind_code = models.CharField(max_length=16, unique=True)
    # Segmentation may be adjusted by a coordinator only until a round with this transcript opens.
    segmentation_locked = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "dialogue"], name="transcript_unique_per_source_dialogue")
        ]

    def __str__(self) -> str:
        return self.blind_code


class Volley(models.Model):
    """One counselor turn, text frozen at creation, with the client text before it as context."""

    transcript = models.ForeignKey(Transcript, on_delete=models.CASCADE, related_name="volleys")
    index = models.PositiveIntegerField()
    client_context = models.TextField(blank=True)
    text = models.TextField()

    class Meta:
        ordering = ["transcript", "index"]
        constraints = [models.UniqueConstraint(fields=["transcript", "index"], name="volley_index_unique")]


class Utterance(models.Model):
    volley = models.ForeignKey(Volley, on_delete=models.CASCADE, related_name="utterances")
    index = models.PositiveIntegerField()
    text = models.TextField()

    class Meta:
        ordering = ["volley", "index"]
        constraints = [models.UniqueConstraint(fields=["volley", "index"], name="utterance_index_unique")]


class CodingRound(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        CLOSED = "closed", _("Closed")

    class Purpose(models.TextChoices):
        # A study round's codings are the study's results and stay unassisted; calibration rounds train
        # coders against gold transcripts; assisted rounds show a machine coder's suggestions.
        STUDY = "study", _("Study")
        CALIBRATION = "calibration", _("Calibration")
        ASSISTED = "assisted", _("Assisted")

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="rounds")
    name = models.CharField(max_length=200)
    sources = models.ManyToManyField(TranscriptSource, related_name="rounds")
    coders = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="coding_rounds")
    overlap = models.FloatField(default=0.2, help_text=_("Share of transcripts coded by two coders (0–1)."))
    seed = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    instrument_version = models.CharField(max_length=40, default=miti.INSTRUMENT_VERSION)
    # Rounds built from imported labels (e.g. AnnoMI) have no globals: shown as "not rated".
    globals_rated = models.BooleanField(default=True)
    purpose = models.CharField(max_length=12, choices=Purpose.choices, default=Purpose.STUDY)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["study", "name"], name="round_name_unique_per_study"),
            models.CheckConstraint(
                condition=Q(purpose__in=["study", "calibration", "assisted"]), name="round_purpose_known"
            ),
            models.CheckConstraint(condition=Q(overlap__gte=0) & Q(overlap__lte=1), name="round_overlap_0_1"),
        ]

    def __str__(self) -> str:
        return self.name


class Assignment(models.Model):
    """One coder × one transcript in a round; ``version`` guards against stale writes (409).

    Only a member of the round's study reaches it (``annotation.queries.access``): a removed coder's
    assignments stay as history, shown "coder removed" to coordinators, who may reassign them.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Not started")
        IN_PROGRESS = "in_progress", _("In progress")
        SUBMITTED = "submitted", _("Submitted")

    class Kind(models.TextChoices):
        CODING = "coding", _("Coding")
        CONSENSUS = "consensus", _("Consensus (adjudication)")
        # A machine coder's coding (its coder is a service user that cannot sign in): stored like a
        # human's, never in a coder's queue, and left out of human reliability and results by default.
        MACHINE = "machine", _("Machine coding")

    coding_round = models.ForeignKey(CodingRound, on_delete=models.CASCADE, related_name="assignments")
    transcript = models.ForeignKey(Transcript, on_delete=models.CASCADE, related_name="assignments")
    coder = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.CODING)
    position = models.PositiveIntegerField(default=0, help_text=_("Order in the coder's shuffled queue."))
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    version = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # False once the work was reassigned (its coder removed from the study): the coding stays as history
    # and counts in results only if a coordinator includes it again.
    in_results = models.BooleanField(
        default=True, help_text=_("Whether this coding counts in results (off once reassigned, until included).")
    )

    class Meta:
        ordering = ["coding_round", "coder", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["coding_round", "coder", "transcript", "kind"], name="assignment_unique_per_coder"
            ),
            models.UniqueConstraint(
                fields=["coding_round", "transcript"],
                condition=Q(kind="consensus"),
                name="one_consensus_per_transcript",
            ),
        ]
        indexes = [models.Index(fields=["coder", "status"])]


class UtteranceCode(models.Model):
    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="codes")
    utterance = models.ForeignKey(Utterance, on_delete=models.CASCADE, related_name="codes")
    code = models.CharField(max_length=16)
    # In an assisted round: the coder took the machine coder's suggestion for this utterance as it was.
    suggestion_accepted = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["assignment", "utterance"], name="one_code_per_coder_per_utterance"),
            models.CheckConstraint(condition=Q(code__in=[*miti.CODE_KEYS, miti.NO_CODE]), name="utterance_code_valid"),
        ]


class AdditionalCode(models.Model):
    """A further behaviour an imported label flags on an utterance whose code is already stored.

    AnnoMI flags a reflection, a question and therapist input independently on each utterance (413
    utterances are both a reflection and a question); MITI counts each in its own slot of the volley.
    The utterance keeps one ``UtteranceCode`` (the main behaviour, what utterance-level agreement
    compares) and each other flagged behaviour is one row here, counted by the per-volley tally
    (docs/miti.md, "Labels imported from AnnoMI"). Imported labels only: only
    ``annotation.actions.import_annomi_round`` writes them; the coding page and the API never do.
    """

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="additional_codes")
    utterance = models.ForeignKey(Utterance, on_delete=models.CASCADE, related_name="additional_codes")
    code = models.CharField(max_length=16)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["assignment", "utterance", "code"], name="additional_code_once"),
            # a behaviour, never "no code": an additional code is something the label flags
            models.CheckConstraint(condition=Q(code__in=list(miti.CODE_KEYS)), name="additional_code_valid"),
        ]


class GlobalRating(models.Model):
    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="global_ratings")
    scale = models.CharField(max_length=32)
    value = models.PositiveSmallIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["assignment", "scale"], name="one_rating_per_scale"),
            models.CheckConstraint(condition=Q(value__gte=1) & Q(value__lte=5), name="global_rating_1_5"),
            models.CheckConstraint(condition=Q(scale__in=list(miti.GLOBAL_KEYS)), name="global_scale_valid"),
        ]


class AssignmentSummary(models.Model):
    """The MITI numbers of one submitted coding, stored when it is submitted (``actions.summaries``).

    The results pages read these rows instead of tallying every utterance code on every view. A row
    is valid only for the assignment ``version`` it was computed at: a reopen bumps the version (and
    deletes the row), so a stale row can never stand for changed codes; a coding without a valid row
    is tallied on read (``evaluation.summaries``).
    """

    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="summary")
    version = models.PositiveIntegerField()
    counts = models.JSONField(default=dict)  # the ten behaviour tallies
    globals = models.JSONField(default=dict)  # the four ratings, None where not rated
    scores = models.JSONField(default=dict)  # miti.ALL_SUMMARY_KEYS
    n_coded = models.PositiveIntegerField(default=0)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "assignment summaries"  # not Django's "assignment summarys"


class AuditEvent(models.Model):
    """Who changed what, when, old → new. Written by every coding action."""

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    action = models.CharField(max_length=20)  # code, global, undo, submit, reopen, segment
    target = models.CharField(max_length=100, blank=True)
    old = models.CharField(max_length=100, blank=True)
    new = models.CharField(max_length=100, blank=True)
    version = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["at", "id"]


class ApiToken(models.Model):
    """A personal API token for scripts. Only a SHA-256 hash is stored; the token is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text=_("First characters, to recognise a token in lists."))
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]


# Gold standards, calibration and proficiency (their own room; Django finds models through this module).
from .gold_models import (  # noqa: E402, F401
    GoldAssignment,
    GoldCode,
    GoldRating,
    GoldSet,
    GoldTranscript,
    ProficiencyStandard,
    RoundGoldPolicy,
)


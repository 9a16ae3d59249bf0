"""AnnoMI expert labels as a coding round: real multi-coder data for the reliability work.

``AnnoMI-full.csv`` holds one row per utterance per annotator. Each AnnoMI transcript becomes one
transcript of an ``imported`` source labelled "AnnoMI"; each counselor turn is a volley (with the
client turn before it as context) and each AnnoMI therapist row is exactly one utterance — the
labels are per row, so the rows are never re-segmented. Every behaviour a row flags is placed on
that row's utterance: the main behaviour as its code, each other flagged behaviour as an
``AdditionalCode`` (docs/miti.md, "Labels imported from AnnoMI"). Each ``annotator_id`` becomes a coder
(``annomi-annotator-N``) with one submitted assignment per transcript they labelled. AnnoMI has no
MITI globals, so the round has ``globals_rated=False`` and the globals show as "not rated".
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from .. import miti, parsers
from ..errors import ActionError
from ..models import (
    AdditionalCode,
    Assignment,
    AuditEvent,
    CodingRound,
    Dialogue,
    Membership,
    Study,
    Transcript,
    TranscriptSource,
    Turn,
    Utterance,
    UtteranceCode,
    Volley,
)
from .imports import _store
from .summaries import store_summaries
from .transcripts import unique_blind_codes

SOURCE_LABEL = "AnnoMI"
USERNAME_TEMPLATE = "annomi-annotator-{}"


def _reflection(label: parsers.AnnoMILabel) -> str:
    # A reflection without a subtype (one row of AnnoMI-full: main behaviour "reflection", subtype
    # n/a) is still a reflection; the annotator did not call it complex, so it counts as simple.
    return "CR" if label.reflection_subtype == "complex" else "SR"


def miti_code_for(label: parsers.AnnoMILabel) -> str:
    """The MITI code of an AnnoMI row's *main* behaviour (DATA README: the labels map to MITI partly).

    reflection + simple → SR, reflection + complex → CR, reflection without a subtype → SR, question →
    Q, therapist_input + information → GI. Everything else (other, advice, negotiation, options) has
    no MITI equivalent and becomes an explicit "no code".
    """
    behaviour = label.main_therapist_behaviour
    if behaviour == "reflection":
        return _reflection(label)
    if behaviour == "question":
        return "Q"
    if behaviour == "therapist_input" and label.therapist_input_subtype == "information":
        return "GI"
    return miti.NO_CODE


def flagged_codes(label: parsers.AnnoMILabel) -> list[str]:
    """Every MITI behaviour the row flags, main behaviour or not, in slot order (GI, Q, SR/CR).

    AnnoMI flags each behaviour on its own (``reflection_exists`` with a subtype, ``question_exists``,
    ``therapist_input_exists`` with a subtype); the parser keeps the subtype, which is set exactly when
    the flag is. The main behaviour counts as flagged too (the subtype-less reflection).
    """
    codes: list[str] = []
    if label.therapist_input_subtype == "information":
        codes.append("GI")
    if label.question_subtype is not None or label.main_therapist_behaviour == "question":
        codes.append("Q")
    if label.reflection_subtype is not None or label.main_therapist_behaviour == "reflection":
        codes.append(_reflection(label))
    return codes


def codes_for(label: parsers.AnnoMILabel) -> tuple[str, list[str]]:
    """(the utterance's code, its additional codes): the main behaviour's code, then every other
    behaviour the row flags. With no MITI main behaviour (e.g. advice that is also a question) the code
    is "no code" and the question is an additional code: utterance-level agreement keeps comparing
    AnnoMI's main behaviours, while the per-volley tally counts everything flagged."""
    code = miti_code_for(label)
    return code, [c for c in flagged_codes(label) if c != code]


@dataclass
class AnnoMIRoundResult:
    """What :func:`import_annomi_round` created, for the command and the page to report."""

    coding_round: CodingRound
    source: TranscriptSource
    dialogues_imported: int
    transcripts: int
    coders: int
    assignments: int
    codes: int
    multi_coded: int
    additional_codes: int = 0
    warnings: list[str] = field(default_factory=list)


@transaction.atomic
def import_annomi_round(
    study: Study,
    path: str | PathLike[str] | None = None,
    *,
    round_name: str,
    created_by=None,
    data: bytes | None = None,
    filename: str | None = None,
) -> AnnoMIRoundResult:
    """Import AnnoMI-full.csv labels into ``study`` as one coding round with a coder per annotator.

    Reads ``path`` (or uploaded ``data`` named ``filename``). Dialogues missing from the study are
    imported first; transcripts of the "AnnoMI" source are reused when present. All or nothing:
    bad input raises ``parsers.ImportFormatError`` (file, line, field), conflicts ``ActionError``.
    """
    if not round_name.strip():
        raise ActionError(gettext("Give the round a name."))
    if CodingRound.objects.filter(study=study, name=round_name).exists():
        raise ActionError(f"A round named '{round_name}' already exists in this study.")
    if data is None:
        if path is None:
            raise ActionError("Nothing to import: give the AnnoMI-full.csv file.")
        data = Path(path).read_bytes()
        filename = filename or str(path)
    filename = filename or "AnnoMI-full.csv"
    labels = parsers.annomi_annotator_labels(data, filename)
    if not labels:
        raise ActionError(f"{filename}: no transcripts with annotator labels.")
    result = parsers.parse_bytes(data, filename, fmt="annomi")
    warnings = list(result.warnings)

    # 1. Dialogues: import those the study does not have yet (the simple CSV may have brought some).
    wanted = {d.external_id for d in result.dialogues}
    present = set(
        Dialogue.objects.filter(study=study, external_id__in=wanted).values_list("external_id", flat=True)
    )
    missing = [d for d in result.dialogues if d.external_id not in present]
    if missing:
        _store(
            study,
            parsers.ParseResult(missing, result.format, warnings=list(result.warnings)),
            label=filename,
            split=None,
            created_by=created_by,
        )
    dialogues = {d.external_id: d for d in Dialogue.objects.filter(study=study, external_id__in=wanted)}

    # 2. Source and transcripts: the lowest annotator's rows fix the utterances of a transcript.
    source, _created = TranscriptSource.objects.get_or_create(
        study=study, label=SOURCE_LABEL, defaults={"kind": TranscriptSource.Kind.IMPORTED}
    )
    if source.kind != TranscriptSource.Kind.IMPORTED:
        raise ActionError(f"The study already has a source labelled '{SOURCE_LABEL}' that is not imported labels.")
    by_transcript: dict[str, list[parsers.AnnoMIAnnotatorLabels]] = defaultdict(list)
    for entry in labels:
        by_transcript[entry.external_id].append(entry)
    base = {ext: entries[0] for ext, entries in by_transcript.items()}  # sorted by annotator_id
    utterances_by_ext = _ensure_transcripts(source, dialogues, base)

    # 3. Coders, round, submitted assignments and their codes.
    annotator_ids = sorted({entry.annotator_id for entry in labels})
    coders = {a: _annotator_user(study, a) for a in annotator_ids}
    multi = sum(1 for entries in by_transcript.values() if len(entries) > 1)
    coding_round = CodingRound.objects.create(
        study=study,
        name=round_name,
        overlap=multi / len(by_transcript),
        seed=0,  # nothing is drawn: who coded what comes from the file
        globals_rated=False,
        created_by=created_by,
    )
    coding_round.sources.set([source])
    coding_round.coders.set(coders.values())

    now = timezone.now()
    transcript_ids = {ext: utts[0].volley.transcript_id for ext, utts in utterances_by_ext.items()}
    positions: dict[int, int] = defaultdict(int)
    assignments: list[Assignment] = []
    for ext in sorted(by_transcript, key=lambda e: by_transcript[e][0].transcript_id):
        for entry in by_transcript[ext]:
            assignments.append(
                Assignment(
                    coding_round=coding_round,
                    transcript_id=transcript_ids[ext],
                    coder=coders[entry.annotator_id],
                    position=positions[entry.annotator_id],
                    status=Assignment.Status.SUBMITTED,
                    version=1,
                    started_at=now,
                    submitted_at=now,
                )
            )
            positions[entry.annotator_id] += 1
    assignments = Assignment.objects.bulk_create(assignments, batch_size=1000)

    codes: list = []
    extra: list = []
    events: list[AuditEvent] = []
    it = iter(assignments)
    for ext in sorted(by_transcript, key=lambda e: by_transcript[e][0].transcript_id):
        units = utterances_by_ext[ext]
        position_of = {label.utterance_id: i for i, label in enumerate(_codable(base[ext]))}
        for entry in by_transcript[ext]:
            assignment = next(it)
            for label in entry.utterances:
                i = position_of.get(label.utterance_id)
                if i is None:
                    if label.turn_index is not None:
                        warnings.append(
                            f"{filename}: transcript {entry.transcript_id}, annotator {entry.annotator_id}: "
                            f"utterance_id {label.utterance_id} is not in annotator "
                            f"{base[ext].annotator_id}'s rows; its label was skipped"
                        )
                    continue
                code, additional = codes_for(label)
                codes.append((assignment, units[i], code))
                extra += [(assignment, units[i], c) for c in additional]
            events.append(
                AuditEvent(
                    assignment=assignment, actor=created_by, action="import",
                    target=f"AnnoMI annotator {entry.annotator_id}", old="", new="submitted", version=1,
                )
            )
    UtteranceCode.objects.bulk_create(
        [UtteranceCode(assignment=a, utterance=u, code=c) for a, u, c in codes], batch_size=2000
    )
    AdditionalCode.objects.bulk_create(
        [AdditionalCode(assignment=a, utterance=u, code=c) for a, u, c in extra], batch_size=2000
    )
    AuditEvent.objects.bulk_create(events, batch_size=1000)
    store_summaries([a.pk for a in assignments])
    return AnnoMIRoundResult(
        coding_round=coding_round,
        source=source,
        dialogues_imported=len(missing),
        transcripts=len(by_transcript),
        coders=len(coders),
        assignments=len(assignments),
        codes=len(codes),
        multi_coded=multi,
        additional_codes=len(extra),
        warnings=warnings,
    )


def _codable(entry: parsers.AnnoMIAnnotatorLabels) -> list[parsers.AnnoMILabel]:
    """Therapist rows that carry text (an empty row has no merged turn and cannot be a unit)."""
    return [label for label in entry.utterances if label.turn_index is not None]


def _ensure_transcripts(
    source: TranscriptSource,
    dialogues: dict[str, Dialogue],
    base: dict[str, parsers.AnnoMIAnnotatorLabels],
) -> dict[str, list[Utterance]]:
    """Each AnnoMI transcript's utterances in row order, creating the transcripts that are missing."""
    existing = {
        t.dialogue.external_id: t
        for t in Transcript.objects.filter(source=source, dialogue__in=dialogues.values()).select_related("dialogue")
    }
    result: dict[str, list[Utterance]] = {}
    for ext, transcript in existing.items():
        units = list(
            Utterance.objects.filter(volley__transcript=transcript)
            .select_related("volley")
            .order_by("volley__index", "index")
        )
        if len(units) != len(_codable(base[ext])):
            raise ActionError(
                f"Transcript {transcript.blind_code} ({ext}) has {len(units)} utterances but the file has "
                f"{len(_codable(base[ext]))} therapist rows; it cannot take these labels."
            )
        result[ext] = units

    todo = [ext for ext in base if ext not in existing]
    if not todo:
        return result
    codes = unique_blind_codes(len(todo))
    transcripts = Transcript.objects.bulk_create(
        [
            Transcript(source=source, dialogue=dialogues[ext], blind_code=code, segmentation_locked=True)
            for ext, code in zip(todo, codes, strict=True)
        ]
    )
    turns_by_dialogue: dict[int, list[Turn]] = defaultdict(list)
    for turn in Turn.objects.filter(dialogue__in=[dialogues[ext] for ext in todo]).order_by("dialogue_id", "index"):
        turns_by_dialogue[turn.dialogue_id].append(turn)

    volley_rows: list[Volley] = []
    volley_units: list[list[parsers.AnnoMILabel]] = []
    for ext, transcript in zip(todo, transcripts, strict=True):
        turns = turns_by_dialogue[dialogues[ext].pk]
        groups: dict[int, list[parsers.AnnoMILabel]] = defaultdict(list)
        for label in _codable(base[ext]):
            groups[label.turn_index].append(label)
        for v_index, turn_index in enumerate(sorted(groups)):
            units = groups[turn_index]
            context = ""
            text = "\n\n".join(u.text for u in units)
            # The dialogue's turns come from the same rows, so turn_index points at the same merged
            # turn; check the speakers anyway (the dialogue may have come from the simple CSV).
            if turn_index < len(turns) and turns[turn_index].speaker == Turn.Speaker.COUNSELOR:
                text = turns[turn_index].text
                if turn_index > 0 and turns[turn_index - 1].speaker == Turn.Speaker.CLIENT:
                    context = turns[turn_index - 1].text
            volley_rows.append(Volley(transcript=transcript, index=v_index, client_context=context, text=text))
            volley_units.append(units)
    volley_rows = Volley.objects.bulk_create(volley_rows, batch_size=1000)
    utterance_rows = Utterance.objects.bulk_create(
        [
            Utterance(volley=volley, index=i, text=label.text)
            for volley, units in zip(volley_rows, volley_units, strict=True)
            for i, label in enumerate(units)
        ],
        batch_size=2000,
    )
    by_transcript: dict[int, list[Utterance]] = defaultdict(list)
    volley_by_id = {v.pk: v for v in volley_rows}
    for unit in utterance_rows:
        unit.volley = volley_by_id[unit.volley_id]
        by_transcript[unit.volley.transcript_id].append(unit)
    for ext, transcript in zip(todo, transcripts, strict=True):
        result[ext] = by_transcript[transcript.pk]
    return result


def _annotator_user(study: Study, annotator_id: int):
    """The account standing for one AnnoMI annotator: cannot log in, coder in the study."""
    user_model = get_user_model()
    user = user_model.objects.filter(username=USERNAME_TEMPLATE.format(annotator_id)).first()
    if user is None:
        user = user_model(username=USERNAME_TEMPLATE.format(annotator_id))
        user.set_unusable_password()
        user.save()
    Membership.objects.get_or_create(study=study, user=user, defaults={"role": Membership.Role.CODER})
    return user

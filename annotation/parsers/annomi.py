"""AnnoMI CSV (simple and full): one row per utterance, grouped into transcripts.

Rows are read with the standard csv module, so every cell stays a string — the same as pandas'
``keep_default_na=False`` (AnnoMI writes the literal label ``n/a``). A transcript's turns are its
rows ordered by ``utterance_id``; ``interlocutor`` therapist -> counselor, client -> client.
In the full file 7 transcripts were labelled by all 10 annotators and their rows repeat per
``annotator_id``: the dialogue takes the turns once, from the lowest annotator id, and
:func:`annomi_annotator_labels` returns every annotator's therapist labels.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from .base import CLIENT, COUNSELOR, ImportFormatError, ParsedDialogue, location, make_dialogue, merge_turns

SOURCE_DATASET = "AnnoMI"
REQUIRED_COLUMNS = ("transcript_id", "utterance_id", "interlocutor", "utterance_text")
LABEL_COLUMNS = (
    "main_therapist_behaviour",
    "reflection_subtype",
    "question_subtype",
    "therapist_input_subtype",
)
ROLES = {"therapist": COUNSELOR, "client": CLIENT}
METADATA_COLUMNS = ("mi_quality", "video_title", "video_url")


@dataclass(frozen=True, slots=True)
class AnnoMILabel:
    """One therapist utterance as one annotator labelled it; "n/a" and "" become None."""

    utterance_id: int
    turn_index: int | None  # index of the merged counselor turn in the dialogue's turns (None: empty text)
    text: str
    main_therapist_behaviour: str | None
    reflection_subtype: str | None
    question_subtype: str | None
    therapist_input_subtype: str | None


@dataclass(slots=True)
class AnnoMIAnnotatorLabels:
    transcript_id: int
    external_id: str  # the dialogue's external id, e.g. "annomi_7"
    annotator_id: int
    utterances: list[AnnoMILabel]  # therapist utterances in utterance_id order


@dataclass(slots=True)
class _Row:
    utterance_id: int
    line: str
    cells: dict[str, str]


def external_id_for(transcript_id: int) -> str:
    return f"annomi_{transcript_id}"


def looks_like_annomi(text: str) -> bool:
    header = text[: text.find("\n")] if "\n" in text else text
    return all(column in header for column in REQUIRED_COLUMNS)


def _int(cells: dict[str, str], column: str, filename: str, line: str) -> int:
    try:
        return int(cells[column])
    except ValueError:
        raise ImportFormatError(
            f"must be an integer, got {cells[column]!r}", filename, line, column
        ) from None


def _read(
    text: str, filename: str, extra_columns: tuple[str, ...] = ()
) -> dict[int, dict[int | None, list[_Row]]]:
    """Rows grouped as {transcript_id: {annotator_id or None: rows sorted by utterance_id}}."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = reader.fieldnames or []
    for column in REQUIRED_COLUMNS + extra_columns:
        if column not in columns:
            raise ImportFormatError("missing column in the header", filename, "line 1", column)
    has_annotators = "annotator_id" in columns
    grouped: dict[int, dict[int | None, list[_Row]]] = {}
    for cells in reader:
        line = f"line {reader.line_num}"  # the last physical line of the row (cells may hold newlines)
        if None in cells:
            raise ImportFormatError("more cells than header columns", filename, line, None)
        if any(cells[c] is None for c in REQUIRED_COLUMNS + extra_columns):
            raise ImportFormatError("fewer cells than header columns", filename, line, None)
        transcript_id = _int(cells, "transcript_id", filename, line)
        annotator_id = _int(cells, "annotator_id", filename, line) if has_annotators else None
        if cells["interlocutor"] not in ROLES:
            raise ImportFormatError(
                f"unknown role {cells['interlocutor']!r}; expected therapist or client",
                filename,
                line,
                "interlocutor",
            )
        row = _Row(_int(cells, "utterance_id", filename, line), line, cells)
        grouped.setdefault(transcript_id, {}).setdefault(annotator_id, []).append(row)
    for transcript_id, by_annotator in grouped.items():
        for rows in by_annotator.values():
            rows.sort(key=lambda r: r.utterance_id)
            for before, after in zip(rows, rows[1:], strict=False):
                if before.utterance_id == after.utterance_id:
                    raise ImportFormatError(
                        f"utterance_id {after.utterance_id} repeats in transcript {transcript_id} "
                        f"(also at {before.line})",
                        filename,
                        after.line,
                        "utterance_id",
                    )
    return grouped


def parse_annomi(text: str, filename: str, warnings: list[str]) -> list[ParsedDialogue]:
    """Dialogues of AnnoMI-simple.csv or AnnoMI-full.csv, one per transcript, by transcript_id."""
    grouped = _read(text, filename)
    dialogues = []
    several = 0
    for transcript_id in sorted(grouped):
        by_annotator = grouped[transcript_id]
        annotators = sorted(by_annotator, key=lambda a: -1 if a is None else a)
        rows = by_annotator[annotators[0]]
        turns = [(ROLES[r.cells["interlocutor"]], r.cells["utterance_text"]) for r in rows]
        if len(annotators) > 1:
            several += 1
            for other in annotators[1:]:
                other_turns = [
                    (ROLES[r.cells["interlocutor"]], r.cells["utterance_text"]) for r in by_annotator[other]
                ]
                if other_turns != turns:
                    warnings.append(
                        f"{location(filename, rows[0].line)}: transcript {transcript_id}: annotator "
                        f"{other}'s utterances differ from annotator {annotators[0]}'s; turns taken from "
                        f"{annotators[0]}"
                    )
        first = rows[0].cells
        metadata: dict[str, object] = {"transcript_id": transcript_id}
        metadata.update({c: first[c] for c in METADATA_COLUMNS if first.get(c)})
        if annotators[0] is not None:
            metadata["annotator_ids"] = annotators
        dialogues.append(
            make_dialogue(
                external_id_for(transcript_id),
                turns,
                file=filename,
                record=f"transcript {transcript_id}",
                warnings=warnings,
                source_dataset=SOURCE_DATASET,
                topic=(first.get("topic") or "").strip() or None,
                metadata=metadata,
            )
        )
    if several:
        warnings.append(
            f"{filename}: {several} transcript(s) were labelled by several annotators; each dialogue takes "
            f"its turns once, from the lowest annotator_id"
        )
    return dialogues


def _label(value: str) -> str | None:
    value = value.strip()
    return None if value in ("", "n/a") else value


def annomi_annotator_labels(text: str, filename: str) -> list[AnnoMIAnnotatorLabels]:
    """Per-annotator therapist labels of AnnoMI-full.csv, one entry per (transcript_id, annotator_id).

    Sorted by transcript_id then annotator_id; utterances are the therapist rows in utterance_id
    order, with ``turn_index`` pointing at the merged counselor turn of the parsed dialogue.
    """
    grouped = _read(text, filename, extra_columns=("annotator_id", *LABEL_COLUMNS))
    result = []
    for transcript_id in sorted(grouped):
        for annotator_id, rows in sorted(grouped[transcript_id].items()):
            assert annotator_id is not None  # the annotator_id column is required above
            _, index_map = merge_turns(
                (ROLES[r.cells["interlocutor"]], r.cells["utterance_text"]) for r in rows
            )
            utterances = [
                AnnoMILabel(
                    utterance_id=row.utterance_id,
                    turn_index=turn_index,
                    text=row.cells["utterance_text"].strip(),
                    **{column: _label(row.cells[column]) for column in LABEL_COLUMNS},
                )
                for row, turn_index in zip(rows, index_map, strict=True)
                if ROLES[row.cells["interlocutor"]] == COUNSELOR
            ]
            result.append(
                AnnoMIAnnotatorLabels(transcript_id, external_id_for(transcript_id), annotator_id, utterances)
            )
    return result

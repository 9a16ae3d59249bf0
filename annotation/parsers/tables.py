"""Utterance tables: CSV and Parquet with one row per turn — dialogue id, speaker, text.

The columns default to ``dialogue_id``, ``speaker`` and ``text``; the coordinator may name others
(``ImportOptions.dialogue_column`` …). Speaker values are the coordinator's client/counselor values
(``ImportOptions.client_prefix``/``counselor_prefix``) or a known pair of the speaker-prefixed family
(``Client``/``Therapist``, ``C``/``T``, ``来访者``/``咨询师`` …, compared case-insensitively, a trailing
colon ignored); ``system`` is always a system turn. Rows are grouped by dialogue id, dialogues in the
order they first appear, turns in row order; other columns are ignored. Rows are utterances (as in
AnnoMI), so rows of one speaker in a row are merged quietly. Parquet is read with pandas + pyarrow
(Hugging Face datasets are published as Parquet); CSV with the standard csv module (cells stay text).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from typing import Any

from .base import CLIENT, COUNSELOR, SYSTEM, ImportFormatError, ImportOptions, ParsedDialogue, make_dialogue
from .speakers import KNOWN_PAIRS, SpeakerPair, given_pair

Row = tuple[str, dict[str, Any]]  # (label such as "line 3" or "row 2", cells by column)


def mapped_columns(options: ImportOptions) -> tuple[str, str, str]:
    return options.dialogue_column, options.speaker_column, options.text_column


def _value_key(value: str) -> str:
    return value.strip().rstrip(":：").strip().casefold()


def detect_speaker_values(values: Sequence[str]) -> SpeakerPair | None:
    """The known pair whose both names occur among the speaker values, or None."""
    present = {_value_key(v) for v in values}
    for pair in KNOWN_PAIRS:
        if pair.client.casefold() in present and pair.counselor.casefold() in present:
            return pair
    return None


def read_csv_rows(text: str, filename: str) -> tuple[list[str], list[Row]]:
    """The header and the rows of a CSV document (labels "line N": the row's last physical line)."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = list(reader.fieldnames or [])
    rows: list[Row] = []
    for cells in reader:
        label = f"line {reader.line_num}"
        if None in cells:
            raise ImportFormatError("more cells than header columns", filename, label, None)
        rows.append((label, dict(cells)))
    return columns, rows


def read_parquet_rows(data: bytes, filename: str) -> tuple[list[str], list[Row]]:
    """The columns and the rows of a Parquet file (labels "row N", 1-based)."""
    try:
        import pandas
    except ImportError:  # pragma: no cover - pandas is a core dependency
        raise ImportFormatError("reading Parquet needs pandas and pyarrow", filename, None, None) from None
    try:
        frame = pandas.read_parquet(io.BytesIO(data))
    except Exception as err:  # noqa: BLE001 - pyarrow raises many types for a damaged file
        raise ImportFormatError(f"not a readable Parquet file ({type(err).__name__}: {err})", filename, None, None) from None
    columns = [str(c) for c in frame.columns]
    records = frame.to_dict(orient="records")
    return columns, [(f"row {i}", {str(k): v for k, v in record.items()}) for i, record in enumerate(records, 1)]


def _cell(cells: dict[str, Any], column: str, filename: str, label: str, *, required: bool = True) -> str:
    value = cells.get(column)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        if not required:
            return ""  # an empty text: dropped with a warning, as an empty turn anywhere
        raise ImportFormatError("empty cell", filename, label, column)
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # ids read as floats by pandas when a column holds gaps
    return str(value)


def parse_rows(
    columns: list[str], rows: list[Row], filename: str, warnings: list[str], options: ImportOptions
) -> list[ParsedDialogue]:
    """Dialogues of an utterance table; see the module docstring."""
    id_column, speaker_column, text_column = mapped_columns(options)
    for column in (id_column, speaker_column, text_column):
        if column not in columns:
            raise ImportFormatError(
                f"missing column (columns: {', '.join(columns) or 'none'}); name the dialogue id, speaker and "
                "text columns",
                filename,
                "line 1" if filename.lower().endswith(".csv") else None,
                column,
            )
    pair = given_pair(options, filename)
    if pair is None:
        values = sorted({_cell(c, speaker_column, filename, label) for label, c in rows})
        pair = detect_speaker_values(values)
        if pair is None:
            raise ImportFormatError(
                f"speaker values {', '.join(repr(v) for v in values[:6])} are not a known pair; "
                "name the client and counselor values",
                filename,
                None,
                speaker_column,
            )
    speakers = {_value_key(pair.client): CLIENT, _value_key(pair.counselor): COUNSELOR, "system": SYSTEM}
    grouped: dict[str, list[tuple[str, str]]] = {}
    first_label: dict[str, str] = {}
    for label, cells in rows:
        dialogue_id = _cell(cells, id_column, filename, label).strip()
        if not dialogue_id:
            raise ImportFormatError("empty dialogue id", filename, label, id_column)
        value = _cell(cells, speaker_column, filename, label)
        speaker = speakers.get(_value_key(value))
        if speaker is None:
            raise ImportFormatError(
                f"unknown speaker {value!r}; expected {pair.client!r} (client), {pair.counselor!r} (counselor) "
                "or 'system'",
                filename,
                label,
                speaker_column,
            )
        first_label.setdefault(dialogue_id, label)
        text = _cell(cells, text_column, filename, label, required=False)
        grouped.setdefault(dialogue_id, []).append((speaker, text))
    if not grouped:
        raise ImportFormatError("no rows", filename, None, None)
    return [
        make_dialogue(
            dialogue_id,
            turns,
            file=filename,
            record=f"dialogue {dialogue_id!r} (first at {first_label[dialogue_id]})",
            warnings=warnings,
        )
        for dialogue_id, turns in grouped.items()
    ]

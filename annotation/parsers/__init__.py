"""Dialogue-file parsers for imports (pure: no Django; bytes or paths in, data classes out).

Entry points: ``parse_path(path, fmt=None, options=…)`` (file, folder or zip) and
``parse_bytes(data, filename, fmt=None, options=…)`` (uploads, zip included) return a ``ParseResult``
(``dialogues``, ``format``, ``warnings``). The format is detected from the extension and content
unless ``fmt`` names one of ``FORMATS``; when none fits, the error names the closest format, why it
did not match, and every supported format. ``ImportOptions`` carries what the coordinator says
(speaker prefixes, CSV/Parquet columns, the merge tick). Bad input raises ``ImportFormatError``
naming file, line/record and field. Every format's turns go through the same rules: text stripped,
empty turns dropped (with a warning); a dialogue needs a counselor turn and at least one round.
Role-tagged formats (jsonl, openai, sharegpt, psydt, alpaca) refuse two turns of one speaker in a
row — and sharegpt, psydt and alpaca a counselor turn first — unless ``merge_consecutive`` (then
merged with a blank line between, and warned); plain transcripts merge such runs quietly
(docs/imports.md states the rule per format). Speakers are ``client``, ``counselor`` and ``system``.

Formats
-------
``jsonl`` — the project's own format, one dialogue per line (a JSON list of the same objects
is accepted too)::

    {"external_id": "s1-004",               # required, unique within the import
     "topic": "smoking cessation",          # optional string
     "split": "test",                       # optional: "train" | "test" | "unused"
     "source": "AnnoMI",                    # optional, becomes source_dataset
     "metadata": {"any": "json"},           # optional object, kept as is
     "turns": [{"speaker": "client", "text": "..."},
               {"speaker": "counselor", "text": "..."}]}   # speaker: client | counselor | system

  Unknown keys are ignored with a warning ("content_hash" and "rounds" silently).

``cpsycound`` — CPsyCounD ``case_N.txt``: turns start with ``来访者：`` / ``心理咨询师：``; a
paragraph without a prefix continues the previous turn; CRLF and BOM tolerated. One file, a
folder or a zip of files; external_id is the file stem (``case_12``). One instance of:

``prefixed`` — speaker-prefixed transcripts (``speakers``): text files (several dialogues separated
by two or more blank lines) or JSON lists of prefixed strings (CPsyCounE); the prefix pair is a
known one (``KNOWN_PAIRS``, ASCII or full-width colon) or given in ``ImportOptions``.

``csv`` / ``parquet`` — turn tables (``tables``): dialogue id, speaker and text columns (names and
speaker values from ``ImportOptions`` or a known pair).

``openai`` — OpenAI chat JSONL: ``{"messages": [{"role": system|developer|user|assistant, "content"}]}``.

``psydt`` — PsyDTCorpus JSON: list of ``{"id", "normalizedTag", "messages": [{"role", "content"}]}``;
user -> client, assistant -> counselor, system -> system; topic = normalizedTag; external_id = id.

``sharegpt`` — LLaMA-Factory ShareGPT: ``{"conversations": [{"from", "value"}], "system"?}``;
human/user -> client, gpt/assistant -> counselor, system -> system; the top-level "system"
becomes a leading system turn.

``alpaca`` — LLaMA-Factory Alpaca: ``{"instruction", "input"?, "output", "history"?: [[q, r], ...],
"system"?}``; history pairs first, then instruction (+ newline + input) as the client turn and
output as the counselor turn. JSON list or JSONL.

For psydt, sharegpt and alpaca the external_id is the record's "id" when present, else
``<file stem>-<N>`` with N the 1-based record number (list) or line number (JSON Lines).

``annomi`` — AnnoMI-simple.csv / AnnoMI-full.csv: rows grouped by transcript_id, ordered by
utterance_id; therapist -> counselor; external_id ``annomi_<transcript_id>``; topic from the
topic column; in the full file turns come from each transcript's lowest annotator_id.
``annomi_annotator_labels`` returns every annotator's therapist labels of the full file.

Content duplicates: ``content_hash`` (sha256 of speakers and whitespace-normalized texts) is set
on each dialogue; ``find_content_duplicates`` maps each repeat to its first id (flags, never drops).
"""

from __future__ import annotations

from os import PathLike

from .annomi import AnnoMIAnnotatorLabels, AnnoMILabel
from .annomi import annomi_annotator_labels as _annomi_labels_from_text
from .base import (
    CLIENT,
    COUNSELOR,
    SPEAKERS,
    SPLITS,
    SYSTEM,
    ImportFormatError,
    ImportOptions,
    ParsedDialogue,
    ParsedTurn,
    ParseResult,
    check_size,
    content_duplicate_groups,
    content_hash,
    decode_utf8,
    find_content_duplicates,
)
from .entry import (
    FILE_SUFFIXES,
    FORMAT_SUMMARIES,
    FORMATS,
    detect_format,
    folder_members,
    parse_bytes,
    parse_path,
)
from .speakers import KNOWN_PAIRS, SpeakerPair


def annomi_annotator_labels(
    source: bytes | str | PathLike[str], filename: str | None = None
) -> list[AnnoMIAnnotatorLabels]:
    """Per-annotator therapist labels of AnnoMI-full.csv, from a path or the file's bytes.

    One entry per (transcript_id, annotator_id), sorted; see ``annotation.parsers.annomi``.
    """
    if isinstance(source, bytes):
        name = filename or "AnnoMI-full.csv"
        return _annomi_labels_from_text(decode_utf8(source, name), name)
    with open(source, "rb") as handle:
        data = handle.read()
    name = filename or str(source)
    return _annomi_labels_from_text(decode_utf8(data, name), name)


__all__ = [
    "CLIENT",
    "COUNSELOR",
    "FILE_SUFFIXES",
    "FORMATS",
    "FORMAT_SUMMARIES",
    "KNOWN_PAIRS",
    "SPEAKERS",
    "SPLITS",
    "SYSTEM",
    "AnnoMIAnnotatorLabels",
    "AnnoMILabel",
    "ImportFormatError",
    "ImportOptions",
    "ParseResult",
    "ParsedDialogue",
    "ParsedTurn",
    "SpeakerPair",
    "annomi_annotator_labels",
    "check_size",
    "content_duplicate_groups",
    "content_hash",
    "detect_format",
    "find_content_duplicates",
    "folder_members",
    "parse_bytes",
    "parse_path",
]

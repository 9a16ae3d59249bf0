"""Shared pieces of the dialogue parsers: data classes, the one error class, turn merging, hashing.

Pure module: no Django, plain data in and out.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .characters import bad_character

CLIENT = "client"
COUNSELOR = "counselor"
SYSTEM = "system"
SPEAKERS = (CLIENT, COUNSELOR, SYSTEM)
SPLITS = ("train", "test", "unused")

# Separator used when consecutive turns of one speaker are merged (docs/metrics.md, "Rounds").
MERGE_SEPARATOR = "\n\n"


class ImportFormatError(ValueError):
    """Bad import input. ``str(err)`` names the file, the line/record and the field, then the problem.

    ``record`` is a string such as ``"line 12"`` or ``"record 3"`` (an int ``n`` is shown as
    ``"record n"``); ``field`` is a field name or a JSON-path-like ``"messages[2].role"`` (0-based).
    Any of file, record and field may be None when they do not apply.
    """

    def __init__(
        self,
        message: str,
        file: str | None = None,
        record: str | int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.record = f"record {record}" if isinstance(record, int) else record
        self.field = field
        super().__init__(message, file, record, field)

    def __str__(self) -> str:
        where = ", ".join(
            part for part in (self.file, self.record, f"field '{self.field}'" if self.field else None) if part
        )
        return f"{where}: {self.message}" if where else self.message

    def __reduce__(self) -> tuple[type[ImportFormatError], tuple[str, str | None, str | None, str | None]]:
        # keep the four arguments through pickling (Celery results, multiprocessing)
        return (type(self), (self.message, self.file, self.record, self.field))


def location(file: str | None, record: str | None = None, field: str | None = None) -> str:
    """The same "file, record, field 'x'" prefix ImportFormatError uses, for warnings."""
    return str(ImportFormatError("", file, record, field)).removesuffix(": ")


@dataclass(frozen=True, slots=True)
class ParsedTurn:
    speaker: str  # one of SPEAKERS
    text: str


@dataclass(slots=True)
class ParsedDialogue:
    """One dialogue as parsed from a file; turns are already merged (no two neighbours share a speaker).

    ``content_hash`` is filled from the turns when left empty (see :func:`content_hash`).
    ``origin_file``/``origin_record`` say where the dialogue came from, for error messages.
    """

    external_id: str
    turns: list[ParsedTurn]
    source_dataset: str = ""
    topic: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    split: str | None = None
    content_hash: str = ""
    origin_file: str = ""
    origin_record: str | None = None

    def __post_init__(self) -> None:
        if not self.content_hash:
            self.content_hash = content_hash(self.turns)

    @property
    def rounds(self) -> int:
        """Number of rounds (docs/metrics.md, "Rounds").

        A round is a counselor turn whose nearest preceding non-system turn is a client turn.
        So: counselor/system turns before the first client turn are not rounds (nothing to answer);
        a trailing client turn with no counselor reply is not a round; system turns are
        transparent (client, system, counselor is one round). With merged turns this equals the
        number of (client turn, counselor reply) pairs.
        """
        count = 0
        previous: str | None = None
        for turn in self.turns:
            if turn.speaker == SYSTEM:
                continue
            if turn.speaker == COUNSELOR and previous == CLIENT:
                count += 1
            previous = turn.speaker
        return count


@dataclass(slots=True)
class ParseResult:
    dialogues: list[ParsedDialogue]
    format: str  # one of FORMATS in annotation.parsers
    warnings: list[str] = field(default_factory=list)


def normalize_text(text: str) -> str:
    """Line endings to LF, outer whitespace stripped; inner text kept as written."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def merge_turns(raw: Iterable[tuple[str, str]]) -> tuple[list[ParsedTurn], list[int | None]]:
    """Drop empty turns and merge consecutive turns of one speaker with a blank line between.

    Returns the merged turns and, for each raw turn, the index of the merged turn it went into
    (None for a dropped empty turn) — the AnnoMI labels use this to point at their turn.
    """
    speakers: list[str] = []
    parts: list[list[str]] = []
    index_map: list[int | None] = []
    for speaker, text in raw:
        text = normalize_text(text)
        if not text:
            index_map.append(None)
            continue
        if speakers and speakers[-1] == speaker:
            parts[-1].append(text)
        else:
            speakers.append(speaker)
            parts.append([text])
        index_map.append(len(speakers) - 1)
    turns = [ParsedTurn(s, MERGE_SEPARATOR.join(p)) for s, p in zip(speakers, parts, strict=True)]
    return turns, index_map


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """What the coordinator may say about a file beyond its format (form, API and CLI alike).

    ``client_prefix``/``counselor_prefix`` name the speakers of speaker-prefixed text and JSON lists
    (``求助者`` or ``求助者：``; a trailing colon is optional) and the speaker values of CSV/Parquet
    rows; empty means "detect a known pair". The three column names map CSV/Parquet columns.
    ``merge_consecutive`` lets role-tagged formats merge two turns of one speaker in a row (and keep
    a counselor turn first) instead of refusing the record; each such place becomes a warning.
    """

    client_prefix: str = ""
    counselor_prefix: str = ""
    merge_consecutive: bool = False
    dialogue_column: str = "dialogue_id"
    speaker_column: str = "speaker"
    text_column: str = "text"

    def as_dict(self) -> dict[str, str | bool]:
        return {
            "client_prefix": self.client_prefix,
            "counselor_prefix": self.counselor_prefix,
            "merge_consecutive": self.merge_consecutive,
            "dialogue_column": self.dialogue_column,
            "speaker_column": self.speaker_column,
            "text_column": self.text_column,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> ImportOptions:
        """The inverse of :meth:`as_dict`; unknown keys are ignored, missing ones take the default."""
        values = values or {}
        default = cls()
        return cls(
            client_prefix=str(values.get("client_prefix") or ""),
            counselor_prefix=str(values.get("counselor_prefix") or ""),
            merge_consecutive=bool(values.get("merge_consecutive", False)),
            dialogue_column=str(values.get("dialogue_column") or default.dialogue_column),
            speaker_column=str(values.get("speaker_column") or default.speaker_column),
            text_column=str(values.get("text_column") or default.text_column),
        )


@dataclass(frozen=True, slots=True)
class TurnRules:
    """How strictly a format's turn order is checked (docs/imports.md states it per format).

    ``role_tagged``: every turn carries its speaker's role, so two turns of one speaker in a row are
    a mistake in the file, refused unless ``merge`` (then merged, with a warning per place).
    ``client_first``: the format requires the client to speak first (after system turns); a
    counselor turn first is refused unless ``merge`` (then kept, with a warning: it is no round).
    Plain transcripts (text, utterance rows) are not role-tagged: their paragraphs and rows of one
    speaker are merged quietly, as the corpora are written that way.
    """

    role_tagged: bool = False
    client_first: bool = False
    merge: bool = False


PLAIN = TurnRules()
_SPEAKER_NAMES = {CLIENT: "client", COUNSELOR: "counselor", SYSTEM: "system"}


def _check_order(
    turns: Sequence[tuple[str, str, str]],
    rules: TurnRules,
    external_id: str,
    *,
    file: str,
    record: str | None,
    warnings: list[str],
) -> None:
    """Refuse (or, with ``rules.merge``, warn about) turns out of order; turns are (speaker, text, label)."""
    merge_hint = "tick 'merge consecutive turns of one speaker' to merge them"
    first = next((t for t in turns if t[0] != SYSTEM), None)
    if rules.client_first and first is not None and first[0] == COUNSELOR:
        if not rules.merge:
            raise ImportFormatError(
                f"dialogue {external_id!r} starts with a counselor turn; this format needs the client first "
                "(tick 'merge consecutive turns of one speaker' to keep it as an opening turn)",
                file,
                record,
                first[2],
            )
        warnings.append(
            f"{location(file, record, first[2])}: dialogue {external_id!r} starts with a counselor turn; "
            "kept as an opening turn (not a round)"
        )
    if not rules.role_tagged:
        return
    for before, after in zip(turns, turns[1:], strict=False):
        if before[0] != after[0]:
            continue
        speaker = _SPEAKER_NAMES.get(before[0], before[0])
        if not rules.merge:
            raise ImportFormatError(
                f"two {speaker} turns in a row ({before[2]} and {after[2]}) in dialogue {external_id!r}; "
                f"turns must alternate — {merge_hint}",
                file,
                record,
                after[2],
            )
        warnings.append(
            f"{location(file, record, after[2])}: merged two {speaker} turns in a row "
            f"({before[2]} and {after[2]}) of dialogue {external_id!r}"
        )


def make_dialogue(
    external_id: str,
    raw_turns: Sequence[tuple[str, str]],
    *,
    file: str,
    record: str | None,
    warnings: list[str],
    source_dataset: str = "",
    topic: str | None = None,
    metadata: dict[str, Any] | None = None,
    split: str | None = None,
    rules: TurnRules = PLAIN,
    turn_labels: Sequence[str] | None = None,
    id_field: str = "external_id",
) -> ParsedDialogue:
    """Validate raw (speaker, text) turns, check their order, merge them and build a ParsedDialogue.

    Empty turns are dropped with a warning (CPsyCounD has two files ending on a bare "来访者：");
    a dialogue left with no turns, with no counselor turn or with no round (no client turn answered
    by a counselor turn) is an error. ``rules`` says how turn order is checked (see TurnRules);
    ``turn_labels`` name each raw turn in messages (e.g. ``conversations[3]``; default ``turns[i]``).
    Every text is checked against ``characters`` (NUL, control characters, lone surrogates, bidi
    overrides refused, naming the field) before anything else, so nothing refused reaches the database.
    """
    labels = list(turn_labels) if turn_labels is not None else [f"turns[{i}].text" for i in range(len(raw_turns))]
    _check_characters(
        [(id_field, external_id, False), ("source", source_dataset, False), ("topic", topic or "", False),
         ("split", split or "", False), *_metadata_strings(metadata or {}, "metadata"),
         *((labels[i], text, True) for i, (_speaker, text) in enumerate(raw_turns))],
        file=file, record=record,
    )
    for i, (speaker, _text) in enumerate(raw_turns):
        if speaker not in SPEAKERS:  # format parsers map roles first; this guards direct callers
            raise ImportFormatError(
                f"unknown speaker {speaker!r}; expected one of {', '.join(SPEAKERS)}",
                file,
                record,
                f"turns[{i}].speaker",
            )
    turns, index_map = merge_turns(raw_turns)
    dropped = index_map.count(None)
    if dropped:
        warnings.append(
            f"{location(file, record)}: dropped {dropped} empty turn(s) of dialogue {external_id!r}"
        )
    if not turns:
        raise ImportFormatError(
            f"dialogue {external_id!r} is empty (no turn with text)", file, record, "turns"
        )
    if not any(t.speaker == COUNSELOR for t in turns):
        raise ImportFormatError(f"dialogue {external_id!r} has no counselor turn", file, record, "turns")
    if rules.role_tagged or rules.client_first:
        labels = [label.removesuffix(".text") for label in labels]
        kept = [
            (speaker, text, labels[i])
            for i, ((speaker, text), merged) in enumerate(zip(raw_turns, index_map, strict=True))
            if merged is not None
        ]
        _check_order(kept, rules, external_id, file=file, record=record, warnings=warnings)
    dialogue = ParsedDialogue(
        external_id=external_id,
        turns=turns,
        source_dataset=source_dataset,
        topic=topic,
        metadata=dict(metadata or {}),
        split=split,
        origin_file=file,
        origin_record=record,
    )
    if dialogue.rounds == 0:
        speakers = ", ".join(t.speaker for t in turns[:6]) + (", …" if len(turns) > 6 else "")
        raise ImportFormatError(
            f"dialogue {external_id!r} has no round: no client turn is answered by a counselor turn "
            f"(turns: {speakers}); it could never be generated or coded",
            file,
            record,
            "turns",
        )
    return dialogue


def _metadata_strings(value: Any, path: str) -> list[tuple[str, str, bool]]:
    """Every key and string inside a metadata value, as (field path, text, multiline) to check."""
    found: list[tuple[str, str, bool]] = []
    if isinstance(value, str):
        found.append((path, value, True))
    elif isinstance(value, dict):
        for key, item in value.items():
            found.append((f"{path} key", str(key), False))
            found.extend(_metadata_strings(item, f"{path}.{key}"))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found.extend(_metadata_strings(item, f"{path}[{i}]"))
    return found


def _check_characters(values: Iterable[tuple[str, str, bool]], *, file: str, record: str | None) -> None:
    for field_name, text, multiline in values:
        problem = bad_character(text, multiline=multiline)
        if problem is not None:
            raise ImportFormatError(f"contains {problem}, which is not allowed", file, record, field_name)


def content_hash(turns: Iterable[ParsedTurn]) -> str:
    """sha256 hex of the dialogue's content: speaker and text of each turn, in order.

    Text is NFC-normalized and every whitespace run (newlines, CRLF, full-width spaces) becomes
    one space, so the same dialogue saved with other line endings or wrapping hashes the same.
    Ids, topic, split and metadata are not part of the hash.
    """
    digest = hashlib.sha256()
    for turn in turns:
        text = " ".join(unicodedata.normalize("NFC", turn.text).split())
        # Unit/record separators cannot occur in normalized text, so turn boundaries are unambiguous.
        digest.update(f"{turn.speaker}\x1f{text}\x1e".encode())
    return digest.hexdigest()


def find_content_duplicates(dialogues: Iterable[ParsedDialogue]) -> dict[str, str]:
    """Map the external id of each dialogue whose content repeats an earlier one to that first id.

    Flags, never drops: the caller decides. The first occurrence (in list order) is not a key.
    """
    first_by_hash: dict[str, str] = {}
    duplicates: dict[str, str] = {}
    for dialogue in dialogues:
        first = first_by_hash.setdefault(dialogue.content_hash, dialogue.external_id)
        if first != dialogue.external_id:
            duplicates[dialogue.external_id] = first
    return duplicates


def content_duplicate_groups(dialogues: Iterable[ParsedDialogue]) -> list[list[str]]:
    """Groups (size >= 2) of external ids sharing one content hash, each in list order."""
    groups: dict[str, list[str]] = {}
    for dialogue in dialogues:
        groups.setdefault(dialogue.content_hash, []).append(dialogue.external_id)
    return [ids for ids in groups.values() if len(ids) > 1]


def check_size(nbytes: int, limit: int, filename: str) -> None:
    """Raise ImportFormatError when an upload of ``nbytes`` is over ``limit`` bytes."""
    if nbytes > limit:
        raise ImportFormatError(
            f"file is {nbytes:,} bytes, over the limit of {limit:,} bytes", filename, None, None
        )


def decode_utf8(data: bytes, filename: str) -> str:
    """Decode UTF-8 (a leading BOM is dropped); bad bytes raise with the line they are on."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ImportFormatError(
            f"not valid UTF-8 (byte 0x{data[err.start]:02x} at offset {err.start}); save the file as UTF-8",
            filename,
            f"line {line}",
            None,
        ) from None

"""Speaker-prefixed transcripts: text files and JSON lists of strings whose turns start "Speaker：".

One family, one reader. A turn starts with a speaker prefix — a name, optional spaces, then an
ASCII ``:`` or a full-width ``：`` — at the start of a line (text) or of a string (JSON list). The
names come as a pair (client, counselor): given by the coordinator (``ImportOptions``), or detected
among ``KNOWN_PAIRS`` (the pair matching most lines wins; names compare case-insensitively).

Text files: a line without a prefix continues the running turn (paragraphs joined with a blank
line, lines of a paragraph with a newline); text before the first prefix is an error. A generic
file (format ``prefixed``) may hold several dialogues separated by **two or more blank lines in a
row**; each one is then ``<file stem>-<N>`` (1-based) and the split is reported as a warning. A
file that is one dialogue is ``<file stem>``. CPsyCounD (format ``cpsycound``) is the instance
with the pair ``来访者``/``心理咨询师`` and exactly one dialogue per file (some of its dialogues
contain runs of blank lines). JSON: a list of strings is one dialogue (``<file stem>``, CPsyCounE);
a list of such lists — or JSON Lines of them — holds one dialogue per record (``<file stem>-<N>``).
A string without a prefix is an error naming the record and its index.
Turns of one speaker in a row are merged quietly (paragraphs of one speech), as in the corpora.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .base import CLIENT, COUNSELOR, ImportFormatError, ImportOptions, ParsedDialogue, make_dialogue


@dataclass(frozen=True, slots=True)
class SpeakerPair:
    """The client's and the counselor's speaker name, without the colon."""

    client: str
    counselor: str

    def describe(self) -> str:
        return f"'{self.client}：'/'{self.counselor}：'"


CPSYCOUND_PAIR = SpeakerPair("来访者", "心理咨询师")
# Order matters only for ties (a file with client lines alone): the first listed pair wins.
KNOWN_PAIRS: tuple[SpeakerPair, ...] = (
    CPSYCOUND_PAIR,  # CPsyCounD
    SpeakerPair("来访者", "咨询师"),
    SpeakerPair("求助者", "支持者"),  # CPsyCounE: 求助者 seeks help (client), 支持者 supports (counselor)
    SpeakerPair("C", "T"),
    SpeakerPair("Client", "Therapist"),
    SpeakerPair("Patient", "Counselor"),
    SpeakerPair("Client", "Counselor"),
    SpeakerPair("Client", "Counsellor"),
)
# Something that looks like a speaker prefix, for explaining a file no known pair matches.
_ANY_PREFIX = re.compile(r"^\s*([^\s:：,，。.!?！？\"'“”()（）\[\]]{1,12})\s*([:：])")


def _name(value: str) -> str:
    return value.strip().rstrip(":：").strip()


@lru_cache(maxsize=64)
def _pattern(pair: SpeakerPair) -> re.Pattern[str]:
    return re.compile(
        rf"^\s*(?:(?P<client>{re.escape(pair.client)})|(?P<counselor>{re.escape(pair.counselor)}))\s*[:：]",
        re.IGNORECASE,
    )


def match_turn(line: str, pair: SpeakerPair) -> tuple[str, str] | None:
    """(speaker, text after the prefix) when ``line`` starts with one of the pair's prefixes."""
    found = _pattern(pair).match(line)
    if found is None:
        return None
    return (CLIENT if found.group("client") is not None else COUNSELOR), line[found.end() :].strip()


def given_pair(options: ImportOptions, filename: str) -> SpeakerPair | None:
    """The pair the coordinator named, or None when neither is named; naming only one is an error."""
    client, counselor = _name(options.client_prefix), _name(options.counselor_prefix)
    if not client and not counselor:
        return None
    if not client or not counselor:
        missing = "client_prefix" if not client else "counselor_prefix"
        raise ImportFormatError("name both the client and the counselor prefix", filename, None, missing)
    if client.casefold() == counselor.casefold():
        raise ImportFormatError(
            f"the client and counselor prefixes are the same ({client!r})", filename, None, "counselor_prefix"
        )
    return SpeakerPair(client, counselor)


# The name before a colon at the start of a line; detection counts these once per line.
_LEADING_NAME = re.compile(r"^\s*([^\s:：]{1,20})\s*[:：]")


def detect_pair(lines: Sequence[str]) -> SpeakerPair | None:
    """The known pair that matches the most lines (one that matches both speakers first), or None."""
    names: Counter[str] = Counter()
    for line in lines:
        found = _LEADING_NAME.match(line)
        if found is not None:
            names[found.group(1).casefold()] += 1
    best: SpeakerPair | None = None
    best_key: tuple[bool, int] = (False, 0)
    for pair in KNOWN_PAIRS:
        clients, counselors = names[pair.client.casefold()], names[pair.counselor.casefold()]
        key = (clients > 0 and counselors > 0, clients + counselors)
        if key[1] and key > best_key:
            best, best_key = pair, key
    return best


def candidate_prefixes(lines: Sequence[str], limit: int = 2) -> list[str]:
    """The most frequent things that look like speaker prefixes ("A：", "Coach:"), for messages."""
    counts: Counter[str] = Counter()
    for line in lines:
        found = _ANY_PREFIX.match(line)
        if found is not None:
            counts[found.group(1) + found.group(2)] += 1
    return [prefix for prefix, _ in counts.most_common(limit)]


def basename(filename: str) -> str:
    return filename.replace("\\", "/").rsplit("/", 1)[-1]


def suffix(filename: str) -> str:
    """The lower-cased extension (``.txt``), as ``PurePosixPath.suffix`` gives it, without building a path."""
    name = basename(filename)
    dot = name.rfind(".")
    return name[dot:].lower() if 0 < dot < len(name) - 1 else ""


def stem(filename: str) -> str:
    """The file stem (``.../Data/case_12.txt`` -> ``case_12``), whatever the path separator."""
    name = basename(filename)
    dot = name.rfind(".")
    return name[:dot] if 0 < dot < len(name) - 1 else name


def text_lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _segments(lines: list[str], several: bool) -> list[tuple[int, list[tuple[int, str]]]]:
    """Split numbered lines into dialogues at runs of two or more blank lines (when ``several``)."""
    segments: list[tuple[int, list[tuple[int, str]]]] = []
    current: list[tuple[int, str]] = []
    blank_run = 0
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            blank_run += 1
            current.append((lineno, ""))
            continue
        if several and blank_run >= 2 and any(text for _, text in current):
            segments.append((0, current))
            current = []
        blank_run = 0
        current.append((lineno, line))
    segments.append((0, current))
    kept = []
    for _, numbered in segments:
        first = next((n for n, text in numbered if text.strip()), None)
        if first is not None:
            kept.append((first, numbered))
    return kept


def _turns(
    numbered: list[tuple[int, str]], pair: SpeakerPair, filename: str, hint: str
) -> list[tuple[str, str]]:
    turns: list[tuple[str, list[list[str]]]] = []  # (speaker, paragraphs of lines)
    new_paragraph = False
    for lineno, raw_line in numbered:
        line = raw_line.strip()
        if not line:
            new_paragraph = True
            continue
        found = match_turn(line, pair)
        if found is not None:
            turns.append((found[0], [[found[1]]]))
        elif not turns:
            raise ImportFormatError(
                f"text before the first speaker prefix (a turn starts with '{pair.client}：' or "
                f"'{pair.counselor}：'{hint})",
                filename,
                f"line {lineno}",
                "speaker",
            )
        elif new_paragraph:
            turns[-1][1].append([line])
        else:
            turns[-1][1][-1].append(line)
        new_paragraph = False
    return [(speaker, "\n\n".join("\n".join(p) for p in paragraphs if any(p))) for speaker, paragraphs in turns]


def parse_prefixed_text(
    text: str,
    filename: str,
    warnings: list[str],
    *,
    pair: SpeakerPair,
    several: bool,
    source_dataset: str = "",
) -> list[ParsedDialogue]:
    """Dialogues of one speaker-prefixed text file (already decoded); see the module docstring."""
    hint = "; two or more blank lines in a row start a new dialogue" if several else ""
    segments = _segments(text_lines(text), several)
    if not segments:
        segments = [(1, [])]
    metadata = {} if pair == CPSYCOUND_PAIR else {"speaker_prefixes": {CLIENT: pair.client, COUNSELOR: pair.counselor}}
    if len(segments) > 1:
        starts = ", ".join(str(start) for start, _ in segments[:10]) + (", …" if len(segments) > 10 else "")
        warnings.append(
            f"{filename}: read as {len(segments)} dialogues, separated by two or more blank lines "
            f"(they start at lines {starts})"
        )
    dialogues = []
    for n, (start, numbered) in enumerate(segments, 1):
        one = len(segments) == 1
        dialogues.append(
            make_dialogue(
                stem(filename) if one else f"{stem(filename)}-{n}",
                _turns(numbered, pair, filename, hint),
                file=filename,
                record=None if one else f"line {start}",
                warnings=warnings,
                source_dataset=source_dataset,
                metadata=metadata,
            )
        )
    return dialogues


def _string_turns(
    items: list[Any], pair: SpeakerPair, filename: str, record: str | None
) -> list[tuple[str, str]]:
    turns = []
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise ImportFormatError(
                f"expected a string starting with a speaker prefix, got {type(item).__name__}",
                filename,
                record,
                f"[{i}]",
            )
        found = match_turn(item, pair)
        if found is None:
            raise ImportFormatError(
                f"no speaker prefix at the start (a turn starts with '{pair.client}：' or '{pair.counselor}：'): "
                f"{item.strip()[:40]!r}",
                filename,
                record,
                f"[{i}]",
            )
        turns.append(found)
    return turns


def parse_prefixed_strings(
    records: list[tuple[str, Any]], filename: str, warnings: list[str], *, pair: SpeakerPair, whole: bool
) -> list[ParsedDialogue]:
    """Dialogues of a JSON list of prefixed strings (``whole``: the file is one dialogue, CPsyCounE)
    or of records that are each such a list."""
    metadata = {"speaker_prefixes": {CLIENT: pair.client, COUNSELOR: pair.counselor}}
    if whole:
        items = [value for _, value in records]
        return [
            make_dialogue(
                stem(filename),
                _string_turns(items, pair, filename, None),
                file=filename,
                record=None,
                warnings=warnings,
                metadata=metadata,
            )
        ]
    dialogues = []
    for label, value in records:
        if not isinstance(value, list):
            raise ImportFormatError(
                f"expected a list of prefixed strings, got {type(value).__name__}", filename, label, None
            )
        dialogues.append(
            make_dialogue(
                f"{stem(filename)}-{label.split()[-1]}",
                _string_turns(value, pair, filename, label),
                file=filename,
                record=label,
                warnings=warnings,
                metadata=metadata,
            )
        )
    return dialogues


def string_lines(records: list[tuple[str, Any]]) -> list[str]:
    """The strings of a JSON list of strings, or of a list of such lists: what prefixes are looked for in."""
    lines: list[str] = []
    for _, value in records:
        if isinstance(value, str):
            lines.append(value)
        elif isinstance(value, list):
            lines.extend(item for item in value if isinstance(item, str))
    return lines


def is_string_list(records: list[tuple[str, Any]]) -> bool:
    """True for a JSON list of strings (records are its items)."""
    return bool(records) and all(isinstance(value, str) for _, value in records)


def is_list_of_string_lists(records: list[tuple[str, Any]]) -> bool:
    return bool(records) and all(
        isinstance(value, list) and all(isinstance(item, str) for item in value) for _, value in records
    )

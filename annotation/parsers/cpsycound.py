"""CPsyCounD plain-text dialogues (one dialogue per ``case_N.txt``): one instance of the
speaker-prefixed family (:mod:`annotation.parsers.speakers`).

A line starting with ``来访者：`` (client) or ``心理咨询师：`` (counselor) — an ASCII colon is
accepted too — starts a turn. Every other non-blank line continues the current turn: paragraphs
(separated by blank lines) without a prefix, such as the stage directions "（一段时间后）", belong
to the turn before them. Paragraphs of one turn are joined with a blank line, lines of one paragraph
with a newline. Same-speaker runs are merged by :func:`make_dialogue`. CRLF and a BOM are tolerated.
Speaker labels with a name, e.g. ``来访者（小李）：``, are not prefixes: such lines (a handful in the
corpus) stay text of the running turn, which keeps the corpus' published count of 24,590 rounds.
A file is always one dialogue (runs of blank lines do not split it); its external id is the stem.
"""

from __future__ import annotations

from .base import ParsedDialogue
from .speakers import CPSYCOUND_PAIR, parse_prefixed_text, stem

SOURCE_DATASET = "CPsyCounD"


def external_id_for(filename: str) -> str:
    """The file stem (``.../Data/case_12.txt`` -> ``case_12``), whatever the path separator."""
    return stem(filename)


def parse_cpsycound(text: str, filename: str, warnings: list[str]) -> list[ParsedDialogue]:
    """Parse one CPsyCounD file's text (already decoded) into a one-element list."""
    return parse_prefixed_text(
        text, filename, warnings, pair=CPSYCOUND_PAIR, several=False, source_dataset=SOURCE_DATASET
    )

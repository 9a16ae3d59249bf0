"""CPsyCounD plain-text dialogues (one dialogue per ``case_N.txt``).

A line starting with ``来访者：`` (client) or ``心理咨询师：`` (counselor) — an ASCII colon is
accepted too — starts a turn. Every other non-blank line continues the current turn: paragraphs
(separated by blank lines) without a prefix, such as the stage directions "（一段时间后）", belong
to the turn before them. Paragraphs of one turn are joined with a blank line, lines of one paragraph
with a newline. Same-speaker runs are merged by :func:`make_dialogue`. CRLF and a BOM are tolerated.
Speaker labels with a name, e.g. ``来访者（小李）：``, are not prefixes: such lines (a handful in the
corpus) stay text of the running turn, which keeps the corpus' published count of 24,590 rounds.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from .base import CLIENT, COUNSELOR, ImportFormatError, ParsedDialogue, make_dialogue

SOURCE_DATASET = "CPsyCounD"
PREFIXES = (
    ("来访者：", CLIENT),
    ("心理咨询师：", COUNSELOR),
    ("来访者:", CLIENT),
    ("心理咨询师:", COUNSELOR),
)


def looks_like_cpsycound(text: str) -> bool:
    """True when some line starts with one of the speaker prefixes."""
    return any(line.lstrip().startswith(prefix) for line in text.splitlines() for prefix, _ in PREFIXES)


def external_id_for(filename: str) -> str:
    """The file stem (``.../Data/case_12.txt`` -> ``case_12``), whatever the path separator."""
    return PurePosixPath(filename.replace("\\", "/")).stem


def parse_cpsycound(text: str, filename: str, warnings: list[str]) -> list[ParsedDialogue]:
    """Parse one CPsyCounD file's text (already decoded) into a one-element list."""
    turns: list[tuple[str, list[list[str]]]] = []  # (speaker, paragraphs of lines)
    new_paragraph = False
    for lineno, raw_line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        line = raw_line.strip()
        if not line:
            new_paragraph = True
            continue
        for prefix, speaker in PREFIXES:
            if line.startswith(prefix):
                turns.append((speaker, [[line[len(prefix) :].strip()]]))
                break
        else:
            if not turns:
                raise ImportFormatError(
                    "text before the first speaker prefix (a turn starts with '来访者：' or '心理咨询师：')",
                    filename,
                    f"line {lineno}",
                    "speaker",
                )
            paragraphs = turns[-1][1]
            if new_paragraph:
                paragraphs.append([line])
            else:
                paragraphs[-1].append(line)
        new_paragraph = False
    raw = [
        (speaker, "\n\n".join("\n".join(p) for p in paragraphs if any(p))) for speaker, paragraphs in turns
    ]
    dialogue = make_dialogue(
        external_id_for(filename),
        raw,
        file=filename,
        record=None,
        warnings=warnings,
        source_dataset=SOURCE_DATASET,
    )
    return [dialogue]

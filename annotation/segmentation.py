"""Split a counselor volley into utterances, the units MITI codes attach to (no Django).

Segmentation is fixed before a coding round opens so every coder codes the same units; this module
makes the first cut and gives the coordinator two list operations to adjust it (merge, split).

Rules of ``split_utterances``, chosen to err towards fewer pieces ("fewer parses over more" is a
MITI when-in-doubt default, and the coordinator can split by hand):

- A line break always ends an utterance (paragraphs and list items in generated text are deliberate).
- Sentence punctuation ends an utterance: 。！？；｡ and ASCII ? ! . — a run of it stays together
  ("真的吗？！", "What?!"), as do closing quotes and brackets right after it ("……。”", "done.)").
- Punctuation inside a matched pair of quotes or brackets does not split: a suggested phrase such as
  你可以说：“我很生气。我需要冷静。” stays one utterance; an unmatched quote is ignored.
- An ellipsis ("...", "…", "……") alone is a pause, not an end; followed by other end punctuation
  ("……。", "...?") it ends the utterance.
- An ASCII "." ends an utterance only before whitespace, the end, or CJK text; so 3.5, example.com
  and "e.g," do not split. Before whitespace it still does not split after titles (Mr. Dr.),
  e.g. / i.e. / cf. / vs. or single-letter initials (J. K.); after etc. / a.m. / p.m. it splits
  only when a capital letter or CJK text follows. A list number (1-2 digits at the start of a line or
  after a colon or end punctuation: "1. Try this", "以下几点：1.保持冷静。2.倾听") never ends one.
- Pieces are stripped; a piece with no letters or digits (a stray "……") is joined to its neighbour,
  so no text is lost and no utterance is punctuation only.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

STRONG_TERMINATORS = frozenset("。！？；｡!?‼⁇⁈⁉")
DOTS = frozenset(".．")
ELLIPSIS_CHARS = frozenset("…⋯")
TERMINATORS = STRONG_TERMINATORS | DOTS | ELLIPSIS_CHARS

# Opening -> closing characters tracked for nesting. ASCII '"' opens and closes; it is paired in
# order of appearance. ASCII "'" is left out: it is mostly an apostrophe (don't).
PAIRS = {"“": "”", "‘": "’", "「": "」", "『": "』", "（": "）", "(": ")", "[": "]", "【": "】",
         "《": "》", "〈": "〉", "«": "»", "﹁": "﹂", "﹃": "﹄"}
CLOSERS = frozenset(PAIRS.values()) | {'"', "'"}

TITLES = frozenset({"mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "rev", "gen", "capt"})
NEVER_FINAL = frozenset({"e.g", "i.e", "cf", "vs", "viz", "approx", "incl", "esp"})
MAYBE_FINAL = frozenset({"etc", "a.m", "p.m"})


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return (
        0x2E80 <= code <= 0x9FFF  # CJK radicals, punctuation, kana, unified ideographs
        or 0xAC00 <= code <= 0xD7AF  # Hangul
        or 0xF900 <= code <= 0xFAFF  # compatibility ideographs
        or 0xFF00 <= code <= 0xFFEF  # full-width forms
        or 0x20000 <= code <= 0x3FFFF  # ideograph extensions
    )


def _has_content(piece: str) -> bool:
    return any(unicodedata.category(ch)[0] in "LN" for ch in piece)


def _matched_pairs(line: str) -> tuple[set[int], set[int]]:
    """Indices of openers and closers that have a partner; unmatched ones are treated as plain text."""
    openers: set[int] = set()
    closers: set[int] = set()
    stack: list[tuple[str, int]] = []
    reverse = {close: open_ for open_, close in PAIRS.items()}
    for index, char in enumerate(line):
        if char in PAIRS:
            stack.append((char, index))
        elif char in reverse:
            # Pop back to the matching opener; openers skipped on the way stay unmatched.
            for depth in range(len(stack) - 1, -1, -1):
                if stack[depth][0] == reverse[char]:
                    openers.add(stack[depth][1])
                    closers.add(index)
                    del stack[depth:]
                    break
    straight = [index for index, char in enumerate(line) if char == '"']
    for first, second in zip(straight[0::2], straight[1::2], strict=False):
        openers.add(first)
        closers.add(second)
    return openers, closers


def _word_before(line: str, end: int) -> str:
    """The whitespace-delimited token ending just before ``end``, without opening quotes/brackets."""
    start = end
    while start > 0 and not line[start - 1].isspace():
        start -= 1
    return line[start:end].lstrip("\"'“‘（(「『【《[")


def _is_list_number(line: str, dot: int) -> bool:
    """Whether the dot closes a list number: 1-2 digits at the line start or after ：: or end punctuation."""
    start = dot
    while start > 0 and line[start - 1].isdigit():
        start -= 1
    if not 1 <= dot - start <= 2:
        return False
    before = line[:start].rstrip()
    # "I am 35. You?" has a word before the number, so it still ends a sentence.
    return not before or before[-1] in TERMINATORS or before[-1] in "：:"


def _dot_ends_sentence(line: str, dot: int, after: int) -> bool:
    """Whether a single ASCII/full-width dot at ``dot`` ends a sentence; ``after`` is the next index."""
    if after >= len(line):
        return True
    nxt = line[after]
    if _is_list_number(line, dot):
        return False  # "以下几点：1.保持冷静。2.倾听", "1. Try this"
    if _is_cjk(nxt):
        # Chinese typed with an ASCII period; a decimal such as 3.5 has a digit after, not CJK.
        return True
    if not nxt.isspace():
        return False  # 3.5, example.com, e.g, U.S
    word = _word_before(line, dot)
    lowered = word.lower()
    if lowered in TITLES or lowered in NEVER_FINAL:
        return False
    if len(word) == 1 and word.isalpha() and word.isupper() and word not in "IA":
        return False  # an initial, as in "J. K. Rowling"
    if lowered in MAYBE_FINAL:
        rest = line[after:].lstrip()
        return bool(rest) and (rest[0].isupper() or _is_cjk(rest[0]))
    return True


def _split_line(line: str) -> list[str]:
    openers, closers = _matched_pairs(line)
    pieces: list[str] = []
    start = 0
    depth = 0
    index = 0
    while index < len(line):
        char = line[index]
        if index in openers:
            depth += 1
        elif index in closers:
            depth = max(depth - 1, 0)
        if char not in TERMINATORS:
            index += 1
            continue
        run_end = index
        while run_end < len(line) and line[run_end] in TERMINATORS:
            run_end += 1
        run = line[index:run_end]
        # Closing quotes and brackets right after the punctuation belong to the sentence they close.
        after = run_end
        while after < len(line) and line[after] in CLOSERS and after not in openers:
            if after in closers:
                depth = max(depth - 1, 0)
            elif line[after] == "'" and after + 1 < len(line) and not line[after + 1].isspace():
                break  # an apostrophe-like quote glued to the next word is not a closer
            after += 1
        if depth == 0 and _run_ends_sentence(line, index, run, after):
            pieces.append(line[start:after])
            start = after
        index = after
    pieces.append(line[start:])
    return pieces


def _run_ends_sentence(line: str, index: int, run: str, after: int) -> bool:
    if any(char in STRONG_TERMINATORS for char in run):
        return True
    if any(char in ELLIPSIS_CHARS for char in run) or len(run) > 1:
        return False  # an ellipsis on its own is a pause
    return _dot_ends_sentence(line, index, after)


def split_utterances(text: str) -> list[str]:
    """Split one counselor volley into utterances (see the module docstring for the rules).

    Returns stripped, non-empty pieces in order; text with any non-space character gives at least
    one piece, and whitespace-only text gives an empty list.
    """
    pieces: list[str] = []
    for line in text.splitlines():
        pieces += [piece.strip() for piece in _split_line(line) if piece.strip()]
    if not pieces:
        return []
    # Punctuation-only pieces ("……" on its own line) join the piece before (or after, if first).
    merged: list[str] = []
    for piece in pieces:
        if merged and not _has_content(piece):
            merged[-1] = _join(merged[-1], piece)
        elif merged and not _has_content(merged[-1]):
            merged[-1] = _join(merged[-1], piece)
        else:
            merged.append(piece)
    return merged


def _join(left: str, right: str) -> str:
    # Chinese text has no spaces between sentences; English does. Trailing punctuation (an ellipsis
    # merged back into its sentence) attaches without a space either way.
    if not left or not right or _is_cjk(left[-1]) or _is_cjk(right[0]) or right[0] in TERMINATORS | CLOSERS:
        return left + right
    return f"{left} {right}"


def _check_parts(parts: Sequence[str]) -> None:
    if isinstance(parts, str):
        raise ValueError("parts must be a list of utterances, not a single string")
    for position, part in enumerate(parts):
        if not isinstance(part, str) or not part.strip():
            raise ValueError(f"utterance {position + 1} is empty or not text: {part!r}")


def _check_index(parts: Sequence[str], i: object, *, last_allowed: int) -> int:
    if isinstance(i, bool) or not isinstance(i, int):
        raise ValueError(f"utterance index must be a whole number, got {i!r}")
    if not 0 <= i <= last_allowed:
        raise ValueError(f"utterance index {i} is out of range 0..{last_allowed} for {len(parts)} utterances")
    return i


def merge_utterances(parts: Sequence[str], i: int) -> list[str]:
    """Return a new list with utterance ``i`` and ``i + 1`` joined into one (0-based)."""
    _check_parts(parts)
    if len(parts) < 2:
        raise ValueError(f"cannot merge: need at least 2 utterances, got {len(parts)}")
    _check_index(parts, i, last_allowed=len(parts) - 2)
    return [*parts[:i], _join(parts[i].strip(), parts[i + 1].strip()), *parts[i + 2:]]


def split_utterance(parts: Sequence[str], i: int, at_char: int) -> list[str]:
    """Return a new list with utterance ``i`` cut in two before character offset ``at_char``.

    Both halves are stripped and must keep some text, so a cut inside leading or trailing spaces or
    at either end is refused.
    """
    _check_parts(parts)
    if not parts:
        raise ValueError("cannot split: there are no utterances")
    _check_index(parts, i, last_allowed=len(parts) - 1)
    part = parts[i]
    if isinstance(at_char, bool) or not isinstance(at_char, int):
        raise ValueError(f"split position must be a whole number, got {at_char!r}")
    left, right = part[:at_char].strip(), part[at_char:].strip()
    if not 0 < at_char < len(part) or not left or not right:
        raise ValueError(
            f"cannot split utterance {i} at character {at_char}: both parts must contain text "
            f"(utterance has {len(part)} characters)"
        )
    return [*parts[:i], left, right, *parts[i + 1:]]

"""Prompting an LLM to code one volley with the MITI codebook, and reading its answer (stand-in core).

Pure: no Django. ``build_messages`` gives a chat for one volley (its utterances numbered);
``parse_answer`` reads one line per utterance, ``<number>: <CODE>[, <CODE>]`` (or a JSON list of code
lists), and raises :class:`InvalidAnswer` with the reason when the answer cannot be used as a whole.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path


class InvalidAnswer(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def codebook_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def build_messages(
    *,
    codebook: str,
    change_goal: str,
    context: Sequence[tuple[str, str]],
    volley: Sequence[str],
    codes: Sequence[str],
) -> list[dict[str, str]]:
    system = (
        f"{codebook.strip()}\n\nTarget behaviour (change goal): {change_goal}\n"
        f"Allowed codes: {', '.join(codes)}.\n"
        "Answer with one line per utterance: '<number>: <CODE>' and nothing else."
    )
    lines = [f"{speaker}: {text}" for speaker, text in context]
    numbered = [f"{i}. {text}" for i, text in enumerate(volley, start=1)]
    user = "Context:\n" + "\n".join(lines) + "\n\nCounselor utterances to code:\n" + "\n".join(numbered)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


_LINE = re.compile(r"^\s*(\d+)\s*[:.)]\s*(.+?)\s*$")


def parse_answer(text: str, *, utterances: int, codes: Sequence[str]) -> list[list[str]]:
    allowed = set(codes)
    stripped = text.strip()
    if not stripped:
        raise InvalidAnswer("empty answer")
    answer: dict[int, list[str]] = {}
    if stripped.startswith("["):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as error:
            raise InvalidAnswer(f"not valid JSON: {error}") from None
        if not isinstance(data, list):
            raise InvalidAnswer("expected a JSON list")
        for i, entry in enumerate(data, start=1):
            entry = [entry] if isinstance(entry, str) else entry
            if not isinstance(entry, list) or not all(isinstance(c, str) for c in entry):
                raise InvalidAnswer(f"utterance {i}: expected a code or a list of codes")
            answer[i] = [c.strip().upper() for c in entry]
    else:
        for line in stripped.splitlines():
            if not line.strip():
                continue
            match = _LINE.match(line)
            if match is None:
                raise InvalidAnswer(f"unreadable line: {line.strip()[:80]!r}")
            number = int(match.group(1))
            if number in answer:
                raise InvalidAnswer(f"utterance {number} answered twice")
            answer[number] = [c.strip().upper() for c in re.split(r"[,\s]+", match.group(2)) if c.strip()]
    expected = set(range(1, utterances + 1))
    if set(answer) != expected:
        missing = sorted(expected - set(answer))
        extra = sorted(set(answer) - expected)
        raise InvalidAnswer(f"expected utterances 1–{utterances}; missing {missing}, extra {extra}")
    for number, entry in answer.items():
        unknown = [c for c in entry if c not in allowed]
        if unknown:
            raise InvalidAnswer(f"utterance {number}: unknown code {unknown[0]!r}")
        if not entry:
            raise InvalidAnswer(f"utterance {number}: no code")
    return [answer[i] for i in range(1, utterances + 1)]

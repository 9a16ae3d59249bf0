"""The LLM coder's prompt and the check of its answer. Pure: no Django, no backend.

A language model codes one volley at a time: it reads the codebook (the MITI sections of
docs/miti.md), the study's change goal, the turns before the volley and the volley's utterances, and
answers with a JSON list that holds one list of code keys per utterance, e.g. ``[["Q"], ["SR", "AF"]]``
or ``[["Q"], []]`` (an empty list: no code). :func:`parse_answer` accepts that list inside a
```` ```json ```` fence or surrounded by prose — models add both — and refuses anything else with an
:class:`InvalidAnswer` whose ``reason`` says what was wrong, so the caller can log it, retry, or show it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

# The sections of docs/miti.md a coder needs to code utterances (definitions, units, defaults); the
# AnnoMI import, the tally and the summary scores are about counting, not coding.
CODEBOOK_SECTIONS: tuple[str, ...] = ("Units", "The ten behaviour codes", "When in doubt")

SYSTEM_PROMPT = (
    "You are an expert coder of motivational interviewing sessions using the MITI 4.2.1 instrument. "
    "You code only the counselor's utterances; client turns are context. Follow the codebook below "
    "exactly, including its defaults for hard choices.\n\n{codebook}"
)

USER_PROMPT = (
    "The client's change goal: {change_goal}\n\n"
    "Conversation so far:\n{context}\n\n"
    "The counselor's volley to code, one utterance per line:\n{volley}\n\n"
    "Allowed code keys: {codes}.\n"
    "Answer with a JSON list holding exactly {count} lists, one per utterance in order; each inner list "
    'holds the code keys of that utterance, or is empty when it gets no code. Example for two utterances: '
    '[["Q"], ["SR", "AF"]]. Answer with the JSON only.'
)


class InvalidAnswer(ValueError):
    """The model's answer cannot be used; ``reason`` is one sentence saying why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def build_messages(
    *,
    codebook: str,
    change_goal: str,
    context: Sequence[tuple[str, str]],
    volley: Sequence[str],
    codes: Sequence[str],
) -> list[dict[str, str]]:
    """System + user chat messages asking for one list of code keys per utterance of ``volley``.

    ``context`` holds the preceding ``(speaker, text)`` turns, oldest first.
    """
    if not volley:
        raise ValueError("a volley to code needs at least one utterance")
    if not codes:
        raise ValueError("the model needs at least one code key to choose from")
    context_text = "\n".join(f"{speaker}: {text}" for speaker, text in context) or "(none: the volley opens the session)"
    volley_text = "\n".join(f"{number}. {text}" for number, text in enumerate(volley, start=1))
    user = USER_PROMPT.format(
        change_goal=change_goal.strip() or "(not stated)",
        context=context_text,
        volley=volley_text,
        codes=", ".join(codes),
        count=len(volley),
    )
    return [
        {"role": "system", "content": SYSTEM_PROMPT.format(codebook=codebook.strip())},
        {"role": "user", "content": user},
    ]


_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


def _json_candidates(text: str) -> list[str]:
    """The answer itself, then fenced blocks, then the span from the first ``[`` to the last ``]``."""
    candidates = [text.strip()]
    candidates += [match.strip() for match in _FENCE.findall(text)]
    start, end = text.find("["), text.rfind("]")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    return candidates


def parse_answer(text: str, *, utterances: int, codes: Sequence[str]) -> list[list[str]]:
    """The code keys per utterance from the model's answer; InvalidAnswer when it cannot be used."""
    value: object = None
    for candidate in _json_candidates(text):
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        break
    else:
        raise InvalidAnswer("The answer holds no JSON list (it is not valid JSON).")
    if not isinstance(value, list) or not all(
        isinstance(item, list) and all(isinstance(code, str) for code in item) for item in value
    ):
        raise InvalidAnswer(
            'The answer is not a list of lists of code keys (expected e.g. [["Q"], ["SR", "AF"]]).'
        )
    if len(value) != utterances:
        raise InvalidAnswer(f"The answer codes {len(value)} utterances; expected {utterances}.")
    allowed = set(codes)
    unknown = sorted({code for item in value for code in item if code not in allowed})
    if unknown:
        raise InvalidAnswer(
            f"The answer uses unknown code keys: {', '.join(unknown)} (allowed: {', '.join(codes)})."
        )
    # A key repeated within one utterance says nothing more: keep the first of each, in order.
    return [list(dict.fromkeys(item)) for item in value]


def codebook_text(path: Path) -> str:
    """The codebook sections (:data:`CODEBOOK_SECTIONS`) of docs/miti.md, headings included."""
    text = path.read_text(encoding="utf-8")
    sections: dict[str, str] = {}
    for block in re.split(r"(?m)^(?=## )", text):
        if block.startswith("## "):
            heading = block.splitlines()[0][3:].strip()
            sections[heading] = block.strip()
    missing = [name for name in CODEBOOK_SECTIONS if name not in sections]
    if missing:
        raise ValueError(f"{path} lacks the codebook section(s): {', '.join(missing)}")
    return "\n\n".join(sections[name] for name in CODEBOOK_SECTIONS)

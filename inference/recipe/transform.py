"""MI-style rewriting of a counselling dialogue: the default prompt, the request, the output check.

Pure: no Django, no torch. A source dialogue is reduced to its rounds (docs/metrics.md, "Rounds"): client turn
q_i and counselor reply r_i, i = 1..n. The model is asked to rewrite every r_i in an MI-consistent
way and to return the whole dialogue as a JSON list of ``{"role", "content"}`` objects. An output
is accepted only when it is parseable, starts with the client, alternates client/counselor, has
the same number of rounds, keeps every client turn (whitespace aside) and has no empty counselor
turn. Every rejection carries a short ``code`` (for filtering and tests) and a sentence that says
what is wrong and where.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from inference.prompts import build_rounds

Message = dict[str, str]
Turn = tuple[str, str]

DEFAULT_PROMPT_NAME = "mi-rewrite"
DEFAULT_PROMPT_VERSION = 1
#: Placeholders the template may use; ``{dialogue}`` is required.
PLACEHOLDERS = ("{dialogue}", "{rounds}", "{turns}")

# Version 1 of the shipped prompt. Changing this text means shipping a new version (the platform
# stores prompts by (name, version) and every derived dialogue records the version that made it).
DEFAULT_PROMPT_TEXT = """\
You are an expert in motivational interviewing (MI) and in psychological counselling.
Below is a counselling dialogue between a client and a counselor, as a JSON list of turns.
Rewrite it into an MI-style dialogue by rewriting ONLY the counselor turns:

- Use MI-consistent behaviours: simple and complex reflections of what the client said, open
  questions, affirmations of the client's strengths and efforts, emphasising the client's autonomy
  and choice, and seeking collaboration. Prefer more reflections than questions.
- Avoid MI-inconsistent behaviours: no confronting, arguing, lecturing, warning or giving advice
  without the client's permission.
- Keep each counselor turn natural and short, in the same language as the dialogue, and keep it
  relevant to the client turn it answers and to the history before it.

Strict rules for the output:
1. Copy every client turn exactly, word for word; do not add, remove, merge or reorder client turns.
2. Keep the number of rounds: the dialogue has {rounds} rounds ({turns} turns), each a client turn
   followed by one counselor turn, starting with the client.
3. No counselor turn may be empty.
4. Answer with the JSON list only, in exactly this format and nothing else:
   [{"role": "client", "content": "..."}, {"role": "counselor", "content": "..."}, ...]

Dialogue:
{dialogue}
"""

# Role names accepted in the output, mapped to ours. Models often answer with chat roles or with
# the Chinese labels of CPsyCounD even when asked for client/counselor.
_ROLE_NAMES = {
    "client": "client",
    "user": "client",
    "human": "client",
    "patient": "client",
    "来访者": "client",
    "求助者": "client",
    "counselor": "counselor",
    "counsellor": "counselor",
    "assistant": "counselor",
    "therapist": "counselor",
    "gpt": "counselor",
    "心理咨询师": "counselor",
    "咨询师": "counselor",
    "支持者": "counselor",
}
_PREFIX_LINE = re.compile(
    r"^\s*(?:\*\*)?(来访者|求助者|心理咨询师|咨询师|client|counselor|counsellor|therapist)(?:\*\*)?\s*[:：]\s*(.*)$",
    re.IGNORECASE,
)
_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n(.*?)\n?```\s*$", re.DOTALL)


@dataclass(frozen=True)
class TransformOutcome:
    """The check of one model output.

    ``ok``: accepted; ``turns``: the rewritten dialogue as ``(speaker, text)`` pairs (speaker
    client | counselor) when accepted; ``code``: ``"ok"`` or one of ``REJECTION_CODES``;
    ``reason``: a sentence for the coordinator (empty when accepted).
    """

    ok: bool
    turns: list[Turn] = field(default_factory=list)
    code: str = "ok"
    reason: str = ""


REJECTION_CODES = (
    "empty",
    "unparseable",
    "bad_turn",
    "wrong_start",
    "not_alternating",
    "rounds_mismatch",
    "empty_counselor",
    "client_changed",
)


def check_template(text: str) -> list[str]:
    """Problems with a rewrite prompt template, as sentences (empty list: usable)."""
    problems = []
    if "{dialogue}" not in text:
        problems.append("the prompt must contain the placeholder {dialogue} where the source dialogue goes")
    if not text.strip():
        problems.append("the prompt is empty")
    return problems


def source_rounds(turns: Sequence[Turn]) -> list[Turn]:
    """The dialogue reduced to its rounds as alternating turns ``q_1, r_1, ..., q_n, r_n``.

    Same rules as generation (:func:`inference.prompts.build_rounds`): same-speaker turns merged,
    system turns, an opening counselor turn and a trailing client turn left out. This is what the
    model is shown and what its output is checked against.
    """
    out: list[Turn] = []
    for round_ in build_rounds(turns):
        out.append(("client", round_.client))
        out.append(("counselor", round_.counselor))
    return out


def render_dialogue_json(turns: Sequence[Turn]) -> str:
    """The dialogue as the JSON list the prompt shows (one turn per line, readable, UTF-8)."""
    lines = [json.dumps({"role": speaker, "content": text}, ensure_ascii=False) for speaker, text in turns]
    return "[\n" + ",\n".join(lines) + "\n]"


def build_transform_messages(
    template: str, turns: Sequence[Turn], system_prompt: str | None = None
) -> list[Message]:
    """Chat messages asking for the MI-style rewrite of ``turns`` (already reduced to rounds).

    Raises ValueError when the template lacks ``{dialogue}`` or the dialogue has no round.
    Placeholders are replaced literally (no ``str.format``), so braces in the template's JSON
    example need no escaping.
    """
    problems = check_template(template)
    if problems:
        raise ValueError("; ".join(problems))
    if not turns:
        raise ValueError("the dialogue has no round (client turn answered by a counselor turn) to rewrite")
    text = (
        template.replace("{rounds}", str(len(turns) // 2))
        .replace("{turns}", str(len(turns)))
        .replace("{dialogue}", render_dialogue_json(turns))
    )
    messages: list[Message] = []
    if system_prompt and system_prompt.strip():
        messages.append({"role": "system", "content": system_prompt.strip()})
    messages.append({"role": "user", "content": text})
    return messages


def _normalized(text: str) -> str:
    # Whitespace-insensitive, NFC: a model re-wrapping a line has not changed what the client said.
    return " ".join(unicodedata.normalize("NFC", text).split())


def _excerpt(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _strip_fence(raw: str) -> str:
    match = _FENCE.match(raw.strip())
    return match.group(1) if match else raw.strip()


def _parse_json(raw: str) -> list[Any] | None:
    text = _strip_fence(raw)
    candidates = [text]
    start, end = text.find("["), text.rfind("]")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except (json.JSONDecodeError, ValueError):
            continue
        if isinstance(value, dict):
            for key in ("dialogue", "turns", "messages", "conversations"):
                found = value.get(key)
                if isinstance(found, list):
                    return found
            continue
        if isinstance(value, list):
            return value
    return None


def _parse_prefixed(raw: str) -> list[dict[str, str]] | None:
    """Lines starting with ``来访者：`` / ``心理咨询师：`` / ``Client:`` / ``Counselor:``; other lines
    continue the previous turn (as in CPsyCounD files)."""
    turns: list[dict[str, str]] = []
    for line in _strip_fence(raw).splitlines():
        match = _PREFIX_LINE.match(line)
        if match:
            turns.append({"role": match.group(1).lower(), "content": match.group(2)})
        elif turns:
            turns[-1]["content"] += "\n" + line
        elif line.strip():
            return None  # text before the first labelled turn: not this format
    return turns or None


def parse_turns(raw: str) -> tuple[list[Turn] | None, str, str]:
    """Parse a model output into ``(speaker, text)`` turns: ``(turns, "ok", "")`` or
    ``(None, code, reason)``. Accepts the JSON list asked for (also inside a code fence or an
    object with a ``dialogue``/``turns``/``messages`` list) and, as a fallback, labelled lines."""
    if not raw or not raw.strip():
        return None, "empty", "the model returned an empty output"
    items = _parse_json(raw)
    if items is None:
        items = _parse_prefixed(raw)
    if items is None:
        return (
            None,
            "unparseable",
            (
                'the output is not parseable: expected a JSON list of {"role", "content"} objects '
                f"(or lines starting with 来访者：/心理咨询师：), got: {_excerpt(raw, 60)!r}"
            ),
        )
    turns: list[Turn] = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            return None, "bad_turn", f"turn {number} is not an object with role and content"
        role, content = item.get("role", item.get("from")), item.get("content", item.get("value"))
        if not isinstance(role, str) or role.strip().lower() not in _ROLE_NAMES:
            return None, "bad_turn", f"turn {number}: role must be client or counselor, got {role!r}"
        if not isinstance(content, str):
            return None, "bad_turn", f"turn {number}: content must be a string, got {type(content).__name__}"
        turns.append((_ROLE_NAMES[role.strip().lower()], content.strip()))
    if not turns:
        return None, "empty", "the output is an empty list of turns"
    return turns, "ok", ""


def validate_transform_output(raw: str, source: Sequence[Turn]) -> TransformOutcome:
    """Check a rewrite against its source (``source`` as returned by :func:`source_rounds`).

    The checks, in order: parseable; starts with the client; roles alternate; same number of
    rounds; no empty counselor turn; every client turn equal to the source's (whitespace aside).
    The first failing check gives the code and reason.
    """
    turns, code, reason = parse_turns(raw)
    if turns is None:
        return TransformOutcome(False, code=code, reason=reason)
    if turns[0][0] != "client":
        return TransformOutcome(
            False, code="wrong_start", reason="the dialogue must start with a client turn"
        )
    for number in range(1, len(turns)):
        if turns[number][0] == turns[number - 1][0]:
            return TransformOutcome(
                False,
                code="not_alternating",
                reason=f"roles do not alternate: turns {number} and {number + 1} are both {turns[number][0]}",
            )
    expected = len(source) // 2
    got = len(turns) // 2
    if len(turns) != len(source):
        trailing = " and a trailing client turn" if len(turns) % 2 else ""
        return TransformOutcome(
            False,
            code="rounds_mismatch",
            reason=f"expected {expected} rounds ({len(source)} turns), got {got} rounds{trailing}",
        )
    for number in range(expected):
        counselor = turns[2 * number + 1][1]
        if not counselor.strip():
            return TransformOutcome(
                False, code="empty_counselor", reason=f"the counselor turn of round {number + 1} is empty"
            )
    for number in range(expected):
        original, rewritten = source[2 * number][1], turns[2 * number][1]
        if _normalized(original) != _normalized(rewritten):
            return TransformOutcome(
                False,
                code="client_changed",
                reason=(
                    f"the client turn of round {number + 1} differs from the source: "
                    f"source {_excerpt(original)!r}, output {_excerpt(rewritten)!r}"
                ),
            )
    # Client turns are stored exactly as in the source, not as the model echoed them.
    accepted = [
        ("client", source[i][1]) if speaker == "client" else (speaker, text)
        for i, (speaker, text) in enumerate(turns)
    ]
    return TransformOutcome(True, turns=accepted)

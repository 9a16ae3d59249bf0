"""Round-based prompt building (docs/metrics.md, "Rounds"). Pure: no Django, no torch.

A dialogue is a sequence of ``(speaker, text)`` turns with speaker in ``client``, ``counselor`` or
``system``. It yields n *rounds*: round i pairs the client turn q_i with the gold counselor reply
r_i. For round i the model sees the optional system prompt, the gold history
q_1, r_1, ..., q_{i-1}, r_{i-1} and then q_i, and writes r̂_i, which is scored against r_i.

Rules (each one documented where it is applied):

* consecutive turns of the same speaker are merged, joined by a blank line;
* ``system`` turns never take part in rounds; the *leading* system text (everything said by
  ``system`` before the first client/counselor turn, e.g. PsyDTCorpus' persona prompt) is returned
  by :func:`leading_system_text` for callers that want it as dialogue context — by default it is
  ignored, because the run's own system prompt is the controlled variable of a study;
* a counselor turn before the first client turn (an opening greeting) is not a round and is not
  put into any history: most chat templates require the conversation to start with ``user``;
* a trailing client turn with no counselor reply is not a round.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

SPEAKERS = ("client", "counselor", "system")

Message = dict[str, str]


@dataclass(frozen=True)
class Round:
    """One round: the client's (merged) turn and the gold counselor reply that answered it.

    ``index`` is 0-based within the dialogue's rounds. ``client_turns`` / ``counselor_turns`` are
    the 0-based positions in the input sequence of the turns merged into ``client`` and
    ``counselor``, so a caller can link a round back to its stored turns.
    """

    index: int
    client: str
    counselor: str
    client_turns: tuple[int, ...]
    counselor_turns: tuple[int, ...]


def _check_turn(position: int, turn: tuple[str, str]) -> tuple[str, str]:
    try:
        speaker, text = turn
    except (TypeError, ValueError):
        raise ValueError(f"turn {position}: expected a (speaker, text) pair, got {turn!r}") from None
    if speaker not in SPEAKERS:
        raise ValueError(f"turn {position}: field 'speaker' must be one of {SPEAKERS}, got {speaker!r}")
    if not isinstance(text, str):
        raise ValueError(f"turn {position}: field 'text' must be a string, got {type(text).__name__}")
    return speaker, text


def _merged_turns(turns: Sequence[tuple[str, str]]) -> list[tuple[str, str, tuple[int, ...]]]:
    """Client/counselor turns with consecutive same-speaker turns merged (blank line between).

    System turns are skipped *before* merging, so ``client, system, client`` merges into one
    client turn. Turns whose text is blank are skipped as well: an empty turn carries nothing a
    model could answer or be scored against.
    """
    merged: list[tuple[str, list[str], list[int]]] = []
    for position, turn in enumerate(turns):
        speaker, text = _check_turn(position, turn)
        text = text.strip()
        if speaker == "system" or not text:
            continue
        if merged and merged[-1][0] == speaker:
            merged[-1][1].append(text)
            merged[-1][2].append(position)
        else:
            merged.append((speaker, [text], [position]))
    return [(speaker, "\n\n".join(texts), tuple(positions)) for speaker, texts, positions in merged]


def leading_system_text(turns: Sequence[tuple[str, str]]) -> str | None:
    """The system text said before the first client/counselor turn, merged; None when there is none.

    Not used by :func:`build_rounds`; pass it to :func:`build_messages` as ``context`` if a study
    wants the dialogue's own system prompt (e.g. a persona) in front of every round.
    """
    texts: list[str] = []
    for position, turn in enumerate(turns):
        speaker, text = _check_turn(position, turn)
        if speaker != "system":
            break
        if text.strip():
            texts.append(text.strip())
    return "\n\n".join(texts) if texts else None


def build_rounds(turns: Sequence[tuple[str, str]]) -> list[Round]:
    """Split a dialogue into rounds (client turn q_i + gold counselor reply r_i).

    ``turns`` is a sequence of ``(speaker, text)`` with speaker in client | counselor | system.
    Raises ValueError naming the turn position and field on a bad speaker or non-string text.
    See the module docstring for how merging, system turns, an opening counselor turn and a
    trailing client turn are handled.
    """
    merged = _merged_turns(turns)
    # An opening counselor turn has no client turn to answer: not a round (module docstring).
    if merged and merged[0][0] == "counselor":
        merged = merged[1:]
    rounds: list[Round] = []
    # After merging, speakers strictly alternate client, counselor, client, ...; a trailing
    # client turn (odd length) has no pair and is dropped by zip.
    for client, counselor in zip(merged[0::2], merged[1::2], strict=False):
        rounds.append(
            Round(
                index=len(rounds),
                client=client[1],
                counselor=counselor[1],
                client_turns=client[2],
                counselor_turns=counselor[2],
            )
        )
    return rounds


def build_messages(
    rounds: Sequence[Round], i: int, system_prompt: str | None = None, context: str | None = None
) -> list[Message]:
    """Chat messages for round ``i`` (0-based): system, gold history (user/assistant), then q_i.

    The system message is ``system_prompt`` followed by ``context`` (blank line between) when
    either is given and non-blank; otherwise there is no system message. The counselor reply of
    round ``i`` itself is never included.
    """
    if not 0 <= i < len(rounds):
        raise IndexError(f"round index {i} out of range for a dialogue with {len(rounds)} rounds")
    messages: list[Message] = []
    system_parts = [part.strip() for part in (system_prompt, context) if part and part.strip()]
    if system_parts:
        messages.append({"role": "system", "content": "\n\n".join(system_parts)})
    for past in rounds[:i]:
        messages.append({"role": "user", "content": past.client})
        messages.append({"role": "assistant", "content": past.counselor})
    messages.append({"role": "user", "content": rounds[i].client})
    return messages


class FittedPrompt(NamedTuple):
    """Result of :func:`fit_to_context`.

    ``messages``: the prompt to send; ``dropped_pairs``: how many of the oldest (user, assistant)
    history pairs were removed; ``fits``: whether the prompt is within the budget. When ``fits``
    is False every history pair has been dropped and the system prompt plus the current client
    turn alone are still too long — the caller decides (record an error, or truncate the turn
    knowingly); this module never cuts the current client turn.
    """

    messages: list[Message]
    dropped_pairs: int
    fits: bool


def _split_prompt(messages: Sequence[Message]) -> tuple[list[Message], list[Message], Message]:
    if not messages:
        raise ValueError("messages is empty: a prompt needs at least the current user turn")
    head = [dict(m) for m in messages[:1] if m.get("role") == "system"]
    body = [dict(m) for m in messages[len(head) :]]
    last = body.pop()
    if last.get("role") != "user":
        raise ValueError(f"message {len(messages) - 1}: field 'role' must be 'user' (the current turn)")
    for offset, message in enumerate(body):
        expected = "user" if offset % 2 == 0 else "assistant"
        if message.get("role") != expected:
            position = len(head) + offset
            raise ValueError(
                f"message {position}: field 'role' must be {expected!r} (history alternates "
                f"user/assistant), got {message.get('role')!r}"
            )
    if len(body) % 2:
        raise ValueError(
            "history ends on a user message: expected (user, assistant) pairs before the last turn"
        )
    return head, body, last


def fit_to_context(
    messages: Sequence[Message],
    count_tokens: Callable[[list[Message]], int],
    max_prompt_tokens: int,
) -> FittedPrompt:
    """Drop the oldest history pairs until ``count_tokens(messages) <= max_prompt_tokens``.

    ``messages`` must be ``[system?] (user, assistant)* user`` as :func:`build_messages` makes
    them. The system prompt and the current (last) user turn are always kept. ``count_tokens``
    should count the prompt as the model will see it (chat template applied, generation prompt
    added). Token count is assumed not to grow when messages are removed, so the smallest number
    of pairs to drop is found by binary search: O(log n) calls to ``count_tokens``.
    """
    head, body, last = _split_prompt(messages)
    n_pairs = len(body) // 2

    def candidate(dropped: int) -> list[Message]:
        return head + body[2 * dropped :] + [last]

    if count_tokens(candidate(0)) <= max_prompt_tokens:
        return FittedPrompt(candidate(0), 0, True)
    if count_tokens(candidate(n_pairs)) > max_prompt_tokens:
        return FittedPrompt(candidate(n_pairs), n_pairs, False)
    # Invariant: dropping `low` pairs does not fit, dropping `high` pairs fits.
    low, high = 0, n_pairs
    while high - low > 1:
        middle = (low + high) // 2
        if count_tokens(candidate(middle)) <= max_prompt_tokens:
            high = middle
        else:
            low = middle
    return FittedPrompt(candidate(high), high, True)

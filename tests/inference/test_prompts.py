"""Round-based prompt building (docs/metrics.md, "Rounds") with literal dialogues."""

from __future__ import annotations

import pytest

from inference.prompts import (
    FittedPrompt,
    Round,
    build_messages,
    build_rounds,
    fit_to_context,
    leading_system_text,
)

DIALOGUE = [
    ("client", "最近压力很大。"),
    ("counselor", "听起来你很累。"),
    ("client", "是的。"),
    ("client", "晚上也睡不好。"),
    ("counselor", "睡眠也受到了影响。"),
    ("counselor", "你希望有什么改变？"),
    ("client", "想早点下班。"),
    ("counselor", "你想多一些自己的时间。"),
    ("client", "谢谢你。"),  # trailing client turn: not a round
]


def test_rounds_merge_same_speaker_and_drop_trailing_client_turn():
    rounds = build_rounds(DIALOGUE)
    assert rounds == [
        Round(0, "最近压力很大。", "听起来你很累。", (0,), (1,)),
        Round(1, "是的。\n\n晚上也睡不好。", "睡眠也受到了影响。\n\n你希望有什么改变？", (2, 3), (4, 5)),
        Round(2, "想早点下班。", "你想多一些自己的时间。", (6,), (7,)),
    ]


def test_opening_counselor_turn_and_system_turns_are_not_rounds():
    turns = [
        ("system", "You are a counselor."),
        ("system", "Be brief."),
        ("counselor", "Hello, what brings you here?"),
        ("client", "I drink too much."),
        ("system", "(note)"),  # skipped before merging: the client turns around it merge
        ("client", "Every night."),
        ("counselor", "Drinking has become a nightly habit."),
    ]
    rounds = build_rounds(turns)
    assert [(r.client, r.counselor) for r in rounds] == [
        ("I drink too much.\n\nEvery night.", "Drinking has become a nightly habit.")
    ]
    assert rounds[0].client_turns == (3, 5)
    assert leading_system_text(turns) == "You are a counselor.\n\nBe brief."
    assert leading_system_text(DIALOGUE) is None


def test_blank_turns_are_skipped_and_text_is_stripped():
    rounds = build_rounds([("client", "  hi  "), ("counselor", "   "), ("counselor", " hello ")])
    assert [(r.client, r.counselor, r.counselor_turns) for r in rounds] == [("hi", "hello", (2,))]


def test_bad_speaker_names_the_turn_and_field():
    with pytest.raises(ValueError, match=r"turn 1: field 'speaker' must be one of .* got 'therapist'"):
        build_rounds([("client", "a"), ("therapist", "b")])
    with pytest.raises(ValueError, match=r"turn 0: field 'text' must be a string"):
        build_rounds([("client", None)])


def test_empty_and_client_only_dialogues_have_no_rounds():
    assert build_rounds([]) == []
    assert build_rounds([("client", "anyone?")]) == []


def test_build_messages_uses_gold_history_and_puts_current_client_turn_last():
    rounds = build_rounds(DIALOGUE)
    assert build_messages(rounds, 0) == [{"role": "user", "content": "最近压力很大。"}]
    assert build_messages(rounds, 2, system_prompt="你是咨询师。") == [
        {"role": "system", "content": "你是咨询师。"},
        {"role": "user", "content": "最近压力很大。"},
        {"role": "assistant", "content": "听起来你很累。"},
        {"role": "user", "content": "是的。\n\n晚上也睡不好。"},
        {"role": "assistant", "content": "睡眠也受到了影响。\n\n你希望有什么改变？"},
        {"role": "user", "content": "想早点下班。"},
    ]


def test_build_messages_system_prompt_and_context():
    rounds = build_rounds(DIALOGUE)
    assert build_messages(rounds, 0, system_prompt="A", context="B")[0] == {
        "role": "system",
        "content": "A\n\nB",
    }
    assert build_messages(rounds, 0, context="B")[0] == {"role": "system", "content": "B"}
    assert build_messages(rounds, 0, system_prompt="  ")[0]["role"] == "user"
    with pytest.raises(IndexError, match="round index 3 out of range for a dialogue with 3 rounds"):
        build_messages(rounds, 3)


def _char_count(messages):
    # A stand-in tokenizer: one token per character plus 2 per message.
    return sum(len(m["content"]) + 2 for m in messages)


def test_fit_keeps_everything_when_it_fits():
    rounds = build_rounds(DIALOGUE)
    messages = build_messages(rounds, 2, system_prompt="S")
    fitted = fit_to_context(messages, _char_count, max_prompt_tokens=1000)
    assert fitted == FittedPrompt(messages, 0, True)


def test_fit_drops_oldest_pairs_first_and_counts_them():
    rounds = build_rounds(DIALOGUE)
    messages = build_messages(rounds, 2, system_prompt="S")
    full = _char_count(messages)  # 3 + (9 + 9) + (14 + 22) + 8
    assert full == 65
    # Dropping the first pair (9 + 9 = 18 tokens) leaves 47.
    fitted = fit_to_context(messages, _char_count, max_prompt_tokens=50)
    assert fitted.dropped_pairs == 1
    assert fitted.fits is True
    assert fitted.messages == [messages[0], *messages[3:]]
    # 46 needs both pairs gone: system + current turn = 3 + 8 = 11.
    fitted = fit_to_context(messages, _char_count, max_prompt_tokens=46)
    assert (fitted.dropped_pairs, fitted.fits) == (2, True)
    assert fitted.messages == [messages[0], messages[-1]]


def test_fit_reports_when_even_the_current_turn_does_not_fit():
    rounds = build_rounds(DIALOGUE)
    messages = build_messages(rounds, 2, system_prompt="S")
    fitted = fit_to_context(messages, _char_count, max_prompt_tokens=10)
    # All history dropped, system prompt and the current client turn kept uncut.
    assert fitted == FittedPrompt([messages[0], messages[-1]], 2, False)


def test_fit_without_system_prompt_and_with_many_pairs_uses_few_counts():
    history = []
    for _ in range(100):
        history += [{"role": "user", "content": "u" * 10}, {"role": "assistant", "content": "a" * 10}]
    messages = [*history, {"role": "user", "content": "now"}]
    calls = []

    def counting(candidate):
        calls.append(len(candidate))
        return _char_count(candidate)

    # Each pair is 24 tokens, the current turn 5: 10 pairs fit in 245.
    fitted = fit_to_context(messages, counting, max_prompt_tokens=245)
    assert fitted.dropped_pairs == 90
    assert fitted.messages[0] == {"role": "user", "content": "u" * 10}
    assert len(fitted.messages) == 21
    assert len(calls) <= 2 + 8  # two bounds, then a binary search over 100


def test_fit_rejects_malformed_prompts():
    count = _char_count
    with pytest.raises(ValueError, match="messages is empty"):
        fit_to_context([], count, 10)
    with pytest.raises(ValueError, match=r"message 1: field 'role' must be 'user'"):
        fit_to_context([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], count, 10)
    with pytest.raises(ValueError, match=r"message 2: field 'role' must be 'assistant'"):
        fit_to_context(
            [
                {"role": "system", "content": "s"},
                {"role": "user", "content": "a"},
                {"role": "user", "content": "b"},
                {"role": "user", "content": "c"},
            ],
            count,
            10,
        )

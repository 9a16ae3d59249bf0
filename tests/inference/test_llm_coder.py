"""The LLM coder's prompt and answer check (inference/machine_coding/llm_coder.py), literal answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from annotation.miti import CODE_KEYS
from inference.machine_coding.llm_coder import InvalidAnswer, build_messages, codebook_text, parse_answer

MITI_DOC = Path(__file__).resolve().parents[2] / "docs/miti.md"
CODES = list(CODE_KEYS)

VALID_ANSWERS = {
    "bare": ('[["Q"], ["SR", "AF"]]', [["Q"], ["SR", "AF"]]),
    "no code for one utterance": ('[["Q"], []]', [["Q"], []]),
    "json fence": ('```json\n[["CR"], ["Q"]]\n```', [["CR"], ["Q"]]),
    "fence without language": ('```\n[["GI"], []]\n```', [["GI"], []]),
    "prose around it": ('Here is my coding:\n[["SEEK"], ["EMPHASIZE"]]\nHope this helps.', [["SEEK"], ["EMPHASIZE"]]),
    "repeated key kept once": ('[["Q", "Q"], ["SR"]]', [["Q"], ["SR"]]),
}

INVALID_ANSWERS = {
    "not json": ("I think the first is a question.", "not valid JSON"),
    "broken json": ('[["Q"], ["SR"', "not valid JSON"),
    "a dict": ('{"1": ["Q"], "2": ["SR"]}', "not a list of lists"),
    "flat list": ('["Q", "SR"]', "not a list of lists"),
    "numbers": ("[[1], [2]]", "not a list of lists"),
    "unknown key": ('[["Q"], ["OQ", "XX"]]', "unknown code keys: OQ, XX"),
    "too few": ('[["Q"]]', "codes 1 utterances; expected 2"),
    "too many": ('[["Q"], [], ["SR"]]', "codes 3 utterances; expected 2"),
}


@pytest.mark.parametrize("name", sorted(VALID_ANSWERS))
def test_valid_answers_are_parsed(name):
    text, expected = VALID_ANSWERS[name]
    assert parse_answer(text, utterances=2, codes=CODES) == expected


@pytest.mark.parametrize("name", sorted(INVALID_ANSWERS))
def test_invalid_answers_say_what_is_wrong(name):
    text, reason = INVALID_ANSWERS[name]
    with pytest.raises(InvalidAnswer) as caught:
        parse_answer(text, utterances=2, codes=CODES)
    assert reason in caught.value.reason
    assert isinstance(caught.value, ValueError) and str(caught.value) == caught.value.reason


def test_messages_hold_codebook_goal_context_volley_and_codes():
    messages = build_messages(
        codebook="CODEBOOK TEXT",
        change_goal="drink less",
        context=[("client", "I drink every night."), ("counselor", "Tell me more.")],
        volley=["You drink to relax.", "What else helps you relax?"],
        codes=["Q", "SR", "CR"],
    )
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "CODEBOOK TEXT" in messages[0]["content"] and "MITI 4.2.1" in messages[0]["content"]
    user = messages[1]["content"]
    assert "drink less" in user
    assert "client: I drink every night.\ncounselor: Tell me more." in user
    assert "1. You drink to relax.\n2. What else helps you relax?" in user
    assert "Q, SR, CR" in user and "exactly 2 lists" in user


def test_messages_need_a_volley_and_codes():
    with pytest.raises(ValueError, match="at least one utterance"):
        build_messages(codebook="", change_goal="", context=[], volley=[], codes=["Q"])
    with pytest.raises(ValueError, match="at least one code key"):
        build_messages(codebook="", change_goal="", context=[], volley=["Hi."], codes=[])


def test_codebook_is_the_coding_sections_of_the_miti_page():
    text = codebook_text(MITI_DOC)
    assert text.startswith("## Units")
    assert "## The ten behaviour codes" in text and "## When in doubt" in text
    assert "| `CR` | Complex Reflection |" in text
    assert "## Per-volley tally" not in text and "## The four global scales" not in text


def test_codebook_names_missing_sections(tmp_path):
    page = tmp_path / "codebook.txt"
    page.write_text("# MITI\n\n## Units\n\nText.\n", encoding="utf-8")
    with pytest.raises(ValueError, match="The ten behaviour codes, When in doubt"):
        codebook_text(page)

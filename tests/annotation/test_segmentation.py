"""Utterance segmentation of counselor volleys (pure, no DB)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from annotation.segmentation import merge_utterances, split_utterance, split_utterances

# ---- Chinese ------------------------------------------------------------------------------------


def test_chinese_sentences_split_at_full_width_punctuation():
    text = ("听起来你是在关心别人的感受，这其实并不是自私。自爱是指关心自己的需求和感受，"
            "而自私是以损害他人为代价来满足自己。你能理解这两者的区别吗？")
    assert split_utterances(text) == [
        "听起来你是在关心别人的感受，这其实并不是自私。",
        "自爱是指关心自己的需求和感受，而自私是以损害他人为代价来满足自己。",
        "你能理解这两者的区别吗？",
    ]


def test_chinese_exclamation_semicolon_and_punctuation_runs():
    assert split_utterances("太好了！真的吗？！好的；我们继续。") == [
        "太好了！",
        "真的吗？！",
        "好的；",
        "我们继续。",
    ]


def test_chinese_commas_do_not_split():
    assert split_utterances("我明白，你很累，也很委屈") == ["我明白，你很累，也很委屈"]


def test_chinese_ellipsis_is_a_pause_unless_followed_by_end_punctuation():
    assert split_utterances("我不知道……也许吧。") == ["我不知道……也许吧。"]
    assert split_utterances("嗯……") == ["嗯……"]
    assert split_utterances("这样啊……。那你怎么想？") == ["这样啊……。", "那你怎么想？"]


def test_closing_quote_stays_with_its_sentence():
    assert split_utterances("你可以问自己：“是什么让我感到不舒服？”这样可以帮助你更清楚。") == [
        "你可以问自己：“是什么让我感到不舒服？”",
        "这样可以帮助你更清楚。",
    ]
    assert split_utterances("他说「好。」我们走吧。") == ["他说「好。」", "我们走吧。"]


def test_punctuation_inside_quotes_does_not_split():
    assert split_utterances("你可以试着说：“我很生气。我需要冷静一下。”然后深呼吸。") == [
        "你可以试着说：“我很生气。我需要冷静一下。”",
        "然后深呼吸。",
    ]


def test_unmatched_quote_does_not_swallow_the_rest():
    assert split_utterances("他说“算了。我们下次再谈。") == ["他说“算了。", "我们下次再谈。"]


def test_chinese_decimals_and_ranges_do_not_split():
    assert split_utterances("公共距离是3.7-7.6米。个人距离是0.45-1.2米。") == [
        "公共距离是3.7-7.6米。",
        "个人距离是0.45-1.2米。",
    ]


def test_ascii_period_in_chinese_text_splits():
    assert split_utterances("好的.我们开始吧") == ["好的.", "我们开始吧"]


def test_full_width_closing_bracket_after_punctuation():
    assert split_utterances("（深呼吸。）我们慢慢来。") == ["（深呼吸。）", "我们慢慢来。"]


# ---- English ------------------------------------------------------------------------------------


def test_english_sentences():
    assert split_utterances("You feel stuck. Is that right? That took courage!") == [
        "You feel stuck.",
        "Is that right?",
        "That took courage!",
    ]


def test_english_decimals_and_abbreviations():
    assert split_utterances("Mr. Smith said it takes 3.5 hours. Dr. Lee agreed.") == [
        "Mr. Smith said it takes 3.5 hours.",
        "Dr. Lee agreed.",
    ]
    assert split_utterances("Try small things, e.g. a walk, i.e. anything. What fits?") == [
        "Try small things, e.g. a walk, i.e. anything.",
        "What fits?",
    ]


def test_etc_and_am_end_a_sentence_only_before_a_capital():
    assert split_utterances("Apples, pears, etc. What else?") == ["Apples, pears, etc.", "What else?"]
    assert split_utterances("Apples, pears, etc. and so on.") == ["Apples, pears, etc. and so on."]
    assert split_utterances("We meet at 9 a.m. Then we talk.") == ["We meet at 9 a.m.", "Then we talk."]


def test_english_ellipsis_is_a_pause():
    assert split_utterances("I see... you are tired.") == ["I see... you are tired."]
    assert split_utterances("Well...? Go on.") == ["Well...?", "Go on."]
    assert split_utterances("So…") == ["So…"]


def test_english_quotes_and_brackets_after_punctuation():
    assert split_utterances('He said "stop." Then he left.') == ['He said "stop."', "Then he left."]
    assert split_utterances("You said (really.) Okay.") == ["You said (really.)", "Okay."]
    assert split_utterances("I don't know. It's fine.") == ["I don't know.", "It's fine."]


def test_urls_initials_and_interrobang():
    assert split_utterances("Visit example.com today. OK?!") == ["Visit example.com today.", "OK?!"]
    assert split_utterances("J. K. Rowling wrote it. Fine.") == ["J. K. Rowling wrote it.", "Fine."]


def test_inline_numbered_lists_keep_the_number_with_its_item():
    assert split_utterances("请注意以下几点：1.保持冷静。2. 倾听对方。") == [
        "请注意以下几点：1.保持冷静。",
        "2. 倾听对方。",
    ]
    assert split_utterances("Try this. 2. Walk more.") == ["Try this.", "2. Walk more."]
    assert split_utterances("I am 35. You?") == ["I am 35.", "You?"]


def test_line_breaks_and_numbered_lists():
    assert split_utterances("Here are ideas:\n1. Walk daily.\n2. Sleep early") == [
        "Here are ideas:",
        "1. Walk daily.",
        "2. Sleep early",
    ]


# ---- edge cases ---------------------------------------------------------------------------------


def test_whitespace_is_stripped_and_empty_pieces_dropped():
    assert split_utterances("  Hi.   \n\n  How are you?  ") == ["Hi.", "How are you?"]
    assert split_utterances("") == []
    assert split_utterances("   \n ") == []


def test_non_empty_text_never_gives_an_empty_list():
    assert split_utterances("……") == ["……"]
    assert split_utterances("?") == ["?"]
    assert split_utterances("mm hmm") == ["mm hmm"]


def test_punctuation_only_pieces_join_their_neighbour():
    assert split_utterances("Hello\n\n……\nBye.") == ["Hello……", "Bye."]
    assert split_utterances("……\n好的。") == ["……好的。"]


def test_no_text_is_lost():
    text = "好的。你说“我不行。”……其实你已经做到了！Really? Yes. 3.5 km."
    assert "".join(split_utterances(text)).replace(" ", "") == text.replace(" ", "")


# ---- merge / split helpers ----------------------------------------------------------------------


def test_merge_utterances_english_and_chinese():
    assert merge_utterances(["You feel stuck.", "Is that right?", "Okay."], 0) == [
        "You feel stuck. Is that right?",
        "Okay.",
    ]
    assert merge_utterances(["好的。", "我们继续。"], 0) == ["好的。我们继续。"]


def test_merge_does_not_mutate_its_input():
    parts = ["a.", "b.", "c."]
    assert merge_utterances(parts, 1) == ["a.", "b. c."]
    assert parts == ["a.", "b.", "c."]


@pytest.mark.parametrize("bad", [-1, 2, 1.0, True, None])
def test_merge_rejects_bad_index(bad):
    with pytest.raises(ValueError, match="utterance index"):
        merge_utterances(["a.", "b.", "c."], bad)


def test_merge_needs_two_utterances():
    with pytest.raises(ValueError, match="need at least 2 utterances, got 1"):
        merge_utterances(["a."], 0)


def test_split_utterance():
    assert split_utterance(["You feel stuck, is that right?", "Okay."], 0, 15) == [
        "You feel stuck,",
        "is that right?",
        "Okay.",
    ]
    assert split_utterance(["好的我们继续吧"], 0, 2) == ["好的", "我们继续吧"]


@pytest.mark.parametrize("at", [0, 7, 99, -3])
def test_split_refuses_cuts_that_leave_an_empty_half(at):
    with pytest.raises(ValueError, match="both parts must contain text"):
        split_utterance(["Hello. "], 0, at)


def test_split_refuses_cut_inside_surrounding_spaces():
    with pytest.raises(ValueError, match="both parts must contain text"):
        split_utterance(["  Hi"], 0, 1)


def test_split_rejects_bad_index_and_position():
    with pytest.raises(ValueError, match=r"utterance index 1 is out of range 0\.\.0"):
        split_utterance(["Hello."], 1, 2)
    with pytest.raises(ValueError, match="split position must be a whole number"):
        split_utterance(["Hello."], 0, "2")
    with pytest.raises(ValueError, match="no utterances"):
        split_utterance([], 0, 1)


def test_helpers_reject_empty_parts_and_a_bare_string():
    with pytest.raises(ValueError, match="utterance 2 is empty"):
        merge_utterances(["a.", "  "], 0)
    with pytest.raises(ValueError, match="not a single string"):
        merge_utterances("ab", 0)


# ---- real data (skips cleanly when the shared data folder is absent) ----------------------------


def _shared_data() -> Path:
    env = os.environ.get("MI_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def test_cpsycound_counselor_turns_segment_without_loss():
    folder = _shared_data() / "CPsyCounD" / "Data"
    if not folder.is_dir():
        pytest.skip(f"shared data not found at {folder}")
    prefix = "心理咨询师："
    turns = 0
    for path in sorted(folder.glob("case_*.txt"))[:50]:
        text = path.read_text(encoding="utf-8").replace("\r\n", "\n")
        for paragraph in text.split("\n\n"):
            if not paragraph.startswith(prefix):
                continue
            body = paragraph[len(prefix):]
            pieces = split_utterances(body)
            turns += 1
            assert pieces, f"{path.name}: empty segmentation"
            assert "".join("".join(pieces).split()) == "".join(body.split()), f"{path.name}: text lost"
            assert all(any(ch.isalnum() for ch in piece) for piece in pieces), f"{path.name}: {pieces}"
    assert turns > 100

"""The MITI 4.2.1 instrument: codes, per-volley tally, summary scores and thresholds (pure, no DB)."""

from __future__ import annotations

import pytest

from annotation import miti
from annotation.miti import (
    BEHAVIOUR_CODES,
    CODE_KEYS,
    GLOBAL_SCALES,
    HOTKEYS,
    NO_CODE,
    SummaryScores,
    summary_scores,
    tally_transcript,
    tally_volley,
    threshold_status,
    validate_code,
    validate_global,
)

ZERO = dict.fromkeys(CODE_KEYS, 0)
ALL_GLOBALS = {"CULTIVATING_CHANGE_TALK": 4, "SOFTENING_SUSTAIN_TALK": 3, "PARTNERSHIP": 4, "EMPATHY": 5}


def counts(**nonzero: int) -> dict[str, int]:
    return {**ZERO, **nonzero}


# ---- instrument definition ----------------------------------------------------------------------


def test_version_tag():
    assert miti.INSTRUMENT_VERSION == "MITI 4.2.1"


def test_ten_codes_in_manual_order_with_groups():
    assert CODE_KEYS == (
        "GI", "PERSUADE", "PERSUADE_WITH", "Q", "SR", "CR", "AF", "SEEK", "EMPHASIZE", "CONFRONT",
    )
    assert miti.MIA_CODES == ("AF", "SEEK", "EMPHASIZE")
    assert miti.MINA_CODES == ("PERSUADE", "CONFRONT")
    assert miti.CODE_BY_KEY["PERSUADE_WITH"].group is None
    assert miti.CODE_BY_KEY["CR"].name == "Complex Reflection"
    assert NO_CODE == "NONE"


def test_hotkeys_are_single_unique_and_avoid_reserved_keys():
    code_keys = [code.hotkey for code in BEHAVIOUR_CODES]
    assert all(len(key) == 1 for key in code_keys)
    assert len(set(code_keys)) == 10
    assert not set(code_keys) & set("jkun0?12345")
    assert not set(HOTKEYS) & miti.RESERVED_KEYS and {">", "[", "]"} <= miti.RESERVED_KEYS  # docs/keyboard.md
    assert {code.key: code.hotkey for code in BEHAVIOUR_CODES} == {
        "GI": "g", "PERSUADE": "p", "PERSUADE_WITH": "w", "Q": "q", "SR": "s", "CR": "c",
        "AF": "a", "SEEK": "l", "EMPHASIZE": "e", "CONFRONT": "x",
    }
    assert HOTKEYS["0"] == NO_CODE
    assert HOTKEYS["n"] == NO_CODE
    assert len(HOTKEYS) == 12


def test_global_scales():
    assert [(s.key, s.group, s.default_hint) for s in GLOBAL_SCALES] == [
        ("CULTIVATING_CHANGE_TALK", "technical", 3),
        ("SOFTENING_SUSTAIN_TALK", "technical", 3),
        ("PARTNERSHIP", "relational", 3),
        ("EMPATHY", "relational", 3),
    ]
    assert (miti.GLOBAL_MIN, miti.GLOBAL_MAX) == (1, 5)
    assert all(s.anchor_low and s.anchor_high for s in GLOBAL_SCALES)


def test_user_visible_strings_are_plain_english_marked_for_extraction():
    # The marker is a no-op (this module imports no Django); the Chinese lives in the catalogue and
    # tests/mi_platform/test_translations.py checks that every one of these strings has it.
    assert miti.gettext_noop("Complex Reflection") == "Complex Reflection"
    assert miti.CODE_BY_KEY["CR"].name == "Complex Reflection"
    assert miti.THRESHOLD_LABELS["below"] == "Below threshold"


# ---- validation ---------------------------------------------------------------------------------


def test_validate_code_accepts_codes_and_no_code():
    assert validate_code("SEEK") == "SEEK"
    assert validate_code("NONE") == "NONE"


@pytest.mark.parametrize("bad", ["XX", "", None, 3, "Persuade with"])
def test_validate_code_rejects(bad):
    with pytest.raises(ValueError, match="unknown MITI behaviour code"):
        validate_code(bad)


def test_validate_code_suggests_the_canonical_spelling():
    with pytest.raises(ValueError, match=r"did you mean 'CR'\?"):
        validate_code("cr")


def test_validate_global():
    assert validate_global("EMPATHY", 1) == 1
    assert validate_global("PARTNERSHIP", 5) == 5
    with pytest.raises(ValueError, match="between 1 and 5, got 6"):
        validate_global("EMPATHY", 6)
    with pytest.raises(ValueError, match="between 1 and 5, got 0"):
        validate_global("EMPATHY", 0)
    with pytest.raises(ValueError, match="whole number"):
        validate_global("EMPATHY", 3.5)
    with pytest.raises(ValueError, match="whole number"):
        validate_global("EMPATHY", True)
    with pytest.raises(ValueError, match="unknown MITI global scale 'DIRECTION'"):
        validate_global("DIRECTION", 3)


# ---- per-volley tally ---------------------------------------------------------------------------


def test_empty_uncoded_and_no_code_volleys_contribute_nothing():
    for volley in ([], [None, None], ["NONE"], [None, "NONE"]):
        tally = tally_volley(volley)
        assert tally.counts == ZERO
        assert tally.merges == []


def test_single_codes_count_once_without_merges():
    tally = tally_volley(["GI", "Q"])
    assert tally.counts == counts(GI=1, Q=1)
    assert tally.merges == []


def test_several_simple_reflections_count_as_one_sr():
    tally = tally_volley(["SR", "SR"])
    assert tally.counts == counts(SR=1)
    assert tally.merges == ["2 reflections in one volley count once: SR because none is complex"]


def test_simple_and_complex_reflection_count_as_one_cr():
    tally = tally_volley(["SR", "CR", "NONE"])
    assert tally.counts == counts(CR=1)
    assert tally.merges == ["2 reflections in one volley count once: CR because at least one is complex"]


def test_several_questions_count_as_one_q():
    tally = tally_volley(["Q", "Q", "Q"])
    assert tally.counts == counts(Q=1)
    assert tally.merges == ["3 questions in one volley count as one Q"]


def test_reflection_then_is_that_right_counts_both():
    # "So you feel stuck." + "Is that right?"
    assert tally_volley(["CR", "Q"]).counts == counts(CR=1, Q=1)


def test_persuade_and_persuade_with_in_one_volley_count_once_as_persuade_with():
    tally = tally_volley(["PERSUADE", "PERSUADE_WITH"])
    assert tally.counts == counts(PERSUADE_WITH=1)
    assert tally.merges == [
        "2 persuade codes in one volley (PERSUADE and PERSUADE_WITH) count once: "
        "PERSUADE_WITH because permission framed the volley"
    ]
    # order does not matter
    assert tally_volley(["PERSUADE_WITH", "PERSUADE", "PERSUADE"]).counts == counts(PERSUADE_WITH=1)


def test_repeated_persuade_counts_once():
    tally = tally_volley(["PERSUADE", "PERSUADE"])
    assert tally.counts == counts(PERSUADE=1)
    assert tally.merges == ["2 × PERSUADE in one volley count once"]


def test_different_mi_adherent_codes_all_count():
    assert tally_volley(["AF", "EMPHASIZE", "SEEK"]).counts == counts(AF=1, EMPHASIZE=1, SEEK=1)


def test_repeats_of_other_codes_count_once():
    tally = tally_volley(["AF", "AF", "GI", "GI", "GI", "CONFRONT", "CONFRONT"])
    assert tally.counts == counts(AF=1, GI=1, CONFRONT=1)
    assert tally.merges == [
        "3 × GI in one volley count once",
        "2 × AF in one volley count once",
        "2 × CONFRONT in one volley count once",
    ]


def test_merges_are_listed_in_slot_order():
    tally = tally_volley(["CONFRONT", "SR", "SR", "Q", "Q", "GI", "GI", "CONFRONT"])
    assert tally.merges == [
        "2 × GI in one volley count once",
        "2 questions in one volley count as one Q",
        "2 reflections in one volley count once: SR because none is complex",
        "2 × CONFRONT in one volley count once",
    ]


def test_a_volley_counts_at_most_eight_codes():
    volley = list(CODE_KEYS) * 2 + ["NONE", None]
    tally = tally_volley(volley)
    assert sum(tally.counts.values()) == 8
    assert tally.counts == counts(GI=1, PERSUADE_WITH=1, Q=1, CR=1, AF=1, SEEK=1, EMPHASIZE=1, CONFRONT=1)


def test_merge_notes_carry_template_and_params_for_translation():
    note = tally_volley(["Q", "Q"]).notes[0]
    assert note.template == miti.MERGE_QUESTIONS
    assert note.params == {"n": 2}
    assert note.text == "2 questions in one volley count as one Q"


def test_unknown_code_in_volley_names_the_utterance():
    with pytest.raises(ValueError, match=r"utterance 2 of the volley: unknown MITI behaviour code 'OQ'"):
        tally_volley(["Q", "OQ"])


def test_tally_transcript_sums_volleys():
    volleys = [
        ["SR", "CR", "Q"],  # CR, Q
        ["SR", "Q", "Q"],  # SR, Q
        ["GI", "PERSUADE"],  # GI, PERSUADE
        ["AF", "AF", "EMPHASIZE"],  # AF, EMPHASIZE
        [None, "NONE"],  # nothing
        ["PERSUADE_WITH", "SEEK", "CONFRONT"],
    ]
    assert tally_transcript(volleys) == {
        "GI": 1, "PERSUADE": 1, "PERSUADE_WITH": 1, "Q": 2, "SR": 1, "CR": 1,
        "AF": 1, "SEEK": 1, "EMPHASIZE": 1, "CONFRONT": 1,
    }
    assert tally_transcript([]) == ZERO


def test_tally_transcript_names_the_volley_on_error():
    with pytest.raises(ValueError, match=r"volley 2: utterance 1 of the volley: unknown"):
        tally_transcript([["Q"], ["bogus"]])


# ---- summary scores -----------------------------------------------------------------------------


def test_summary_scores_with_literal_values():
    scores = summary_scores(
        counts(GI=7, PERSUADE=2, PERSUADE_WITH=3, Q=10, SR=6, CR=9, AF=4, SEEK=2, EMPHASIZE=1, CONFRONT=1),
        ALL_GLOBALS,
    )
    assert scores == SummaryScores(
        technical=3.5,  # (4 + 3) / 2
        relational=4.5,  # (4 + 5) / 2
        pct_cr=0.6,  # 9 / (6 + 9)
        r_to_q=1.5,  # (6 + 9) / 10
        mia=7,  # 2 + 4 + 1
        mina=3,  # 1 + 2
        gi=7,
        persuade_with=3,
        mi_adherent_share=0.7,  # 7 / (7 + 3)
    )
    assert list(scores.as_dict()) == list(miti.ALL_SUMMARY_KEYS)


def test_zero_denominators_give_none_never_zero():
    scores = summary_scores(counts(GI=2), ALL_GLOBALS)
    assert scores.pct_cr is None  # SR + CR = 0
    assert scores.r_to_q is None  # Q = 0
    assert scores.mi_adherent_share is None  # MIA + MINA = 0
    assert (scores.mia, scores.mina, scores.gi) == (0, 0, 2)


def test_no_questions_but_reflections_is_undefined_ratio():
    scores = summary_scores(counts(SR=3), ALL_GLOBALS)
    assert scores.r_to_q is None
    assert scores.pct_cr == 0.0  # 0 / 3 is a real zero, not undefined


def test_missing_or_none_globals_give_none_for_that_global_score():
    scores = summary_scores(counts(), {"CULTIVATING_CHANGE_TALK": 2, "PARTNERSHIP": 3, "EMPATHY": None})
    assert scores.technical is None
    assert scores.relational is None
    scores = summary_scores(counts(), {"PARTNERSHIP": 3, "EMPATHY": 4})
    assert (scores.technical, scores.relational) == (None, 3.5)


def test_missing_count_keys_count_zero():
    assert summary_scores({"SR": 1, "CR": 1, "Q": 4}, {}).r_to_q == 0.5


def test_summary_scores_reject_bad_input():
    with pytest.raises(ValueError, match="counts: unknown behaviour code 'OQ'"):
        summary_scores({"OQ": 1}, {})
    with pytest.raises(ValueError, match="counts: SR must be a non-negative whole number, got -1"):
        summary_scores({"SR": -1}, {})
    with pytest.raises(ValueError, match="global EMPATHY: rating must be between 1 and 5, got 7"):
        summary_scores({}, {"EMPATHY": 7})
    with pytest.raises(ValueError, match="globals: unknown global scale 'DIRECTION'"):
        summary_scores({}, {"DIRECTION": 3})


def test_summary_keys():
    assert miti.SUMMARY_KEYS == ("technical", "relational", "pct_cr", "r_to_q", "mia", "mina")
    assert miti.ALL_SUMMARY_KEYS[-1] == "mi_adherent_share"
    assert "derived" in miti.SUMMARY_LABELS["mi_adherent_share"]


# ---- thresholds ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("technical", 4.0, "good"),
        ("technical", 3.5, "fair"),
        ("technical", 3.0, "fair"),
        ("technical", 2.5, "below"),
        ("relational", 4.0, "good"),
        ("relational", 3.5, "fair"),
        ("relational", 3.0, "below"),
        ("pct_cr", 0.5, "good"),
        ("pct_cr", 0.4, "fair"),
        ("pct_cr", 0.39, "below"),
        ("r_to_q", 2.0, "good"),
        ("r_to_q", 1.0, "fair"),
        ("r_to_q", 0.99, "below"),
        ("r_to_q", None, "n/a"),
        ("pct_cr", None, "n/a"),
        ("mia", 12, None),
        ("mina", 0, None),
        ("gi", 3, None),
        ("mi_adherent_share", 0.9, None),
    ],
)
def test_threshold_status(key, value, expected):
    assert threshold_status(key, value) == expected


def test_threshold_from_computed_fractions_meets_cut_off_exactly():
    # 2 / 5 and 4 / 10 must meet the 40 % Fair cut-off, not fall a float epsilon short.
    assert threshold_status("pct_cr", summary_scores(counts(SR=3, CR=2), {}).pct_cr) == "fair"
    assert threshold_status("pct_cr", summary_scores(counts(SR=6, CR=4), {}).pct_cr) == "fair"


def test_threshold_status_unknown_key():
    with pytest.raises(ValueError, match="unknown summary score 'pct_oq'"):
        threshold_status("pct_oq", 0.5)


# ---- hints --------------------------------------------------------------------------------------


def test_when_in_doubt_hints():
    texts = [hint.text for hint in miti.WHEN_IN_DOUBT]
    assert "Simple over Complex Reflection (SR over CR)" in texts
    assert "Confront over Question" in texts
    assert len(texts) == 10
    for hint in miti.WHEN_IN_DOUBT:
        for code in hint.codes:
            validate_code(code)


def test_hints_for_a_code():
    assert [h.text for h in miti.hints_for("Q")] == ["Confront over Question"]
    assert len(miti.hints_for("AF")) == 4
    with pytest.raises(ValueError):
        miti.hints_for("XX")

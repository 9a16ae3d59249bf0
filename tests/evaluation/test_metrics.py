"""Automatic metrics equal a direct computation with nltk / jieba / rouge-chinese / rouge-score."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import jieba
import pytest
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from rouge_chinese import Rouge
from rouge_score.tokenizers import DefaultTokenizer

from evaluation.metrics import RoundPair, distinct_n, score_round, score_rounds

ZH_PAIRS = [
    ("听起来你最近压力很大，工作和家庭都让你喘不过气来。", "你觉得工作和家里的事情一起压过来，让你很累。"),
    ("你能多说说那次聚餐时的感受吗？", "你能详细描述一下这种情况吗？例如在什么情况下你会觉得自己自私？"),
    ("我理解。", "我理解你的感受。"),
    ("", "你好。"),
    ("嗯嗯", ""),
    ("。。。", "好的"),
]
EN_PAIRS = [
    ("It sounds like you're really stressed about work.", "You feel a lot of pressure at work right now."),
    ("What would you like to change?", "What would you like to be different?"),
    ("Okay.", "OK, tell me more."),
    ("", "Hello there."),
]


def reference_zh(hyp: str, ref: str) -> dict[str, float]:
    """LLaMA-Factory's ComputeSimilarity, per round, without its 4-decimal rounding."""
    hypothesis, reference = list(jieba.cut(hyp)), list(jieba.cut(ref))
    if not " ".join(hypothesis).split() or not " ".join(reference).split():
        rouge = {"rouge-1": {"f": 0.0}, "rouge-2": {"f": 0.0}, "rouge-l": {"f": 0.0}}
    else:
        rouge = Rouge().get_scores(" ".join(hypothesis), " ".join(reference))[0]
    bleu = sentence_bleu([list(ref)], list(hyp), smoothing_function=SmoothingFunction().method3)
    return {
        "bleu4": bleu * 100,
        "rouge1": rouge["rouge-1"]["f"] * 100,
        "rouge2": rouge["rouge-2"]["f"] * 100,
        "rougeL": rouge["rouge-l"]["f"] * 100,
    }


def reference_en(hyp: str, ref: str) -> dict[str, float]:
    tok = DefaultTokenizer(use_stemmer=False).tokenize
    h, r = tok(hyp), tok(ref)
    bleu = sentence_bleu([r], h, weights=(0.25,) * 4, smoothing_function=SmoothingFunction().method3)
    if not h or not r:
        rouge = {"rouge-1": {"f": 0.0}, "rouge-2": {"f": 0.0}, "rouge-l": {"f": 0.0}}
    else:
        rouge = Rouge().get_scores(" ".join(h), " ".join(r))[0]
    return {
        "bleu4": bleu * 100,
        "rouge1": rouge["rouge-1"]["f"] * 100,
        "rouge2": rouge["rouge-2"]["f"] * 100,
        "rougeL": rouge["rouge-l"]["f"] * 100,
    }


@pytest.mark.parametrize(("hyp", "ref"), ZH_PAIRS)
def test_chinese_round_equals_llamafactory_definition(hyp: str, ref: str) -> None:
    got = score_round(hyp, ref, "zh")
    want = reference_zh(hyp, ref)
    for name, value in want.items():
        assert getattr(got, name) == pytest.approx(value, abs=1e-6), name


@pytest.mark.parametrize(("hyp", "ref"), EN_PAIRS)
def test_english_round_equals_direct_computation(hyp: str, ref: str) -> None:
    got = score_round(hyp, ref, "en")
    want = reference_en(hyp, ref)
    for name, value in want.items():
        assert getattr(got, name) == pytest.approx(value, abs=1e-6), name


def test_literal_values() -> None:
    # Identical 3-character replies: no 4-gram exists, method3 sets p4 = 1/2, so BLEU-4 = 0.5 ** 0.25.
    s = score_round("你好吗", "你好吗", "zh")
    assert s.bleu4 == pytest.approx(84.08964152537145, abs=1e-9)
    # rouge_chinese's F has a 1e-8 in its denominator, so a perfect match is 99.9999995, not 100.
    assert s.rouge1 == pytest.approx(99.9999995, abs=1e-9)
    assert s.length == 3 and s.empty is False
    e = score_round("  \n", "你好", "zh")
    assert (e.bleu4, e.rouge1, e.rouge2, e.rougeL, e.length, e.empty) == (0.0, 0.0, 0.0, 0.0, 0, True)
    en = score_round("What would you like to change?", "what would you like to change", "en")
    assert en.rouge1 == pytest.approx(99.9999995, abs=1e-9)  # case and punctuation are dropped
    assert en.bleu4 == pytest.approx(100.0, abs=1e-9)


def test_round_digits_mirrors_llamafactory_rounding() -> None:
    hyp, ref = ZH_PAIRS[0]
    got = score_round(hyp, ref, "zh", round_digits=4)
    want = reference_zh(hyp, ref)
    assert got.bleu4 == round(want["bleu4"], 4)
    assert got.rougeL == round(want["rougeL"], 4)


def test_score_rounds_pooled_and_per_dialogue_means() -> None:
    pairs = [
        RoundPair("d1", 0, ZH_PAIRS[0][0], ZH_PAIRS[0][1]),
        RoundPair("d1", 1, ZH_PAIRS[1][0], ZH_PAIRS[1][1]),
        RoundPair("d2", 0, ZH_PAIRS[2][0], ZH_PAIRS[2][1]),
        RoundPair("d2", 1, "", "你好。"),
    ]
    report = score_rounds(pairs, "zh")
    refs = [reference_zh(p.hyp, p.ref) for p in pairs]
    assert report.n_rounds == 4 and report.n_dialogues == 2
    assert report.pooled.bleu4 == pytest.approx(sum(r["bleu4"] for r in refs) / 4, abs=1e-9)
    assert report.pooled.rougeL == pytest.approx(sum(r["rougeL"] for r in refs) / 4, abs=1e-9)
    # Pooled mean is over rounds, not the mean of dialogue means (they agree here: 2 rounds each).
    assert report.per_dialogue["d2"].rouge1 == pytest.approx((refs[2]["rouge1"] + 0.0) / 2, abs=1e-9)
    assert report.per_dialogue["d2"].empty_rate == 0.5
    assert report.empty_rate == 0.25
    assert report.per_dialogue["d1"].length == (len(ZH_PAIRS[0][0]) + len(ZH_PAIRS[1][0])) / 2
    assert [(r.dialogue_id, r.round_index) for r in report.per_round] == [
        ("d1", 0),
        ("d1", 1),
        ("d2", 0),
        ("d2", 1),
    ]
    assert "jieba" in report.tokenizer
    assert "Distinct-n" in report.definitions
    json.dumps(report.to_dict(), ensure_ascii=False)  # storable as JSON


def test_pooled_mean_differs_from_mean_of_dialogue_means() -> None:
    pairs = [RoundPair("a", 0, "你好", "你好"), RoundPair("a", 1, "", "你好"), RoundPair("b", 0, "", "x")]
    report = score_rounds(pairs, "zh")
    first = score_round("你好", "你好", "zh").rouge1
    assert report.pooled.rouge1 == pytest.approx(first / 3)
    assert report.per_dialogue["a"].rouge1 == pytest.approx(first / 2)
    assert report.per_dialogue["b"].rouge1 == 0.0


def test_distinct_n_definition() -> None:
    # zh: characters without whitespace; n-grams never cross replies.
    assert distinct_n(["你好你好", "你 好"], 1, "zh") == pytest.approx(2 / 6)
    assert distinct_n(["你好你好", "你 好"], 2, "zh") == pytest.approx(2 / 4)  # 你好 好你 你好 | 你好
    assert distinct_n(["Yes, yes!", "no"], 1, "en") == pytest.approx(2 / 3)
    assert distinct_n(["", "a"], 2, "en") is None


def test_errors_name_the_record() -> None:
    with pytest.raises(ValueError, match="pairs\\[1\\]: duplicate round"):
        score_rounds([RoundPair("d", 0, "a", "b"), RoundPair("d", 0, "a", "b")], "en")
    with pytest.raises(TypeError, match="pairs\\[0\\]"):
        score_rounds([RoundPair("d", 0, None, "b")], "en")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="language"):
        score_round("a", "b", "fr")


def test_empty_set() -> None:
    report = score_rounds([], "en")
    assert report.n_rounds == 0 and report.pooled.bleu4 is None and report.distinct_1 is None


def _shared_data() -> Path:
    env = os.environ.get("MI_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def test_thousand_real_rounds_take_seconds() -> None:
    folder = _shared_data() / "CPsyCounD" / "Data"
    if not folder.is_dir():
        pytest.skip(f"shared data not found at {folder}")
    replies: list[str] = []
    for path in sorted(folder.glob("case_*.txt"))[:200]:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("心理咨询师："):
                replies.append(line[len("心理咨询师：") :])
    pairs = [RoundPair(i // 8, i % 8, replies[i], replies[i + 1]) for i in range(min(1000, len(replies) - 1))]
    score_round("热身", "热身", "zh")  # jieba's dictionary load is not part of the timing
    start = time.perf_counter()
    report = score_rounds(pairs, "zh")
    elapsed = time.perf_counter() - start
    assert report.n_rounds == len(pairs)
    assert 0 < report.pooled.bleu4 < 100 and math.isfinite(report.pooled.rougeL)
    assert elapsed < 10, f"{len(pairs)} rounds took {elapsed:.1f} s"

"""Automatic text metrics for round-based generation (docs/metrics.md, "Automatic text metrics").

Pure module: plain data in, plain data out, no Django.

Chinese scores follow LLaMA-Factory's ``ComputeSimilarity`` (``src/llamafactory/train/sft/metric.py``),
so numbers are comparable with papers whose models were evaluated with its ``predict`` stage:

* BLEU-4: ``nltk`` ``sentence_bleu([list(ref)], list(hyp))`` on characters, weights (.25, .25, .25, .25),
  ``SmoothingFunction().method3``, ×100 per round, then the plain mean over rounds (never corpus BLEU).
* ROUGE-1/2/L: both texts segmented with ``jieba.cut`` (default mode, HMM on), joined with spaces,
  scored with ``rouge_chinese.Rouge().get_scores(hyp, ref)``; the F value ×100. When either side has no
  token after segmentation the round scores 0 for all three ROUGE values.

LLaMA-Factory additionally rounds every per-round score to 4 decimals before averaging; we keep full
precision by default (the difference in a mean is below 5e-5) and offer ``round_digits=4`` to mirror it
bit for bit.

English scores use the same BLEU-4 and ROUGE definitions on word tokens from ``rouge-score``'s
``DefaultTokenizer(use_stemmer=False)``: lowercased, every character outside ``[a-z0-9]`` is a separator
(punctuation disappears; non-ASCII letters split words, fine for English, wrong for other languages).
``rouge_chinese`` scores the space-joined tokens; since punctuation is gone it sees one sentence, so its
summary-level ROUGE-L equals plain ROUGE-L.
"""

from __future__ import annotations

import logging
import math
import threading
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

Language = Literal["zh", "en"]
LANGUAGES: tuple[str, ...] = ("zh", "en")

TOKENIZER_NAMES: dict[str, str] = {
    "zh": "BLEU: characters (list(text)); ROUGE: jieba 0.42.1 jieba.cut (HMM on), space-joined",
    "en": "rouge_score.tokenizers.DefaultTokenizer(use_stemmer=False) for BLEU and ROUGE",
}


def gettext_noop(message: str) -> str:
    """Marks a string for makemessages (its default keyword) without importing Django: pages translate it."""
    return message


# Marked for translation (the report page shows it in the page's language; the PDF stays English).
DEFINITIONS = gettext_noop("""\
Scores are ×100 and computed per round (one generated counselor reply against the gold reply), then
averaged: 'pooled' is the plain mean over all rounds of all dialogues; 'per dialogue' is the mean over the
rounds of one dialogue.
BLEU-4: NLTK sentence_bleu, weights (0.25, 0.25, 0.25, 0.25), SmoothingFunction().method3, on characters
(Chinese) or rouge-score tokens (English). Mean of sentence scores, not corpus BLEU.
ROUGE-1/2/L: F value of rouge_chinese.Rouge().get_scores on jieba-segmented (Chinese) or rouge-score-
tokenized (English) text joined with spaces; 0 when either side has no token (as LLaMA-Factory).
Length: characters of the reply after stripping surrounding whitespace.
Empty-response rate: share of rounds whose reply is empty or only whitespace (they score 0).
Distinct-n: number of distinct n-grams / number of n-grams, pooled over all replies of the set; n-grams
never cross replies. Units: characters without whitespace (Chinese) or rouge-score tokens (English).
None when the set has no n-gram.""")

_SCORE_FIELDS = ("bleu4", "rouge1", "rouge2", "rougeL", "length")


@dataclass(frozen=True)
class RoundPair:
    """One round: the model's reply (``hyp``) and the gold counselor reply (``ref``)."""

    dialogue_id: Any
    round_index: int
    hyp: str
    ref: str


@dataclass(frozen=True)
class RoundScores:
    bleu4: float
    rouge1: float
    rouge2: float
    rougeL: float  # the name used in reports and in LLaMA-Factory ("rouge-l")
    length: int
    empty: bool


@dataclass(frozen=True)
class ScoredRound:
    dialogue_id: Any
    round_index: int
    bleu4: float
    rouge1: float
    rouge2: float
    rougeL: float
    length: int
    empty: bool


@dataclass(frozen=True)
class MeanScores:
    n_rounds: int
    bleu4: float | None
    rouge1: float | None
    rouge2: float | None
    rougeL: float | None
    length: float | None
    empty_rate: float | None


@dataclass
class MetricReport:
    language: str
    tokenizer: str
    n_rounds: int
    n_dialogues: int
    pooled: MeanScores
    per_dialogue: dict[Any, MeanScores]
    per_round: list[ScoredRound]
    distinct_1: float | None
    distinct_2: float | None
    empty_rate: float | None
    definitions: str = field(default=DEFINITIONS)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (dialogue ids become strings, as JSON object keys must be)."""
        data = asdict(self)
        data["per_dialogue"] = {str(k): asdict(v) for k, v in self.per_dialogue.items()}
        return data


# --- lazy, shared tool state -------------------------------------------------------------------------
# jieba loads its dictionary (~1 s) on first use; do it once, quietly, and under a lock because Celery
# workers with threads may score two runs at once.
_init_lock = threading.Lock()


class _RougeScorer(Protocol):
    """The part of ``rouge_chinese.Rouge`` we use (the package has no type information)."""

    def get_scores(self, hyps: str, refs: str) -> list[dict[str, dict[str, float]]]: ...


@dataclass(frozen=True)
class _Tools:
    jieba_cut: Callable[[str], Iterable[str]]
    sentence_bleu: Callable[..., float]
    smoothing: Callable[..., Any]
    rouge: _RougeScorer
    en_tokenize: Callable[[str], list[str]]


_tools: _Tools | None = None


def _get_tools() -> _Tools:
    global _tools
    if _tools is not None:
        return _tools
    with _init_lock:
        if _tools is None:
            import jieba
            from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
            from rouge_chinese import Rouge
            from rouge_score.tokenizers import DefaultTokenizer

            jieba.setLogLevel(logging.CRITICAL)
            with warnings.catch_warnings():
                # jieba 0.42.1 imports pkg_resources, which warns on new setuptools.
                warnings.simplefilter("ignore")
                jieba.initialize()
            _tools = _Tools(
                jieba_cut=jieba.cut,
                sentence_bleu=sentence_bleu,
                smoothing=SmoothingFunction().method3,
                rouge=Rouge(),
                en_tokenize=DefaultTokenizer(use_stemmer=False).tokenize,
            )
    return _tools


def _check_language(language: str) -> None:
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}, got {language!r}")


def tokenize_en(text: str) -> list[str]:
    """English word tokens exactly as rouge-score's default tokenizer makes them."""
    return _get_tools().en_tokenize(text)


def _bleu4(ref_units: list[str], hyp_units: list[str]) -> float:
    tools = _get_tools()
    with warnings.catch_warnings():
        # NLTK warns about zero n-gram overlaps on short texts; the smoothed score is still what we want.
        warnings.simplefilter("ignore")
        score = tools.sentence_bleu(
            [ref_units], hyp_units, weights=(0.25, 0.25, 0.25, 0.25), smoothing_function=tools.smoothing
        )
    return float(score) * 100.0


def _rouge(hyp_tokens: list[str], ref_tokens: list[str]) -> tuple[float, float, float]:
    hyp_text, ref_text = " ".join(hyp_tokens), " ".join(ref_tokens)
    # Same guard as LLaMA-Factory: no token on either side -> 0 (rouge_chinese would raise).
    if not hyp_text.split() or not ref_text.split():
        return 0.0, 0.0, 0.0
    try:
        result = _get_tools().rouge.get_scores(hyp_text, ref_text)[0]
    except ValueError:
        # rouge_chinese raises "Hypothesis is empty" for inputs its sentence splitter reduces to nothing;
        # LLaMA-Factory would crash here, we score the round 0 like an empty one.
        return 0.0, 0.0, 0.0
    return (
        float(result["rouge-1"]["f"]) * 100.0,
        float(result["rouge-2"]["f"]) * 100.0,
        float(result["rouge-l"]["f"]) * 100.0,
    )


def score_round(hyp: str, ref: str, language: str, round_digits: int | None = None) -> RoundScores:
    """Score one generated reply ``hyp`` against the gold reply ``ref`` (scores ×100).

    ``language`` is "zh" (characters for BLEU, jieba words for ROUGE) or "en" (rouge-score tokens for
    both). ``round_digits=4`` reproduces LLaMA-Factory's per-round rounding.
    """
    _check_language(language)
    if not isinstance(hyp, str) or not isinstance(ref, str):
        raise TypeError(f"hyp and ref must be str, got {type(hyp).__name__} and {type(ref).__name__}")
    if language == "zh":
        bleu = _bleu4(list(ref), list(hyp))
        cut = _get_tools().jieba_cut
        rouge = _rouge(list(cut(hyp)), list(cut(ref)))
    else:
        hyp_tokens, ref_tokens = tokenize_en(hyp), tokenize_en(ref)
        bleu = _bleu4(ref_tokens, hyp_tokens)
        rouge = _rouge(hyp_tokens, ref_tokens)
    values: tuple[float, ...] = (bleu, *rouge)
    if round_digits is not None:
        values = tuple(round(v, round_digits) for v in values)
    stripped = hyp.strip()
    return RoundScores(
        bleu4=values[0],
        rouge1=values[1],
        rouge2=values[2],
        rougeL=values[3],
        length=len(stripped),
        empty=not stripped,
    )


def _units_for_distinct(text: str, language: str) -> list[str]:
    if language == "zh":
        return [ch for ch in text if not ch.isspace()]
    return tokenize_en(text)


def distinct_n(texts: Sequence[str], n: int, language: str) -> float | None:
    """Distinct-n over a set of replies: distinct n-grams / all n-grams (pooled, never across replies).

    Units are non-whitespace characters for "zh" and rouge-score tokens for "en". None when no reply
    has n units.
    """
    _check_language(language)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    seen: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        units = _units_for_distinct(text, language)
        grams = [tuple(units[i : i + n]) for i in range(len(units) - n + 1)]
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else None


def _means(rows: Sequence[ScoredRound]) -> MeanScores:
    n = len(rows)
    if n == 0:
        return MeanScores(0, None, None, None, None, None, None)
    sums = {name: math.fsum(getattr(r, name) for r in rows) for name in _SCORE_FIELDS}
    return MeanScores(
        n_rounds=n,
        bleu4=sums["bleu4"] / n,
        rouge1=sums["rouge1"] / n,
        rouge2=sums["rouge2"] / n,
        rougeL=sums["rougeL"] / n,
        length=sums["length"] / n,
        empty_rate=sum(r.empty for r in rows) / n,
    )


def score_rounds(pairs: Sequence[RoundPair], language: str, round_digits: int | None = None) -> MetricReport:
    """Score every round and summarise: pooled means, per-dialogue means, distinct-1/2, empty rate.

    ``pairs`` must not repeat a (dialogue_id, round_index). Rounds with an empty reply stay in every
    mean with score 0, as in LLaMA-Factory.
    """
    _check_language(language)
    seen: set[tuple[Any, int]] = set()
    scored: list[ScoredRound] = []
    hyps: list[str] = []
    for position, pair in enumerate(pairs):
        key = (pair.dialogue_id, pair.round_index)
        if key in seen:
            raise ValueError(
                f"pairs[{position}]: duplicate round (dialogue_id={pair.dialogue_id!r}, "
                f"round_index={pair.round_index})"
            )
        seen.add(key)
        try:
            s = score_round(pair.hyp, pair.ref, language, round_digits=round_digits)
        except TypeError as exc:
            raise TypeError(
                f"pairs[{position}] (dialogue_id={pair.dialogue_id!r}, round_index={pair.round_index}): {exc}"
            ) from exc
        hyps.append(pair.hyp)
        scored.append(
            ScoredRound(
                pair.dialogue_id, pair.round_index, s.bleu4, s.rouge1, s.rouge2, s.rougeL, s.length, s.empty
            )
        )

    by_dialogue: dict[Any, list[ScoredRound]] = {}
    for row in scored:
        by_dialogue.setdefault(row.dialogue_id, []).append(row)
    pooled = _means(scored)
    return MetricReport(
        language=language,
        tokenizer=TOKENIZER_NAMES[language],
        n_rounds=len(scored),
        n_dialogues=len(by_dialogue),
        pooled=pooled,
        per_dialogue={d: _means(rows) for d, rows in by_dialogue.items()},
        per_round=scored,
        distinct_1=distinct_n(hyps, 1, language),
        distinct_2=distinct_n(hyps, 2, language),
        empty_rate=pooled.empty_rate,
    )

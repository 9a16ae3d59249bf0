"""A machine coder: a scikit-learn classifier that codes counselor utterances like a human coder.

Pure (no Django). The Django side (``MachineCoder``, the training job, coding a round) hands this
module plain :class:`UtteranceSample` rows and label strings — MITI behaviour-code keys or any other
labels — and stores the file :meth:`TrainedCoder.save` writes. docs/machine_coding.md explains the
features and reports the agreement they reach on AnnoMI.

Features (each block is a step of one scikit-learn ``FeatureUnion``, so the fitted vocabulary travels
inside the saved file):

* word 1–2-gram (one token per CJK character) and character 2–5-gram TF-IDF of the utterance; character n-grams inside word
  boundaries make Chinese work without a tokenizer;
* word TF-IDF of the client turn the volley answers: what a coder reads before deciding;
* a few dense, scaled numbers about the volley and the client turn: position in the volley, question
  marks, lengths, and how much of the utterance repeats the client's words (overlap, novelty, length
  ratio). A complex reflection adds meaning beyond what the client said, a simple one mostly
  mirrors it, which the text of the utterance alone cannot show.

Then one multinomial logistic regression with balanced class weights (rare codes are not drowned by
``NONE`` and ``Q``). Below ``SMALL_DATA`` training samples a smaller profile applies (word unigrams and
the dense block only, stronger regularisation): see :func:`_pipeline`.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import cohen_kappa_score, confusion_matrix, f1_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

# Written into every saved file; load() refuses files without it (a pickle is code, so only files the
# platform wrote itself are ever loaded — the Django side keeps them under MI_VAR_DIR).
FILE_FORMAT = "mi-platform machine coder"
FILE_VERSION = 1

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class UtteranceSample:
    """One counselor utterance to code, with the context a human coder sees."""

    text: str  # the counselor utterance to code
    previous_client: str  # the client turn it answers ("" when none)
    position: int  # 0-based index of the utterance within its volley
    volley_size: int  # utterances in that volley
    group: str  # transcript key: cross-validation folds never split a transcript


@dataclass(frozen=True)
class FoldScores:
    kappa: float
    macro_f1: float
    n: int


@dataclass(frozen=True)
class CrossValidation:
    kappa: float  # mean Cohen's kappa over folds (sklearn.metrics.cohen_kappa_score)
    macro_f1: float  # mean macro-F1 over folds
    folds: tuple[FoldScores, ...]
    labels: tuple[str, ...]
    confusion: tuple[tuple[int, ...], ...]  # summed over folds, rows = true, cols = predicted, order = labels


# --------------------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------------------

# A CJK character is a token of its own (Chinese has no spaces); elsewhere a run of word characters.
_TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\W\u3400-\u9fff\uf900-\ufaff]+")
_QUESTION_MARKS = ("?", "？")
DENSE_FEATURES: tuple[str, ...] = (
    "position",  # 0 for the first utterance of the volley, 1 for the last
    "first",
    "last",
    "log_volley_size",
    "question_mark",
    "ends_with_question_mark",
    "log_tokens",
    "log_client_tokens",
    "no_client",
    "overlap_of_utterance",  # share of the utterance's distinct tokens the client said
    "overlap_of_client",  # share of the client's distinct tokens the utterance repeats
    "novel_tokens",  # log count of the utterance's distinct tokens the client did not say
    "bigram_overlap",  # share of the utterance's token bigrams found in the client turn
    "log_length_ratio",  # log(utterance tokens + 1) - log(client tokens + 1)
    "content_overlap",  # share of the utterance's content stems (no function words) the client said
    "novel_content",  # log count of content stems the client did not say
    "char_trigram_containment",  # share of the utterance's character trigrams found in the client turn
    "char_trigram_jaccard",
    "log_chars",
)


# Function words that say nothing about whether a reflection adds meaning: overlap is measured on the
# rest. Short on purpose; Chinese needs none (one character per token, and the char trigrams below).
_FUNCTION_WORDS = frozenset(
    "a an the and or but so to of in on at for with about is are was were be been being am i you he she "
    "it we they me him her us them my your his its our their this that these those there here what do "
    "does did have has had not no yes just really like um uh mm hmm okay ok yeah well right can could "
    "would will should if then than as by from up out all some any very".split()
)


def _stem(token: str) -> str:
    # A crude stem (first five characters) lets "drinking" meet "drink" and "worried" meet "worry".
    return token[:5] if token.isascii() else token


def _char_trigrams(text: str) -> set[str]:
    squeezed = " ".join(text.lower().split())
    return {squeezed[i : i + 3] for i in range(len(squeezed) - 2)}


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens, one per CJK character."""
    return _TOKEN.findall(text.lower())


def _texts(samples: Sequence[UtteranceSample]) -> list[str]:
    return [sample.text for sample in samples]


def _client_texts(samples: Sequence[UtteranceSample]) -> list[str]:
    return [sample.previous_client for sample in samples]


def _dense_row(sample: UtteranceSample) -> list[float]:
    own = tokens(sample.text)
    client = tokens(sample.previous_client)
    own_set, client_set = set(own), set(client)
    shared = len(own_set & client_set)
    own_bigrams = set(zip(own, own[1:], strict=False))
    client_bigrams = set(zip(client, client[1:], strict=False))
    size = max(sample.volley_size, 1)
    text = sample.text.strip()
    own_content = {_stem(t) for t in own_set if t not in _FUNCTION_WORDS}
    client_content = {_stem(t) for t in client_set if t not in _FUNCTION_WORDS}
    own_grams, client_grams = _char_trigrams(text), _char_trigrams(sample.previous_client)
    shared_grams = len(own_grams & client_grams)
    return [
        sample.position / (size - 1) if size > 1 else 0.0,
        float(sample.position == 0),
        float(sample.position >= size - 1),
        math.log1p(size),
        float(any(mark in text for mark in _QUESTION_MARKS)),
        float(text.endswith(_QUESTION_MARKS)),
        math.log1p(len(own)),
        math.log1p(len(client)),
        float(not client),
        shared / len(own_set) if own_set else 0.0,
        shared / len(client_set) if client_set else 0.0,
        math.log1p(len(own_set - client_set)),
        len(own_bigrams & client_bigrams) / len(own_bigrams) if own_bigrams else 0.0,
        math.log1p(len(own)) - math.log1p(len(client)),
        len(own_content & client_content) / len(own_content) if own_content else 0.0,
        math.log1p(len(own_content - client_content)),
        shared_grams / len(own_grams) if own_grams else 0.0,
        shared_grams / len(own_grams | client_grams) if own_grams | client_grams else 0.0,
        math.log1p(len(text)),
    ]


def dense_features(samples: Sequence[UtteranceSample]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """The dense block, one row per sample, columns named by :data:`DENSE_FEATURES`."""
    rows = [_dense_row(sample) for sample in samples]
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(DENSE_FEATURES))


# Below this many training samples the coder uses the small profile (see _pipeline).
SMALL_DATA = 2000


def _text_block(extract: Callable[[Sequence[UtteranceSample]], list[str]], vectorizer: Any) -> Any:
    # Module-level functions (not lambdas) throughout, so that joblib can pickle the fitted pipeline.
    return Pipeline([("text", FunctionTransformer(extract)), ("tfidf", vectorizer)])


def _words(ngrams: int) -> Any:
    # tokens(): one token per CJK character, so Chinese gets word features without a segmenter.
    return TfidfVectorizer(
        tokenizer=tokens, token_pattern=None, lowercase=False, ngram_range=(1, ngrams), sublinear_tf=True, min_df=2
    )


def _times(matrix: Any, weight: float) -> Any:
    return matrix * weight


def _context_block(weight: float) -> Any:
    steps = [("numbers", FunctionTransformer(dense_features)), ("scale", StandardScaler())]
    if weight != 1.0:
        steps.append(("weight", FunctionTransformer(_times, kw_args={"weight": weight})))
    return Pipeline(steps)


def _pipeline(seed: int, samples: int) -> Any:
    """The features and the model; the profile depends on the number of training samples.

    * **Full** (``SMALL_DATA`` samples or more): word 1–2-grams, character 2–5-grams, the client turn's
      words and the context numbers; C = 1.
    * **Small** (fewer): word unigrams and the context numbers (scaled down to 0.3), C = 0.1. With about
      a thousand samples the tens of thousands of n-gram columns of the full profile overfit; on
      AnnoMI's reflection slot (1,299 samples) the full profile is no better than the length rule.
    """
    if samples < SMALL_DATA:
        blocks = [("words", _text_block(_texts, _words(1))), ("context", _context_block(0.3))]
        c_value = 0.1
    else:
        chars = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2, max_features=60_000
        )
        blocks = [
            ("words", _text_block(_texts, _words(2))),
            ("chars", _text_block(_texts, chars)),
            ("client", _text_block(_client_texts, _words(1))),
            ("context", _context_block(1.0)),
        ]
        c_value = 1.0
    model = LogisticRegression(C=c_value, max_iter=3000, class_weight="balanced", random_state=seed)
    return Pipeline([("features", FeatureUnion(blocks)), ("model", model)])


# --------------------------------------------------------------------------------------------------
# Training and prediction
# --------------------------------------------------------------------------------------------------


class TrainedCoder:
    """A fitted machine coder: codes samples, gives per-label probabilities, saves to one file."""

    def __init__(self, pipeline: Any, labels: tuple[str, ...], metadata: dict[str, Any]) -> None:
        self._pipeline = pipeline
        self.labels = labels
        self.metadata = metadata

    def predict(self, samples: Sequence[UtteranceSample]) -> list[str]:
        if not samples:
            return []
        return [str(label) for label in self._pipeline.predict(list(samples))]

    def predict_proba(self, samples: Sequence[UtteranceSample]) -> list[dict[str, float]]:
        if not samples:
            return []
        classes = [str(label) for label in self._pipeline.classes_]
        matrix = self._pipeline.predict_proba(list(samples))
        return [{label: float(row[classes.index(label)]) for label in self.labels} for row in matrix]

    def save(self, path: Path) -> None:
        """Write the coder, its labels and metadata to one joblib file (its folder is created)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            "labels": list(self.labels),
            "metadata": self.metadata,
            "pipeline": self._pipeline,
        }
        joblib.dump(payload, path, compress=3)

    @classmethod
    def load(cls, path: Path) -> TrainedCoder:
        """Read a file :meth:`save` wrote; ValueError when it is not one (or of a newer version)."""
        payload = joblib.load(path)
        if not isinstance(payload, dict) or payload.get("format") != FILE_FORMAT:
            raise ValueError(f"{path} is not a machine coder file written by the platform")
        if payload.get("version") != FILE_VERSION:
            raise ValueError(
                f"{path} is a machine coder file of version {payload.get('version')!r}; "
                f"this platform reads version {FILE_VERSION}"
            )
        return cls(payload["pipeline"], tuple(payload["labels"]), dict(payload["metadata"]))


def _check(samples: Sequence[UtteranceSample], labels: Sequence[str]) -> list[str]:
    if len(samples) != len(labels):
        raise ValueError(f"got {len(samples)} samples but {len(labels)} labels; need one label per sample")
    if not samples:
        raise ValueError("no samples to train on")
    distinct = sorted({str(label) for label in labels})
    if len(distinct) < 2:
        raise ValueError(
            f"all {len(labels)} samples carry the same label {distinct[0]!r}; "
            "a coder needs at least two different labels to learn to tell them apart"
        )
    return [str(label) for label in labels]


def train(
    samples: Sequence[UtteranceSample],
    labels: Sequence[str],
    *,
    seed: int = 0,
    progress: Progress | None = None,
) -> TrainedCoder:
    """Fit a coder on ``samples`` with their ``labels``; ``progress(done, total)`` after each step."""
    y = _check(samples, labels)
    pipeline = _pipeline(seed, len(samples))
    total = 2
    if progress is not None:
        progress(0, total)
    features = pipeline.named_steps["features"].fit_transform(list(samples))
    if progress is not None:
        progress(1, total)
    with warnings.catch_warnings():
        # lbfgs may stop a hair short of its tolerance on large vocabularies; the fit is still usable
        # and the cross-validation figures are what tell whether it is good enough.
        warnings.simplefilter("ignore", category=UserWarning)
        pipeline.named_steps["model"].fit(features, y)
    if progress is not None:
        progress(2, total)
    labels_order = tuple(str(label) for label in pipeline.classes_)
    counts = {label: y.count(label) for label in labels_order}
    metadata: dict[str, Any] = {
        "samples": len(samples),
        "groups": len({sample.group for sample in samples}),
        "label_counts": counts,
        "seed": seed,
        "sklearn": sklearn.__version__,
        "profile": "small" if len(samples) < SMALL_DATA else "full",
        "features": [name for name, _ in pipeline.named_steps["features"].transformer_list],
    }
    return TrainedCoder(pipeline, labels_order, metadata)


# --------------------------------------------------------------------------------------------------
# Cross-validation
# --------------------------------------------------------------------------------------------------


def fold_indices(
    samples: Sequence[UtteranceSample],
    labels: Sequence[str],
    *,
    folds: int = 5,
    seed: int = 0,
) -> list[tuple[list[int], list[int]]]:
    """(train, test) index lists of transcript-level folds, stratified by label as far as groups allow.

    A transcript (``group``) is never split between folds: its utterances share a counselor, a client
    and a topic, so a fold that trained on half of a transcript would flatter the coder.
    """
    y = _check(samples, labels)
    if folds < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {folds}")
    groups = [sample.group for sample in samples]
    distinct = len(set(groups))
    if distinct < folds:
        raise ValueError(
            f"{folds} folds need at least {folds} transcripts (groups), but the samples come from "
            f"{distinct}; folds never split a transcript"
        )
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # "The least populated class has only n members": expected with rare codes; folds stay valid.
        warnings.simplefilter("ignore", category=UserWarning)
        splits = list(splitter.split(np.zeros(len(y)), y, groups))
    return [([int(i) for i in train_index], [int(i) for i in test_index]) for train_index, test_index in splits]


def score(true: Sequence[str], predicted: Sequence[str]) -> FoldScores:
    """Cohen's kappa and macro-F1 of ``predicted`` against ``true`` (kappa 0 where it is undefined)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        kappa = float(cohen_kappa_score(list(true), list(predicted)))
    if math.isnan(kappa):  # both sides constant and equal: no agreement beyond chance to speak of
        kappa = 0.0
    macro = float(f1_score(list(true), list(predicted), average="macro", zero_division=0))
    return FoldScores(kappa=kappa, macro_f1=macro, n=len(true))


def cross_validate(
    samples: Sequence[UtteranceSample],
    labels: Sequence[str],
    *,
    folds: int = 5,
    seed: int = 0,
    progress: Progress | None = None,
) -> CrossValidation:
    """Transcript-level k-fold cross-validation: kappa and macro-F1 per fold, their means, a confusion.

    ``progress(done, folds)`` after each fold.
    """
    y = _check(samples, labels)
    splits = fold_indices(samples, y, folds=folds, seed=seed)
    all_labels = tuple(sorted(set(y)))
    confusion = np.zeros((len(all_labels), len(all_labels)), dtype=np.int64)
    scores: list[FoldScores] = []
    if progress is not None:
        progress(0, folds)
    for done, (train_index, test_index) in enumerate(splits, start=1):
        train_y = [y[i] for i in train_index]
        if len(set(train_y)) < 2:
            raise ValueError(
                f"fold {done} would train on one label only ({train_y[0]!r}); "
                "give more transcripts with other labels or fewer folds"
            )
        coder = train([samples[i] for i in train_index], train_y, seed=seed)
        test_y = [y[i] for i in test_index]
        predicted = coder.predict([samples[i] for i in test_index])
        scores.append(score(test_y, predicted))
        confusion += confusion_matrix(test_y, predicted, labels=list(all_labels))
        if progress is not None:
            progress(done, folds)
    return CrossValidation(
        kappa=float(np.mean([fold.kappa for fold in scores])),
        macro_f1=float(np.mean([fold.macro_f1 for fold in scores])),
        folds=tuple(scores),
        labels=all_labels,
        confusion=tuple(tuple(int(value) for value in row) for row in confusion),
    )

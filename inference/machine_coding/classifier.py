"""A MITI behaviour-code classifier trained on coded utterances (stand-in core; pure, no Django).

Character n-gram TF-IDF of the utterance and of the client turn before it, plus its position in the
volley, into a logistic regression. Cross-validation is by transcript (``group``): utterances of one
transcript never sit in both the training and the validation part of a fold.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import cohen_kappa_score, confusion_matrix, f1_score
from sklearn.model_selection import GroupKFold


@dataclass(frozen=True)
class UtteranceSample:
    text: str
    previous_client: str
    position: int
    volley_size: int
    group: str


@dataclass(frozen=True)
class FoldScores:
    kappa: float
    macro_f1: float
    n: int


@dataclass(frozen=True)
class CrossValidation:
    kappa: float
    macro_f1: float
    folds: tuple[FoldScores, ...]
    labels: tuple[str, ...]
    confusion: tuple[tuple[int, ...], ...]


Progress = Callable[[int, int], None]


class TrainedCoder:
    """A fitted classifier: ``predict`` gives one code per sample."""

    def __init__(self, text: TfidfVectorizer, context: TfidfVectorizer, model: Any, labels: tuple[str, ...]) -> None:
        self._text, self._context, self._model, self.labels = text, context, model, labels

    def _features(self, samples: Sequence[UtteranceSample]) -> Any:
        return _features(self._text, self._context, samples, fit=False)

    def predict(self, samples: Sequence[UtteranceSample]) -> list[str]:
        if not samples:
            return []
        if len(self.labels) == 1:
            return [self.labels[0]] * len(samples)
        return [str(label) for label in self._model.predict(self._features(samples))]

    def predict_proba(self, samples: Sequence[UtteranceSample]) -> list[dict[str, float]]:
        if not samples:
            return []
        if len(self.labels) == 1:
            return [{self.labels[0]: 1.0} for _ in samples]
        proba = self._model.predict_proba(self._features(samples))
        classes = [str(c) for c in self._model.classes_]
        return [{c: float(p) for c, p in zip(classes, row, strict=True)} for row in proba]

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(self))

    @classmethod
    def load(cls, path: Path) -> TrainedCoder:
        coder = pickle.loads(path.read_bytes())  # noqa: S301 - our own artefact under MI_MODEL_STORE
        if not isinstance(coder, cls):
            raise ValueError(f"{path} is not a trained coder")
        return coder


def _features(
    text: TfidfVectorizer, context: TfidfVectorizer, samples: Sequence[UtteranceSample], *, fit: bool
) -> Any:
    texts = [s.text for s in samples]
    contexts = [s.previous_client for s in samples]
    a = text.fit_transform(texts) if fit else text.transform(texts)
    b = context.fit_transform(contexts) if fit else context.transform(contexts)
    position = csr_matrix(
        np.array([[s.position == 0, s.position == s.volley_size - 1] for s in samples], dtype=float)
    )
    return hstack([a, b * 0.5, position]).tocsr()


def _vectorizers() -> tuple[TfidfVectorizer, TfidfVectorizer]:
    return (
        TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, min_df=1),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 2), sublinear_tf=True, min_df=1, max_features=5000),
    )


def train(
    samples: Sequence[UtteranceSample], labels: Sequence[str], *, seed: int = 0, progress: Progress | None = None
) -> TrainedCoder:
    """Fit on every sample; ``progress(done, total)`` is called once at the end."""
    if len(samples) != len(labels):
        raise ValueError("one label per sample")
    if not samples:
        raise ValueError("nothing to train on")
    text, context = _vectorizers()
    classes = tuple(sorted(set(labels)))
    model: Any = None
    if len(classes) > 1:
        model = LogisticRegression(max_iter=1000, class_weight="balanced", random_state=seed)
        model.fit(_features(text, context, samples, fit=True), list(labels))
    else:
        _features(text, context, samples, fit=True)
    if progress is not None:
        progress(1, 1)
    return TrainedCoder(text, context, model, classes)


def cross_validate(
    samples: Sequence[UtteranceSample],
    labels: Sequence[str],
    *,
    folds: int = 5,
    seed: int = 0,
    progress: Progress | None = None,
) -> CrossValidation:
    """Transcript-level k-fold (``GroupKFold`` on ``group``): Cohen's kappa and macro F1 per fold and pooled."""
    groups = [s.group for s in samples]
    n_groups = len(set(groups))
    if n_groups < 2:
        raise ValueError("cross-validation needs utterances of at least two transcripts")
    k = min(folds, n_groups)
    all_labels = tuple(sorted(set(labels)))
    truth: list[str] = []
    predicted: list[str] = []
    scores: list[FoldScores] = []
    for i, (train_idx, test_idx) in enumerate(GroupKFold(n_splits=k).split(samples, labels, groups)):
        coder = train([samples[j] for j in train_idx], [labels[j] for j in train_idx], seed=seed)
        fold_truth = [labels[j] for j in test_idx]
        fold_pred = coder.predict([samples[j] for j in test_idx])
        scores.append(FoldScores(_kappa(fold_truth, fold_pred), _f1(fold_truth, fold_pred), len(test_idx)))
        truth += fold_truth
        predicted += fold_pred
        if progress is not None:
            progress(i + 1, k)
    matrix = confusion_matrix(truth, predicted, labels=list(all_labels))
    return CrossValidation(
        kappa=_kappa(truth, predicted),
        macro_f1=_f1(truth, predicted),
        folds=tuple(scores),
        labels=all_labels,
        confusion=tuple(tuple(int(v) for v in row) for row in matrix),
    )


def _kappa(truth: Sequence[str], predicted: Sequence[str]) -> float:
    if len(set(truth) | set(predicted)) < 2:
        return 1.0 if list(truth) == list(predicted) else 0.0
    return float(cohen_kappa_score(truth, predicted))


def _f1(truth: Sequence[str], predicted: Sequence[str]) -> float:
    return float(f1_score(truth, predicted, average="macro", zero_division=0))

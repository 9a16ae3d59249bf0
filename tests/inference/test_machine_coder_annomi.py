"""The machine coder against AnnoMI's annotators (issue 16): transcript-level 5-fold cross-validation.

Skips where AnnoMI-full is absent (a clean clone, CI without the data). Baselines are computed on the
very same folds (``fold_indices`` with the same seed is what ``cross_validate`` uses). The figures are
printed (``pytest -s``) and recorded in docs/machine_coding.md and docs/benchmarks.md.
"""

from __future__ import annotations

import statistics

import pytest

from inference.machine_coding.annomi import load_annomi
from inference.machine_coding.classifier import cross_validate, fold_indices, score
from tests.conftest import shared_data


def _rule_scores(samples, labels, predict_fold):
    """Mean kappa and macro-F1 of a rule; ``predict_fold(train_index, test_index)`` gives predictions."""
    folds = []
    for train_index, test_index in fold_indices(samples, labels, folds=5, seed=0):
        predicted = predict_fold(train_index, test_index)
        folds.append(score([labels[i] for i in test_index], predicted))
    return statistics.mean(f.kappa for f in folds), statistics.mean(f.macro_f1 for f in folds)


def test_main_behaviour_beats_the_question_mark_rule():
    samples, labels = load_annomi(shared_data("AnnoMI", "AnnoMI-full.csv"), "main")
    assert len(samples) == 4882  # therapist utterances, one annotation each

    def question_mark(train_index, test_index):
        return ["question" if "?" in samples[i].text else "other" for i in test_index]

    rule_kappa, rule_f1 = _rule_scores(samples, labels, question_mark)
    result = cross_validate(samples, labels, folds=5, seed=0)
    print(
        f"\nAnnoMI main behaviour, 5 transcript-level folds, n={len(samples)}: "
        f"question-mark rule kappa {rule_kappa:.3f} macro-F1 {rule_f1:.3f}; "
        f"machine coder kappa {result.kappa:.3f} macro-F1 {result.macro_f1:.3f} "
        f"(folds: {', '.join(f'{f.kappa:.3f}' for f in result.folds)})"
    )
    assert result.labels == ("other", "question", "reflection", "therapist_input")
    assert 0.30 < rule_kappa < 0.45  # the rule is what it is said to be
    assert result.kappa >= 0.65
    assert result.kappa - rule_kappa >= 0.25


def test_reflection_slot_beats_the_length_rule():
    samples, labels = load_annomi(shared_data("AnnoMI", "AnnoMI-full.csv"), "reflection")
    assert len(samples) == 1299 and sorted(set(labels)) == ["CR", "SR"]

    def longer_is_complex(train_index, test_index):
        # The threshold is the median length (words) of the fold's training reflections.
        median = statistics.median(len(samples[i].text.split()) for i in train_index)
        return ["CR" if len(samples[i].text.split()) > median else "SR" for i in test_index]

    rule_kappa, rule_f1 = _rule_scores(samples, labels, longer_is_complex)
    result = cross_validate(samples, labels, folds=5, seed=0)
    print(
        f"\nAnnoMI reflection slot (simple vs complex), 5 transcript-level folds, n={len(samples)}: "
        f"length rule kappa {rule_kappa:.3f} macro-F1 {rule_f1:.3f}; "
        f"machine coder kappa {result.kappa:.3f} macro-F1 {result.macro_f1:.3f} "
        f"(folds: {', '.join(f'{f.kappa:.3f}' for f in result.folds)})"
    )
    assert 0.15 < rule_kappa < 0.30
    assert result.kappa >= rule_kappa + 0.05
    assert result.macro_f1 > rule_f1


@pytest.mark.parametrize("task", ["main", "reflection"])
def test_annomi_samples_keep_one_annotation_per_utterance_and_the_client_turn(task):
    samples, labels = load_annomi(shared_data("AnnoMI", "AnnoMI-full.csv"), task)
    assert len({s.group for s in samples}) > 100
    assert all(0 <= s.position < s.volley_size for s in samples)
    if task == "main":
        assert len({s.group for s in samples}) == 133
        # Transcript 0 opens with the therapist: no client turn before it.
        assert samples[0].group == "0" and samples[0].previous_client == ""
    assert sum(1 for s in samples if s.previous_client) > 0.9 * len(samples)

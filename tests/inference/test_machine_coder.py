"""The machine coder's classifier on synthetic samples (no data set needed): training, folds, files.

The AnnoMI benchmark lives in test_machine_coder_annomi.py and skips where the data is absent.
"""

from __future__ import annotations

import random

import pytest

from inference.machine_coding.classifier import (
    CrossValidation,
    TrainedCoder,
    UtteranceSample,
    cross_validate,
    dense_features,
    fold_indices,
    tokens,
    train,
)

QUESTIONS = ["What brings you here today?", "How do you feel about drinking?", "你最近睡得怎么样？",
             "What would you like to change?", "Can you tell me more about that?"]
REFLECTIONS = ["So you feel tired all the time.", "It sounds like work is a lot for you.",
               "听起来你很累。", "You are worried about your health.", "You want things to be different."]
OTHERS = ["Okay.", "Mm-hmm.", "Thank you for coming in.", "好的。", "Right, I see."]


def corpus(transcripts: int = 12, seed: int = 1) -> tuple[list[UtteranceSample], list[str]]:
    """Synthetic transcripts: each has questions, reflections and fillers after varied client turns."""
    rng = random.Random(seed)
    samples: list[UtteranceSample] = []
    labels: list[str] = []
    for t in range(transcripts):
        for _ in range(9):
            label = rng.choice(["Q", "SR", "NONE"])
            pool = {"Q": QUESTIONS, "SR": REFLECTIONS, "NONE": OTHERS}[label]
            size = rng.randint(1, 3)
            samples.append(
                UtteranceSample(
                    text=rng.choice(pool),
                    previous_client=rng.choice(["I drink too much.", "工作压力很大。", ""]),
                    position=rng.randrange(size),
                    volley_size=size,
                    group=f"t{t}",
                )
            )
            labels.append(label)
    return samples, labels


def test_trained_coder_learns_the_labels_and_orders_them():
    samples, labels = corpus()
    coder = train(samples, labels)
    assert coder.labels == ("NONE", "Q", "SR")  # sorted, the order of predict_proba's keys
    test = [
        UtteranceSample("What brings you here today?", "I drink too much.", 0, 1, "new"),
        UtteranceSample("听起来你很累。", "工作压力很大。", 0, 1, "new"),
        UtteranceSample("Mm-hmm.", "", 0, 1, "new"),
    ]
    assert coder.predict(test) == ["Q", "SR", "NONE"]
    probabilities = coder.predict_proba(test)
    assert [list(row) for row in probabilities] == [["NONE", "Q", "SR"]] * 3
    for row, predicted in zip(probabilities, coder.predict(test), strict=True):
        assert sum(row.values()) == pytest.approx(1.0)
        assert max(row, key=row.__getitem__) == predicted
    assert coder.predict([]) == [] and coder.predict_proba([]) == []
    assert coder.metadata["samples"] == len(samples) and coder.metadata["groups"] == 12


def test_save_and_load_give_the_same_predictions(tmp_path):
    samples, labels = corpus()
    coder = train(samples, labels, seed=3)
    path = tmp_path / "coder.joblib"
    coder.save(path)
    assert path.is_file() and [p.name for p in tmp_path.iterdir()] == ["coder.joblib"]  # one file
    loaded = TrainedCoder.load(path)
    assert loaded.labels == coder.labels
    assert loaded.metadata == coder.metadata
    assert loaded.predict(samples) == coder.predict(samples)
    assert loaded.predict_proba(samples) == coder.predict_proba(samples)


def test_load_refuses_a_file_that_is_not_a_coder(tmp_path):
    import joblib

    path = tmp_path / "other.joblib"
    joblib.dump({"something": 1}, path)
    with pytest.raises(ValueError, match="not a machine coder file"):
        TrainedCoder.load(path)


def test_folds_never_split_a_transcript_and_cover_every_sample_once():
    samples, labels = corpus(transcripts=13)
    splits = fold_indices(samples, labels, folds=5, seed=0)
    assert len(splits) == 5
    tested: list[int] = []
    for train_index, test_index in splits:
        train_groups = {samples[i].group for i in train_index}
        test_groups = {samples[i].group for i in test_index}
        assert not train_groups & test_groups
        assert sorted(train_index + test_index) == list(range(len(samples)))
        tested += test_index
    assert sorted(tested) == list(range(len(samples)))


def test_cross_validation_reports_means_folds_and_confusion_and_calls_progress():
    samples, labels = corpus()
    calls: list[tuple[int, int]] = []
    result = cross_validate(samples, labels, folds=4, progress=lambda done, total: calls.append((done, total)))
    assert isinstance(result, CrossValidation)
    assert calls == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]
    assert result.labels == ("NONE", "Q", "SR")
    assert len(result.folds) == 4 and sum(fold.n for fold in result.folds) == len(samples)
    assert result.kappa == pytest.approx(sum(f.kappa for f in result.folds) / 4)
    assert result.macro_f1 == pytest.approx(sum(f.macro_f1 for f in result.folds) / 4)
    # Rows are the true labels: each row sums to that label's count.
    assert [sum(row) for row in result.confusion] == [labels.count(label) for label in result.labels]
    assert result.kappa > 0.9  # the synthetic codes are easy: each phrase pool belongs to one label


def test_training_reports_progress():
    samples, labels = corpus()
    calls: list[tuple[int, int]] = []
    train(samples, labels, progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, 2) and calls[-1] == (2, 2)


def test_one_label_only_is_refused_with_a_reason():
    samples, _ = corpus(transcripts=6)
    with pytest.raises(ValueError, match="same label 'Q'.*at least two different labels"):
        train(samples, ["Q"] * len(samples))
    with pytest.raises(ValueError, match="same label"):
        cross_validate(samples, ["Q"] * len(samples))


def test_fewer_transcripts_than_folds_is_refused_with_a_reason():
    samples, labels = corpus(transcripts=3)
    with pytest.raises(ValueError, match="5 folds need at least 5 transcripts .* come from 3"):
        cross_validate(samples, labels, folds=5)
    with pytest.raises(ValueError, match="at least 2 folds"):
        cross_validate(samples, labels, folds=1)


def test_labels_and_samples_must_match_in_number():
    samples, labels = corpus(transcripts=6)
    with pytest.raises(ValueError, match="one label per sample"):
        train(samples, labels[:-1])
    with pytest.raises(ValueError, match="no samples"):
        train([], [])


def test_overlap_features_see_what_the_reflection_adds_to_the_client_turn():
    client = "I drink every night and I hate it"
    simple = UtteranceSample("You drink every night.", client, 0, 1, "t")
    complex_ = UtteranceSample("Part of you wants a different life for your family.", client, 0, 1, "t")
    rows = dense_features([simple, complex_])
    from inference.machine_coding.classifier import DENSE_FEATURES

    overlap = DENSE_FEATURES.index("overlap_of_utterance")
    novel = DENSE_FEATURES.index("novel_tokens")
    assert rows.shape == (2, len(DENSE_FEATURES))
    assert rows[0, overlap] == pytest.approx(3 / 4)  # you, drink, every, night: three said by the client
    assert rows[1, overlap] == 0.0
    assert rows[1, novel] > rows[0, novel]
    assert tokens("你很累, OK?") == ["你", "很", "累", "ok"]

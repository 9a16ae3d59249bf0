"""Time the machine coder (issue 16): training, and coding 10,000 utterances (target <= 20 s).

Run: .venv/bin/python bench/machine_coder.py [--utterances 10000] [--data DIR]
Trains on AnnoMI-full's therapist utterances (main behaviour; <repo>/../shared/data or $MI_SHARED_DATA)
when present, else on synthetic utterances, and times, side by side in this process, the baseline: a
plain word + character n-gram logistic regression on the utterance text alone. Prints wall and CPU
seconds (CPU time is the steadier figure on a shared machine), the ratio machine coder / baseline, and
PASS/FAIL against the 20 s target for prediction.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import FeatureUnion, make_pipeline  # noqa: E402

from inference.machine_coding.classifier import UtteranceSample, train  # noqa: E402

TARGET_S = 20.0


def _data(folder: Path) -> tuple[list[UtteranceSample], list[str], str]:
    path = folder / "AnnoMI" / "AnnoMI-full.csv"
    if path.is_file():
        from inference.machine_coding.annomi import load_annomi

        samples, labels = load_annomi(path, "main")
        return samples, labels, f"AnnoMI-full main behaviour ({len(samples)} therapist utterances)"
    rng = random.Random(0)
    words = "you feel drink work family so it sounds like what how would want change really time".split()
    samples, labels = [], []
    for i in range(4000):
        label = rng.choice(["Q", "SR", "CR", "GI", "NONE"])
        text = " ".join(rng.choice(words) for _ in range(rng.randint(3, 25))) + ("?" if label == "Q" else ".")
        client = " ".join(rng.choice(words) for _ in range(rng.randint(0, 30)))
        samples.append(UtteranceSample(text, client, 0, 1, f"t{i // 40}"))
        labels.append(label)
    return samples, labels, "synthetic (4000 utterances; AnnoMI-full not found)"


def _timed(fn):  # type: ignore[no-untyped-def]
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--utterances", type=int, default=10_000)
    default = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("MI_SHARED_DATA", default)))
    args = parser.parse_args()

    samples, labels, source = _data(args.data)
    batch = [samples[i % len(samples)] for i in range(args.utterances)]
    print(f"training data: {source}; coding {len(batch):,} utterances; load average {os.getloadavg()[0]:.2f}")

    baseline = make_pipeline(
        FeatureUnion(
            [
                ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)),
                ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)),
            ]
        ),
        LogisticRegression(C=1.0, max_iter=3000, class_weight="balanced"),
    )
    texts = [s.text for s in batch]
    _, base_train_wall, base_train_cpu = _timed(lambda: baseline.fit([s.text for s in samples], labels))
    _, base_pred_wall, base_pred_cpu = _timed(lambda: baseline.predict(texts))
    coder, train_wall, train_cpu = _timed(lambda: train(samples, labels))
    _, pred_wall, pred_cpu = _timed(lambda: coder.predict(batch))

    print(f"{'':34} {'wall s':>8} {'CPU s':>8}")
    print(f"{'baseline n-gram LR: train':34} {base_train_wall:8.2f} {base_train_cpu:8.2f}")
    print(f"{'machine coder: train':34} {train_wall:8.2f} {train_cpu:8.2f}")
    print(f"{'baseline n-gram LR: code batch':34} {base_pred_wall:8.2f} {base_pred_cpu:8.2f}")
    print(f"{'machine coder: code batch':34} {pred_wall:8.2f} {pred_cpu:8.2f}")
    print(f"train ratio machine coder / baseline (CPU): {train_cpu / base_train_cpu:.2f}")
    print(f"coding ratio machine coder / baseline (CPU): {pred_cpu / base_pred_cpu:.2f}")
    rate = len(batch) / pred_wall
    verdict = "PASS" if pred_wall <= TARGET_S * len(batch) / 10_000 else "FAIL"
    print(f"{verdict}: {len(batch):,} utterances coded in {pred_wall:.2f} s wall ({rate:,.0f}/s; target <= {TARGET_S:.0f} s per 10,000)")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())

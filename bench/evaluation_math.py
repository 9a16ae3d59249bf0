"""Time the pure evaluation math on realistic sizes.

Run: .venv/bin/python bench/evaluation_math.py
Uses CPsyCounD replies from <repo>/../shared/data (or $MI_SHARED_DATA) when present, else synthetic text.
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation.aggregate import SummaryRow, aggregate  # noqa: E402
from evaluation.metrics import RoundPair, score_round, score_rounds  # noqa: E402
from evaluation.reliability import icc, krippendorff_alpha  # noqa: E402


def _replies(limit: int) -> list[str]:
    root = Path(
        os.environ.get("MI_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    )
    folder = root / "CPsyCounD" / "Data"
    replies: list[str] = []
    if folder.is_dir():
        for path in sorted(folder.glob("case_*.txt")):
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.startswith("心理咨询师："):
                    replies.append(line[len("心理咨询师：") :])
            if len(replies) > limit:
                return replies[: limit + 1]
    rng = random.Random(0)
    chars = "我你他的了是在有不这听起来很难感受理解压力最近工作家庭，。？"
    return ["".join(rng.choice(chars) for _ in range(50)) for _ in range(limit + 1)]


def _timed(label: str, fn) -> None:
    start = time.perf_counter()
    fn()
    print(f"{label:<52} {time.perf_counter() - start:7.3f} s")


def main() -> None:
    replies = _replies(3000)
    pairs = [RoundPair(i // 8, i % 8, replies[i], replies[i + 1]) for i in range(3000)]
    _timed("jieba/nltk init (first score_round)", lambda: score_round("你好", "你好", "zh"))
    _timed("score_rounds: 3,000 zh rounds", lambda: score_rounds(pairs, "zh"))

    rng = np.random.default_rng(0)
    matrix = rng.integers(1, 6, size=(2000, 2)).astype(float)
    _timed("icc: 2,000 transcripts x 2 coders", lambda: icc(matrix))
    codes = rng.choice(["Q", "SR", "CR", "GI", "NONE"], size=(2, 20000)).tolist()
    _timed(
        "krippendorff_alpha nominal: 2 coders x 20,000 units", lambda: krippendorff_alpha(codes, "nominal")
    )

    r = random.Random(0)
    rows = [
        SummaryRow(f"s{t % 4}", t, c, {"technical": r.randint(2, 10) / 2, "pct_cr": r.random()})
        for t in range(2000)
        for c in ("ann", "bob")
    ]
    _timed("aggregate: 2,000 transcripts x 2 coders", lambda: aggregate(rows, {"technical": (3, 4)}))


if __name__ == "__main__":
    main()

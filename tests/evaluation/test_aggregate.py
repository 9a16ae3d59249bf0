"""Dashboard aggregates: per-source means over transcripts (coders averaged), per-coder stats, shares."""

from __future__ import annotations

import random
import statistics
import time

import pytest

from evaluation.aggregate import SummaryRow, aggregate

THRESHOLDS = {
    "technical": (3.0, 4.0),
    "relational": (3.5, 4.0),
    "pct_cr": (0.40, 0.50),
    "r_to_q": (1.0, 2.0),
    "mia": (None, None),
}


def test_per_source_averages_coders_then_transcripts() -> None:
    rows = [
        SummaryRow("model-a", "t1", "ann", {"technical": 3.0, "pct_cr": 0.3}),
        SummaryRow("model-a", "t1", "bob", {"technical": 4.0, "pct_cr": 0.5}),
        SummaryRow("model-a", "t2", "ann", {"technical": 2.0, "pct_cr": None}),
        SummaryRow("model-a", "t3", "bob", {"technical": 4.5, "pct_cr": 0.6}),
        SummaryRow("reference", "t9", "ann", {"technical": 5.0, "pct_cr": None}),
    ]
    report = aggregate(rows, THRESHOLDS)
    tech = report.per_source["model-a"]["technical"]
    # transcripts: t1 = mean(3, 4) = 3.5, t2 = 2.0, t3 = 4.5
    assert tech.n == 3
    assert tech.mean == pytest.approx(10.0 / 3)
    assert tech.sd == pytest.approx(statistics.stdev([3.5, 2.0, 4.5]))
    assert (tech.n_fair, tech.n_good) == (2, 1)
    assert tech.share_fair == pytest.approx(2 / 3) and tech.share_good == pytest.approx(1 / 3)
    pct = report.per_source["model-a"]["pct_cr"]
    # t1 = mean(0.3, 0.5) = 0.4 exactly at the Fair cut-off; t2 undefined, not counted; t3 = 0.6
    assert pct.n == 2 and pct.mean == pytest.approx(0.5)
    assert (pct.n_fair, pct.n_good) == (2, 1)
    ref = report.per_source["reference"]
    assert ref["technical"].n == 1 and ref["technical"].sd is None and ref["technical"].mean == 5.0
    assert ref["pct_cr"].n == 0 and ref["pct_cr"].mean is None and ref["pct_cr"].share_fair is None
    assert report.transcripts_per_source == {"model-a": 3, "reference": 1}
    assert report.score_keys == ["technical", "pct_cr"]
    assert "mean of its coders" in report.note


def test_per_coder_counts_own_codings() -> None:
    rows = [
        SummaryRow("model-a", "t1", "ann", {"technical": 3.0, "mia": 4}),
        SummaryRow("model-a", "t1", "bob", {"technical": 4.0, "mia": 2}),
        SummaryRow("model-b", "t7", "ann", {"technical": 5.0, "mia": 6}),
    ]
    report = aggregate(rows, THRESHOLDS, score_keys=["technical", "mia", "relational"])
    ann = report.per_coder["ann"]
    assert ann["technical"].n == 2 and ann["technical"].mean == 4.0
    assert ann["technical"].sd == pytest.approx(statistics.stdev([3.0, 5.0]))
    assert ann["mia"].share_fair is None and ann["mia"].n_good is None  # no threshold for MIA
    assert ann["relational"].n == 0 and ann["relational"].n_fair == 0 and ann["relational"].share_fair is None
    assert report.per_coder["bob"]["technical"].share_good == 1.0
    assert report.codings_per_coder == {"ann": 2, "bob": 1}
    assert list(report.per_source) == ["model-a", "model-b"]
    assert report.per_source["model-a"]["mia"].mean == 3.0


def test_duplicate_coding_is_an_error() -> None:
    rows = [
        SummaryRow("s", "t1", "ann", {"technical": 3.0}),
        SummaryRow("s", "t1", "ann", {"technical": 4.0}),
    ]
    with pytest.raises(
        ValueError, match=r"rows\[1\]: transcript 't1' of source 's' appears twice for coder 'ann'"
    ):
        aggregate(rows)


def test_no_rows_and_no_thresholds() -> None:
    empty = aggregate([])
    assert empty.per_source == {} and empty.per_coder == {} and empty.score_keys == []
    report = aggregate(
        [SummaryRow("s", 1, "ann", {"technical": 3.0}), SummaryRow("s", 2, "ann", {"technical": 4.0})]
    )
    stats = report.per_source["s"]["technical"]
    assert stats.mean == 3.5 and stats.share_fair is None and stats.n_fair is None


def test_two_thousand_transcripts_two_coders_under_a_second() -> None:
    rng = random.Random(0)
    rows = []
    for t in range(2000):
        for coder in ("ann", "bob"):
            rows.append(
                SummaryRow(
                    f"source-{t % 4}",
                    t,
                    coder,
                    {
                        "technical": rng.randint(2, 10) / 2,
                        "relational": rng.randint(2, 10) / 2,
                        "pct_cr": rng.choice([None, rng.random()]),
                        "r_to_q": rng.random() * 3,
                        "mia": rng.randint(0, 9),
                    },
                )
            )
    start = time.perf_counter()
    report = aggregate(rows, THRESHOLDS)
    elapsed = time.perf_counter() - start
    assert sum(report.per_source[s]["technical"].n for s in report.per_source) == 2000
    assert report.per_coder["ann"]["technical"].n == 2000
    # Cross-check one number against a plain-Python computation.
    by_t: dict[int, list[float]] = {}
    for r in rows:
        if r.source == "source-1":
            by_t.setdefault(r.transcript_id, []).append(r.scores["relational"])
    means = [sum(v) / len(v) for v in by_t.values()]
    assert report.per_source["source-1"]["relational"].mean == pytest.approx(statistics.fmean(means))
    assert report.per_source["source-1"]["relational"].sd == pytest.approx(statistics.stdev(means))
    assert elapsed < 1.0, f"aggregation took {elapsed:.2f} s"


def test_accepts_threshold_objects_like_annotation_miti() -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Threshold:  # the shape of annotation.miti.Threshold
        fair: float
        good: float

    rows = [SummaryRow("s", 1, "ann", {"r_to_q": 1.0}), SummaryRow("s", 2, "ann", {"r_to_q": 2.5})]
    stats = aggregate(rows, {"r_to_q": Threshold(fair=1.0, good=2.0)}).per_source["s"]["r_to_q"]
    assert (stats.n_fair, stats.n_good) == (2, 1)

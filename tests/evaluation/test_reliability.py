"""Reliability statistics equal pingouin / krippendorff / scikit-learn / statsmodels, and edge cases."""

from __future__ import annotations

import itertools
import warnings
from datetime import datetime

import krippendorff
import numpy as np
import pandas as pd
import pingouin
import pytest
from sklearn.metrics import cohen_kappa_score

from evaluation.reliability import (
    MIN_TARGETS,
    DriftRow,
    cicchetti_band,
    coder_drift,
    cohen_kappa,
    cohen_kappa_pairs,
    fleiss_kappa,
    icc,
    icc_long,
    krippendorff_alpha,
    reliability_matrix,
)


def pingouin_icc(matrix: np.ndarray) -> pd.DataFrame:
    n, k = matrix.shape
    long = pd.DataFrame(
        [(t, r, matrix[t, r]) for t in range(n) for r in range(k) if not np.isnan(matrix[t, r])],
        columns=["target", "rater", "score"],
    )
    # pingouin rounds its CI95 column to 2 decimals by default; compare unrounded values.
    saved = dict(pingouin.options)
    pingouin.options["round.column.CI95"] = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pingouin's own pandas deprecation warnings
            table = pingouin.intraclass_corr(long, "target", "rater", "score", nan_policy="omit")
    finally:
        pingouin.options.clear()
        pingouin.options.update(saved)
    table = table.set_index("Type")
    # pingouin >= 0.7 names the rows ICC(A,1)/ICC(A,k); older versions ICC2/ICC2k.
    return table.rename(index={"ICC2": "ICC(A,1)", "ICC2k": "ICC(A,k)"})


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("n", [4, 12, 60])
def test_icc_equals_pingouin(k: int, n: int) -> None:
    rng = np.random.default_rng(100 * k + n)
    true = rng.normal(3, 1, size=(n, 1))
    bias = rng.normal(0, 0.4, size=(1, k))
    matrix = np.round(true + bias + rng.normal(0, 0.6, size=(n, k)), 1)
    # n = 4 is below MIN_TARGETS (not estimable by default): the formula itself is checked there.
    got = icc(matrix, min_targets=min(n, MIN_TARGETS))
    ref = pingouin_icc(matrix)
    assert (got.n, got.k, got.n_dropped) == (n, k, 0)
    if ref.loc["ICC(A,1)", "ICC"] <= 0:
        # a tiny random sample can have MSB < MSE: a negative between-target variance component
        assert got.status == "not_estimable" and got.icc2_1 is None and got.icc2_k is None
        return
    assert got.status == "ok"
    assert got.icc2_1 == pytest.approx(ref.loc["ICC(A,1)", "ICC"], abs=1e-9)
    assert got.icc2_k == pytest.approx(ref.loc["ICC(A,k)", "ICC"], abs=1e-9)
    assert np.allclose(got.ci95_2_1, ref.loc["ICC(A,1)", "CI95"], rtol=0, atol=1e-9)
    assert np.allclose(got.ci95_2_k, ref.loc["ICC(A,k)", "CI95"], rtol=0, atol=1e-9)
    assert got.band == cicchetti_band(got.icc2_1)


def test_icc_missing_values_use_complete_rows_like_pingouin() -> None:
    rng = np.random.default_rng(7)
    matrix = rng.integers(1, 6, size=(20, 3)).astype(float)
    matrix[[2, 5, 11], [0, 2, 1]] = np.nan
    got = icc(matrix)
    ref = pingouin_icc(matrix)
    assert (got.n, got.k, got.n_dropped) == (17, 3, 3)
    assert got.icc2_1 == pytest.approx(ref.loc["ICC(A,1)", "ICC"], abs=1e-9)
    assert got.icc2_k == pytest.approx(ref.loc["ICC(A,k)", "ICC"], abs=1e-9)
    with_none = [[None if np.isnan(v) else float(v) for v in row] for row in matrix]
    assert icc(with_none).icc2_1 == got.icc2_1


def test_icc_long_pivots_rows() -> None:
    rows = [
        ("t1", "ann", 3),
        ("t1", "bob", 4),
        ("t2", "ann", 2),
        ("t2", "bob", 2),
        ("t3", "ann", 5),
        ("t3", "bob", 4),
        ("t4", "ann", 1),
    ]
    got = icc_long(rows)
    assert (got.n, got.k, got.n_dropped) == (3, 2, 1)
    assert got.status == "not_estimable" and got.icc2_1 is None  # 3 targets < MIN_TARGETS
    assert got.single == icc([[3, 4], [2, 2], [5, 4]]).single
    with pytest.raises(ValueError, match=r"ratings\[1\]: target 't1' rated twice by rater 'ann'"):
        icc_long([("t1", "ann", 3), ("t1", "ann", 4)])


def test_icc_textbook_value() -> None:
    # Shrout & Fleiss (1979) Table 2: 6 targets × 4 judges; ICC(2,1) = .29, ICC(2,4) = .62.
    data = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    got = icc(data, min_targets=6)
    assert round(got.icc2_1, 2) == 0.29 and round(got.icc2_k, 2) == 0.62
    assert got.band == "poor" and got.band_k == "good"


def test_icc_edge_cases() -> None:
    same = icc([[3, 3], [3, 3], [3, 3]], min_targets=2)
    assert same.status == "undefined" and same.icc2_1 is None and same.band is None
    assert icc([[3, 4]]).status == "not_enough_data"  # one target
    assert icc([[3], [4], [5]]).status == "not_enough_data"  # one rater
    assert icc([]).status == "not_enough_data"
    assert icc([[1, None], [2, None], [3, 3]]).status == "not_enough_data"  # one complete row
    perfect = icc([[1, 1], [3, 3], [2, 2]], min_targets=2)
    assert perfect.status == "ok" and perfect.icc2_1 == pytest.approx(1.0) and perfect.ci95_2_1 is None
    assert "error mean square is 0" in perfect.single.ci_reason
    # n = k = 2 with no target effect: MSB = 0 < MSE, a negative between-target variance component.
    swapped = icc([[1, 2], [2, 1]], min_targets=2)
    assert swapped.status == "not_estimable" and "variance component" in swapped.reason
    with pytest.raises(ValueError, match="same number of raters"):
        icc([[1, 2], [3]])


@pytest.mark.parametrize(
    ("value", "band"),
    [
        (None, None),
        (float("nan"), None),
        (-0.2, "poor"),
        (0.399, "poor"),
        (0.40, "fair"),
        (0.59, "fair"),
        (0.60, "good"),
        (0.74, "good"),
        (0.75, "excellent"),
        (1.0, "excellent"),
    ],
)
def test_cicchetti_band(value: float | None, band: str | None) -> None:
    assert cicchetti_band(value) == band


# --- Krippendorff's alpha ---------------------------------------------------------------------------

KRIPP_EXAMPLE = [  # Krippendorff (2011) "Computing Krippendorff's alpha", 4 coders × 12 units
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]


def _as_nan(data: list[list[object]]) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in data], dtype=float)


@pytest.mark.parametrize(("level", "textbook"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)])
def test_alpha_equals_package_and_textbook(level: str, textbook: float) -> None:
    got = krippendorff_alpha(KRIPP_EXAMPLE, level)
    ref = krippendorff.alpha(reliability_data=_as_nan(KRIPP_EXAMPLE), level_of_measurement=level)
    assert got.status == "ok"
    assert got.alpha == pytest.approx(ref, abs=1e-12)
    assert round(got.alpha, 3) == textbook
    assert (got.n_units, got.n_coders) == (11, 4)  # unit 12 has one code only: not pairable


def test_alpha_random_interval_and_ordinal_domain() -> None:
    rng = np.random.default_rng(3)
    data = rng.integers(1, 6, size=(3, 40)).astype(float)
    data[rng.random(data.shape) < 0.2] = np.nan
    rows = [[None if np.isnan(v) else int(v) for v in row] for row in data]
    assert krippendorff_alpha(rows, "interval").alpha == pytest.approx(
        krippendorff.alpha(reliability_data=data, level_of_measurement="interval"), abs=1e-12
    )
    assert krippendorff_alpha(rows, "ordinal", value_domain=[1, 2, 3, 4, 5]).alpha == pytest.approx(
        krippendorff.alpha(
            reliability_data=data, level_of_measurement="ordinal", value_domain=[1, 2, 3, 4, 5]
        ),
        abs=1e-12,
    )


def test_alpha_nominal_utterance_codes() -> None:
    codes = [
        ["Q", "SR", "NONE", "CR", "AF", "Q", None, "GI"],
        ["Q", "CR", "NONE", "CR", "AF", "Q", "SEEK", None],
        ["Q", "SR", "GI", "CR", None, "Q", "SEEK", "GI"],
    ]
    mapping = {c: i for i, c in enumerate(["AF", "CR", "GI", "NONE", "Q", "SEEK", "SR"])}
    as_int = np.array([[np.nan if c is None else mapping[c] for c in row] for row in codes], dtype=float)
    got = krippendorff_alpha(codes, "nominal", min_units=2)
    assert got.alpha == pytest.approx(
        krippendorff.alpha(reliability_data=as_int, level_of_measurement="nominal")
    )
    assert got.n_units == 8


def test_alpha_edge_cases() -> None:
    identical = krippendorff_alpha([[1, 2, 3, 4], [1, 2, 3, 4]], "interval", min_units=2)
    assert identical.status == "ok" and identical.alpha == 1.0
    no_variation = krippendorff_alpha([[2, 2, 2], [2, 2, 2]], "interval")
    assert no_variation.status == "undefined" and no_variation.alpha is None
    assert "no variation" in no_variation.reason
    # The 5 is coded by one coder only, so it is not pairable: still no variation among pairable values.
    assert krippendorff_alpha([[1, 1, 5], [1, 1, None]], "interval").status == "undefined"
    assert krippendorff_alpha([["NONE", "NONE"], ["NONE", "NONE"]], "nominal").status == "undefined"
    assert krippendorff_alpha([[1, 2, None], [1, None, 3]], "interval").status == "not_enough_data"
    assert krippendorff_alpha([[1, 2, 3]], "interval").status == "not_enough_data"
    assert krippendorff_alpha([], "nominal").status == "not_enough_data"
    with pytest.raises(ValueError, match="out-of-domain"):
        krippendorff_alpha([[1, 2], [1, 7]], "ordinal", value_domain=[1, 2, 3, 4, 5], min_units=2)


def test_reliability_matrix_from_codings() -> None:
    m = reliability_matrix({"ann": {"u1": "Q", "u2": "SR"}, "bob": {"u2": "CR", "u3": "NONE"}})
    assert m.coders == ["ann", "bob"]
    assert m.units == ["u1", "u2", "u3"]
    assert m.rows == [["Q", "SR", None], [None, "CR", "NONE"]]
    fixed = reliability_matrix({"ann": {"u1": "Q"}}, units=["u0", "u1"])
    assert fixed.rows == [[None, "Q"]]


# --- kappa --------------------------------------------------------------------------------------------


def test_cohen_kappa_equals_sklearn_on_shared_units() -> None:
    rng = np.random.default_rng(11)
    labels = ["Q", "SR", "CR", "AF", "GI", "NONE"]
    a = list(rng.choice(labels, size=80))
    b = [x if rng.random() < 0.6 else rng.choice(labels) for x in a]
    a[3] = None
    b[10] = None
    got = cohen_kappa(a, b)
    keep = [i for i in range(80) if i not in (3, 10)]
    assert got.status == "ok" and got.n_units == 78
    assert got.kappa == pytest.approx(
        cohen_kappa_score([a[i] for i in keep], [b[i] for i in keep]), abs=1e-12
    )


def test_cohen_kappa_pairs_and_edge_cases() -> None:
    rows = [["Q", "SR", "CR", "Q"], ["Q", "SR", "SR", "Q"], ["Q", None, "CR", "GI"]]
    pairs = cohen_kappa_pairs(rows, coders=["ann", "bob", "cy"], min_units=2)
    assert [(p.coder_a, p.coder_b) for p in pairs] == [("ann", "bob"), ("ann", "cy"), ("bob", "cy")]
    assert pairs[0].result.kappa == pytest.approx(cohen_kappa_score(rows[0], rows[1]))
    assert pairs[1].result.kappa == pytest.approx(cohen_kappa_score(["Q", "CR", "Q"], ["Q", "CR", "GI"]))
    assert cohen_kappa(["Q", "Q"], ["Q", "Q"]).status == "undefined"
    assert cohen_kappa(["Q", "SR"], ["SR", "Q"], min_units=2).kappa == pytest.approx(-1.0)
    assert cohen_kappa(["Q", "SR"], ["SR", "Q"]).status == "not_estimable"  # 2 units < MIN_TARGETS
    assert cohen_kappa(["Q", None], [None, "Q"]).status == "not_enough_data"
    with pytest.raises(ValueError, match="differ in length"):
        cohen_kappa(["Q"], ["Q", "SR"])


def _coder_rows_from_counts(counts: list[list[int]], categories: list[str]) -> list[list[str]]:
    """Spread a subjects × categories count table over coders (coder i gets the i-th label)."""
    per_unit = [
        list(itertools.chain.from_iterable([c] * n for c, n in zip(categories, row, strict=True)))
        for row in counts
    ]
    m = len(per_unit[0])
    return [[unit[i] for unit in per_unit] for i in range(m)]


FLEISS_1971_WIKIPEDIA = [  # 10 subjects, 14 raters, 5 categories; kappa = 0.210
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_fleiss_kappa_textbook_and_statsmodels() -> None:
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    rows = _coder_rows_from_counts(FLEISS_1971_WIKIPEDIA, ["a", "b", "c", "d", "e"])
    got = fleiss_kappa(rows)
    assert got.status == "ok" and got.n_units == 10
    assert round(got.kappa, 3) == 0.210
    assert got.kappa == pytest.approx(sm_fleiss(np.array(FLEISS_1971_WIKIPEDIA), method="fleiss"), abs=1e-12)


def test_fleiss_kappa_random_against_statsmodels() -> None:
    from statsmodels.stats.inter_rater import aggregate_raters
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    rng = np.random.default_rng(5)
    data = rng.integers(0, 4, size=(30, 3))  # units × coders
    table, _ = aggregate_raters(data)
    got = fleiss_kappa([list(col) for col in data.T])
    assert got.kappa == pytest.approx(sm_fleiss(table, method="fleiss"), abs=1e-12)


def test_fleiss_kappa_edge_cases() -> None:
    unequal = fleiss_kappa([["Q", "SR", "Q"], ["Q", None, "Q"]])
    assert unequal.status == "not_applicable"
    # A unit nobody coded is ignored; the rest all have 2 coders.
    assert fleiss_kappa([["Q", "SR", None], ["Q", "CR", None]], min_units=2).status == "ok"
    assert fleiss_kappa([["Q", "SR", None], ["Q", "CR", None]]).status == "not_estimable"
    assert fleiss_kappa([["Q", "Q"], ["Q", "Q"]]).status == "undefined"
    assert fleiss_kappa([["Q"], ["Q"]]).status == "not_enough_data"
    assert fleiss_kappa([["Q", "SR"], [None, None]]).status == "not_enough_data"  # one coder per unit


# --- drift --------------------------------------------------------------------------------------------


def test_coder_drift() -> None:
    d = datetime
    rows = [
        DriftRow("t1", "ann", d(2025, 1, 3), 4.0),
        DriftRow("t1", "bob", d(2025, 1, 1), 3.0),
        DriftRow("t1", "cy", d(2025, 1, 2), 2.0),
        DriftRow("t2", "ann", d(2025, 1, 1), 5.0),
        DriftRow("t2", "bob", d(2025, 1, 2), 4.0),
        DriftRow("t3", "ann", d(2025, 1, 5), 3.0),  # coded by ann only: no point
        DriftRow("t4", "ann", d(2025, 1, 6), None),  # undefined score: no point
        DriftRow("t4", "bob", d(2025, 1, 6), 2.0),
    ]
    drift = coder_drift(rows)
    ann = drift["ann"]
    assert [p.transcript_id for p in ann.points] == ["t2", "t1"]  # submission order
    assert [p.difference for p in ann.points] == [1.0, 1.5]  # 5 - 4; 4 - mean(3, 2)
    assert ann.mean_difference == 1.25 and ann.n == 2
    assert [p.difference for p in drift["bob"].points] == [0.0, -1.0]  # t1: 3 - mean(4, 2); t2: 4 - 5
    assert drift["cy"].mean_difference == 2.0 - 3.5
    with pytest.raises(ValueError, match=r"rows\[1\]: transcript 't1' appears twice for coder 'ann'"):
        coder_drift([DriftRow("t1", "ann", 1, 1.0), DriftRow("t1", "ann", 2, 2.0)])
    assert coder_drift([DriftRow("t1", "ann", 1, 1.0)])["ann"].mean_difference is None


# --- degenerate data: never an impossible number (docs/metrics.md, "When a statistic is not estimable") -----

# The demo's shape after a coordinator's round: 4 transcripts × 2 coders whose ratings barely vary, one
# coder rating Empathy 4 on transcript 1, the other 4 on transcript 2, everything else 3. The formula gives
# ICC(2,1) = -0.5, ICC(2,k) = -2 and a 95 % interval [4.45, 0.90] for ICC(2,k).
DEMO_SHAPE = [[4, 3], [3, 4], [3, 3], [3, 3]]


def _assert_reportable(result) -> None:
    for e in (result.single, result.average):
        if e.value is None:
            assert e.reason and e.ci95 is None and e.band is None
            continue
        assert -1.0 <= e.value <= 1.0
        if e.ci95 is None:
            assert e.ci_reason
        else:
            assert -1.0 <= e.ci95[0] <= e.value <= e.ci95[1] <= 1.0


def test_demo_shape_is_not_estimable_with_the_reason() -> None:
    got = icc(DEMO_SHAPE)
    assert got.status == "not_estimable" and got.icc2_1 is got.icc2_k is None
    assert got.ci95_2_1 is got.ci95_2_k is None and got.band is got.band_k is None
    assert got.reason == f"fewer than {MIN_TARGETS} double-coded units (MITI reliability studies double-code 10 to 20 percent of sessions)"
    # the minimum lowered, the variance condition still holds: MSB < MSE
    low = icc(DEMO_SHAPE, min_targets=2)
    assert low.status == "not_estimable" and "between-transcript variance component" in low.single.reason
    assert low.average.value is None and low.average.reason == low.single.reason
    # the same shape on 10 transcripts (enough of them): still no between-transcript variance
    ten = icc(DEMO_SHAPE + [[3, 3]] * 6)
    assert ten.n == 10 and ten.status == "not_estimable" and "variance component" in ten.reason
    # alpha on the same data: interval alpha is negative but in range; with 4 units it is not estimable
    coder_rows = [list(col) for col in zip(*DEMO_SHAPE, strict=True)]
    assert krippendorff_alpha(coder_rows, "interval").status == "not_estimable"
    assert krippendorff_alpha(coder_rows, "interval", min_units=2).alpha < 0


@pytest.mark.parametrize(
    ("matrix", "status", "reason"),
    [
        ([[3, 3]] * 12, "undefined", "no variation"),  # constant ratings
        ([[4, 3], [3, 4]], "not_estimable", "variance component"),  # n = 2
        ([[2, 4], [5, 2]], "not_estimable", "variance component"),  # n = 2, MSB < MSE again
        ([[v, 1] for v in (3, 4, 5, 2, 3, 4, 5, 2, 3, 4)], "not_estimable", "variance component"),  # constant column
    ],
)
def test_degenerate_icc(matrix: list[list[int]], status: str, reason: str) -> None:
    got = icc(matrix, min_targets=2)
    assert got.status == status and reason in got.reason
    assert got.icc2_1 is None and got.icc2_k is None and got.band is None and got.band_k is None


def test_one_constant_rater_with_a_target_effect_stays_in_range() -> None:
    # coder 2 rates everything 3, coder 1 varies, and the transcripts do differ a little: ICC estimable
    # but poor, and its intervals ordered
    got = icc([[v, 3 + (v > 4)] for v in (3, 4, 5, 2, 3, 4, 5, 2, 3, 5)])
    _assert_reportable(got)


def test_n_two_default_and_constant_kappa() -> None:
    assert icc([[1, 2], [3, 5]]).status == "not_estimable"  # 2 targets < MIN_TARGETS
    assert cohen_kappa(["Q"] * 12, ["Q"] * 12).status == "undefined"
    assert fleiss_kappa([["Q"] * 12, ["Q"] * 11 + ["SR"]]).kappa is not None  # 12 units: estimable


def test_estimate_keeps_values_in_range_and_intervals_ordered() -> None:
    from evaluation.reliability import estimate

    assert estimate(16.0).value is None and "outside [-1, 1]" in estimate(16.0).reason
    assert estimate(-1.143).value is None
    inverted = estimate(0.5, (4.79, 0.67))
    assert inverted.value == 0.5 and inverted.ci95 is None and "not ordered" in inverted.ci_reason
    assert estimate(0.5, (0.2, 0.7)).ci95 == (0.2, 0.7)
    assert estimate(0.5, (0.6, 0.7)).ci95 is None  # does not contain the estimate
    assert estimate(0.9, (-1.8, 0.95)).ci95 is None  # reaches below -1


@pytest.mark.parametrize("seed", range(40))
def test_barely_varying_ratings_never_give_an_impossible_number(seed: int) -> None:
    # ratings of 3 with a few 4s, like a small pilot round: every result is in range with ordered CIs
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(2, 25)), int(rng.integers(2, 4))
    matrix = 3 + (rng.random((n, k)) < rng.uniform(0.05, 0.4)).astype(float)
    for minimum in (2, MIN_TARGETS):
        _assert_reportable(icc(matrix, min_targets=minimum))


def test_reasons_are_shown_in_the_page_language() -> None:
    """Every reason a statistic gives is a known template: the pages translate it and keep its numbers."""
    from django.utils import translation

    from evaluation import reliability as irr
    from evaluation.results import reason_display

    too_few = icc([[3.0, 4.0]])
    constant = icc([[3.0, 3.0]] * 12)
    few_targets = icc([[1.0, 2.0], [2.0, 2.0], [4.0, 5.0], [5.0, 4.0]], min_targets=5)
    fleiss = fleiss_kappa([["A", "B", None], ["A", None, "B"]])
    reasons = [too_few.reason, constant.reason, few_targets.reason, fleiss.reason]
    assert too_few.reason == "need at least 2 targets rated by all raters and 2 raters; have n=1, k=2"
    assert irr.parse_reason(too_few.reason) == (irr.REASON_ICC_TOO_FEW, {"n": "1", "k": "2"})
    assert irr.parse_reason(few_targets.reason) == (irr.REASON_FEW_TARGETS, {"minimum": "5"})
    assert all(irr.parse_reason(reason) is not None for reason in reasons), reasons
    with translation.override("zh-hans"):
        shown = [reason_display(reason) for reason in reasons]
        assert reason_display("something else entirely") == "something else entirely"
    assert shown[0] == "至少需要 2 个由全部评分者评定的对象和 2 名评分者；现有 n=1，k=2"
    assert "5" in shown[2] and "fewer" not in shown[2]
    assert not any(word in " ".join(shown) for word in ("need", "variation", "coder", "fewer")), shown
    with translation.override("en"):
        assert [reason_display(reason) for reason in reasons] == reasons

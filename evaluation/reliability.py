"""Agreement between coders: ICC, Krippendorff's alpha, Cohen's and Fleiss' kappa, drift.

Definitions, reference implementations and edge cases: docs/metrics.md, "Reliability between coders".

Pure module: plain data in, plain data out, no Django. Every function returns a result with a
``status`` instead of raising on thin or degenerate data, because the dashboard shows whatever exists:

* ``"ok"`` - a value was computed;
* ``"not_enough_data"`` - fewer than 2 usable targets/units or fewer than 2 coders;
* ``"undefined"`` - the statistic is 0/0 on this data (no variation at all); shown as "n/a";
* ``"not_applicable"`` - the statistic's precondition fails (Fleiss' kappa with unequal coder counts);
* ``"not_estimable"`` - a number could be computed but cannot be reported: fewer than ``MIN_TARGETS``
  double-coded units, a zero or negative variance component, or a value outside the statistic's range
  (docs/metrics.md, "When a statistic is not estimable"). The value is None and ``reason`` says why.

Whatever the status, a value that is not None is reportable: every consumer (pages, API, exports, the
report) shows the numbers these results hold and nothing else, so an impossible number never reaches a
reader. An ICC keeps its two values and their intervals as :class:`Estimate` (value or None + reason).

Reliability data for alpha and kappa is a coder × unit matrix (one row per coder, one column per unit,
``None`` where that coder did not code the unit). :func:`reliability_matrix` builds it from
``{coder: {unit: value}}``.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Literal

import numpy as np

Status = Literal["ok", "not_enough_data", "undefined", "not_applicable", "not_estimable"]

# The fewest double-coded units (transcripts for ICC and score alpha, utterances for code agreement) a
# statistic is reported on. MITI reliability studies double-code a random 10-20 % of sessions, so a study
# that can report reliability has at least ten; below that the 95 % interval of an ICC spans most of
# [0, 1] and one odd transcript decides the value (docs/metrics.md, "When a statistic is not estimable").
MIN_TARGETS = 10


def gettext_noop(message: str) -> str:
    """Marks a reason for translation (``makemessages`` extracts it); the pages translate it on display."""
    return message


# Reasons of "not_estimable", as the pages and exports show them (English here; the pages translate).
REASON_FEW_TARGETS = gettext_noop(
    "fewer than {minimum} double-coded units (MITI reliability studies double-code 10 to 20 percent of sessions)"
)
REASON_TARGET_VARIANCE = gettext_noop(
    "the between-transcript variance component is zero or negative: transcripts differ no more than the "
    "coders disagree, so the ICC has no meaning"
)
REASON_OUT_OF_RANGE = gettext_noop("the formula gives a value outside [-1, 1] on this data")
REASON_CI_UNORDERED = gettext_noop(
    "interval omitted: its bounds are not ordered around the estimate or reach outside [-1, 1]"
)
REASON_CI_ZERO_ERROR = gettext_noop("interval omitted: the error mean square is 0 (coders agree exactly)")
# Reasons of "not_enough_data" and "undefined" ({n}, {k}, {have}: the counts found on the data).
REASON_ICC_TOO_FEW = gettext_noop("need at least 2 targets rated by all raters and 2 raters; have n={n}, k={k}")
REASON_ICC_CONSTANT = gettext_noop("no variation: every rating is the same value")
REASON_ICC_ZERO_DENOMINATOR = gettext_noop("ICC denominator is 0 (no between-target variance to compare against)")
REASON_ICC_NOT_FINITE = gettext_noop("ICC is not finite on this data")
REASON_ALPHA_TOO_FEW = gettext_noop("need at least 2 units coded by 2 or more coders; have {have}")
REASON_ALPHA_CONSTANT = gettext_noop("no variation: every coder gave the same value to every unit")
REASON_ALPHA_ZERO = gettext_noop("alpha is 0/0 on this data (no expected disagreement)")
REASON_KAPPA_TOO_FEW = gettext_noop("need at least 2 units coded by both coders; have {have}")
REASON_KAPPA_CONSTANT = gettext_noop("no variation: both coders used one single label")
REASON_KAPPA_ZERO = gettext_noop("kappa is 0/0 on this data")
REASON_ONE_CODER_PER_UNIT = gettext_noop("every unit was coded by one coder only")
REASON_MULTI_CONSTANT = gettext_noop("no variation: every coder used one single label")
REASON_TOO_FEW_UNITS = gettext_noop("need at least 2 coded units; have {have}")
REASONS: tuple[str, ...] = (
    REASON_FEW_TARGETS, REASON_TARGET_VARIANCE, REASON_OUT_OF_RANGE, REASON_CI_UNORDERED, REASON_CI_ZERO_ERROR,
    REASON_ICC_TOO_FEW, REASON_ICC_CONSTANT, REASON_ICC_ZERO_DENOMINATOR, REASON_ICC_NOT_FINITE,
    REASON_ALPHA_TOO_FEW, REASON_ALPHA_CONSTANT, REASON_ALPHA_ZERO, REASON_KAPPA_TOO_FEW, REASON_KAPPA_CONSTANT,
    REASON_KAPPA_ZERO, REASON_ONE_CODER_PER_UNIT, REASON_MULTI_CONSTANT, REASON_TOO_FEW_UNITS,
)


def reason_text(template: str) -> str:
    """A reason template as shown (``{minimum}`` filled in)."""
    return template.format(minimum=MIN_TARGETS)


def reason_match(text: str, templates: Sequence[str] = REASONS) -> tuple[str, dict[str, str]] | None:
    """The reason template ``text`` was made from and the values of its placeholders, or None: the pages
    translate the template and fill it in again (``{minimum}`` may be any number)."""
    for template in templates:
        parts = re.split(r"\{(\w+)\}", template)
        pattern = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)" for i, part in enumerate(parts))
        found = re.fullmatch(pattern, text)
        if found:
            return template, found.groupdict()
    return None


@dataclass(frozen=True)
class Estimate:
    """One reportable statistic: its value, or None and the reason it is not estimable.

    ``ci95`` is ordered (``low <= value <= high``, both within [-1, 1]) or None with ``ci_reason``.
    ``band`` is the Cicchetti band of an estimable value, None otherwise: a value that is not estimable
    is never coloured.
    """

    value: float | None
    reason: str = ""
    ci95: tuple[float, float] | None = None
    ci_reason: str = ""

    @property
    def estimable(self) -> bool:
        return self.value is not None

    @property
    def band(self) -> str | None:
        return cicchetti_band(self.value)


def _in_range(value: float, low: float = -1.0, high: float = 1.0) -> bool:
    # A hair of float tolerance: perfect agreement computes as 1.0000000000000002 on some data.
    return math.isfinite(value) and low - 1e-9 <= value <= high + 1e-9


def _checked_ci(value: float, ci: tuple[float, float] | None, reason: str) -> tuple[tuple[float, float] | None, str]:
    if ci is None:
        return None, reason
    low, high = ci
    if not (_in_range(low) and _in_range(high) and low <= value + 1e-9 and value - 1e-9 <= high):
        return None, reason_text(REASON_CI_UNORDERED)
    return ci, ""


def estimate(value: float, ci: tuple[float, float] | None = None, ci_reason: str = "") -> Estimate:
    """An :class:`Estimate` of a statistic whose range is [-1, 1] (ICC, kappa, alpha): out of range
    gives a value of None with the reason; an interval that is not ordered is omitted with the reason."""
    if not _in_range(value):
        return Estimate(None, reason_text(REASON_OUT_OF_RANGE))
    value = min(1.0, max(-1.0, value))
    checked, why = _checked_ci(value, ci, ci_reason)
    return Estimate(value, "", checked, why)

CICCHETTI_BANDS = "Cicchetti (1994): < .40 poor, .40-.59 fair, .60-.74 good, >= .75 excellent"


# The band names as pages show them (translated at render time).
BAND_LABELS: dict[str, str] = {
    "poor": gettext_noop("poor"),
    "fair": gettext_noop("fair"),
    "good": gettext_noop("good"),
    "excellent": gettext_noop("excellent"),
}


def cicchetti_band(value: float | None) -> str | None:
    """Cicchetti (1994) band for an ICC or kappa: "poor", "fair", "good", "excellent"; None for None/NaN."""
    if value is None or not math.isfinite(value):
        return None
    if value < 0.40:
        return "poor"
    if value < 0.60:
        return "fair"
    if value < 0.75:
        return "good"
    return "excellent"


# --- ICC -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IccResult:
    """ICC(2,1) and ICC(2,k): two-way random effects, absolute agreement (Shrout & Fleiss 1979).

    ``n`` targets (transcripts) rated by all ``k`` raters (coders) were used; ``n_dropped`` targets were
    left out because a rater's value was missing. ``single`` is ICC(2,1), the single-coder reliability
    that MITI studies report, ``average`` ICC(2,k); each an :class:`Estimate`. The flat fields
    (``icc2_1``, ``ci95_2_1``, ``band`` …) are read from them: None whenever the estimate is not
    estimable, so a consumer cannot show an impossible number. ``status`` is "ok" only when ICC(2,1) is
    estimable; ``reason`` says why not.
    """

    single: Estimate
    average: Estimate
    n: int
    k: int
    n_dropped: int
    status: Status
    reason: str = ""
    icc2_1: float | None = field(init=False)
    icc2_k: float | None = field(init=False)
    ci95_2_1: tuple[float, float] | None = field(init=False)
    ci95_2_k: tuple[float, float] | None = field(init=False)
    band: str | None = field(init=False)
    band_k: str | None = field(init=False)

    def __post_init__(self) -> None:
        for name, value in (
            ("icc2_1", self.single.value), ("icc2_k", self.average.value),
            ("ci95_2_1", self.single.ci95), ("ci95_2_k", self.average.ci95),
            ("band", self.single.band), ("band_k", self.average.band),
        ):
            object.__setattr__(self, name, value)


def _as_float_matrix(matrix: Sequence[Sequence[float | None]] | np.ndarray) -> np.ndarray:
    if isinstance(matrix, np.ndarray):
        arr = matrix.astype(float)
    else:
        rows = [[np.nan if v is None else v for v in row] for row in matrix]
        if not rows:
            return np.empty((0, 0))
        if len({len(r) for r in rows}) > 1:
            raise ValueError("ratings matrix rows must all have the same number of raters (columns)")
        arr = np.array(rows, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"ratings matrix must be 2-D (targets × raters), got shape {arr.shape}")
    return arr


def icc(matrix: Sequence[Sequence[float | None]] | np.ndarray, *, min_targets: int = MIN_TARGETS) -> IccResult:
    """ICC(2,1) and ICC(2,k) with 95 % CIs from an n × k matrix (targets × raters; None/NaN = missing).

    Only complete rows are used (listwise deletion, as ``pingouin.intraclass_corr(nan_policy="omit")``),
    because the two-way ANOVA needs a balanced design. Values equal pingouin's rows ICC(A,1)/ICC(A,k)
    (named ICC2/ICC2k before pingouin 0.7) to float precision. The CIs use pingouin's (McGraw & Wong
    1996) formulas but are not rounded: pingouin rounds its CI95 column to 2 decimals by default
    (``pingouin.options["round.column.CI95"] = 2``).

    Status "undefined" when all used ratings are identical (every mean square is 0) or the ICC(2,1)
    denominator is 0. Status "not_estimable" (docs/metrics.md, "When a statistic is not estimable") with
    fewer than ``min_targets`` complete targets, or when the between-target variance component
    (MSB - MSE) / k is zero or negative: then both ICCs are <= 0 and, when the rater component is
    negative too, the ICC(2,k) denominator can approach 0 and give values like 16 or -1.1. A negative
    *rater* component alone (MSJ < MSE, common by chance when coders share no bias) is kept in the
    formula as pingouin does: with a positive target component both ICCs then stay in (0, 1]. A CI is
    None with ``ci_reason`` when its F statistics are not finite (raters agree perfectly, the error mean
    square is 0) or its bounds are not ordered around the value within [-1, 1].
    """
    arr = _as_float_matrix(matrix)
    k = int(arr.shape[1])
    complete = arr[~np.isnan(arr).any(axis=1)]
    n = int(complete.shape[0])
    dropped = int(arr.shape[0]) - n

    def no_value(status: Status, reason: str) -> IccResult:
        return IccResult(Estimate(None, reason), Estimate(None, reason), n, k, dropped, status, reason)

    if n < 2 or k < 2:
        # Short-circuit before np.ptp, which fails on an empty array.
        return no_value(
            "not_enough_data", REASON_ICC_TOO_FEW.format(n=n, k=k)
        )
    if np.ptp(complete) == 0:
        return no_value("undefined", REASON_ICC_CONSTANT)
    if n < min_targets:
        return no_value("not_estimable", REASON_FEW_TARGETS.format(minimum=min_targets))

    from scipy.stats import f as f_dist

    # Two-way ANOVA without replication (one rating per target × rater cell), on centred data to keep
    # rounding error small; SS_error is the interaction/residual term.
    grand = complete.mean()
    centred = complete - grand
    row_eff = centred.mean(axis=1)
    col_eff = centred.mean(axis=0)
    # numpy scalars, not Python floats: a 0 denominator below then gives inf/nan (like pingouin) instead
    # of raising ZeroDivisionError.
    ss_rows = k * np.sum(row_eff**2)
    ss_cols = n * np.sum(col_eff**2)
    resid = centred - row_eff[:, None] - col_eff[None, :]
    ss_err = np.sum(resid**2)
    df1 = n - 1
    df_err = (n - 1) * (k - 1)
    msb = ss_rows / df1
    msj = ss_cols / (k - 1)
    mse = ss_err / df_err

    # The between-target component (MSB - MSE) / k, with a relative tolerance: on data where it is 0 in
    # exact arithmetic (one coder's constant column against a spread one) it computes as +-1e-17.
    if msb - mse <= 1e-12 * max(float(msb), float(mse), 1.0):
        return no_value("not_estimable", reason_text(REASON_TARGET_VARIANCE))
    denom_1 = msb + (k - 1) * mse + k * (msj - mse) / n
    denom_k = msb + (msj - mse) / n
    if denom_1 == 0 or denom_k == 0:
        return no_value("undefined", REASON_ICC_ZERO_DENOMINATOR)
    icc2 = (msb - mse) / denom_1
    icc2k = (msb - mse) / denom_k
    if not (math.isfinite(icc2) and math.isfinite(icc2k)):
        return no_value("undefined", REASON_ICC_NOT_FINITE)

    # 95 % CI for ICC(2,1), then Spearman-Brown for ICC(2,k): same formulas as pingouin.
    alpha = 0.05
    ci_1: tuple[float, float] | None = None
    ci_k: tuple[float, float] | None = None
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        fj = msj / mse
        vn = df_err * (k * icc2 * fj + n * (1 + (k - 1) * icc2) - k * icc2) ** 2
        vd = df1 * k**2 * icc2**2 * fj**2 + (n * (1 + (k - 1) * icc2) - k * icc2) ** 2
        v = vn / vd
        if math.isfinite(v) and v > 0:
            f2u = f_dist.ppf(1 - alpha / 2, n - 1, v)
            f2l = f_dist.ppf(1 - alpha / 2, v, n - 1)
            lo = n * (msb - f2u * mse) / (f2u * (k * msj + (k * n - k - n) * mse) + n * msb)
            hi = n * (f2l * msb - mse) / (k * msj + (k * n - k - n) * mse + n * f2l * msb)
            if math.isfinite(lo) and math.isfinite(hi):
                ci_1 = (float(lo), float(hi))
                ci_k = (float(lo * k / (1 + lo * (k - 1))), float(hi * k / (1 + hi * (k - 1))))
    ci_reason = "" if ci_1 is not None else reason_text(REASON_CI_ZERO_ERROR)
    single = estimate(float(icc2), ci_1, ci_reason)
    average = estimate(float(icc2k), ci_k, ci_reason)
    if single.value is None:
        return IccResult(single, average, n, k, dropped, "not_estimable", single.reason)
    return IccResult(single, average, n, k, dropped, "ok")


def icc_long(ratings: Iterable[tuple[Hashable, Hashable, float | None]]) -> IccResult:
    """ICC from long rows ``(target, rater, value)``; pivots to targets × raters, then :func:`icc`.

    Raters are the columns, so the design assumes the same coders rated the targets; targets missing a
    rater are dropped (see ``n_dropped``). A repeated (target, rater) pair is an error.
    """
    targets: dict[Hashable, int] = {}
    raters: dict[Hashable, int] = {}
    cells: dict[tuple[int, int], float | None] = {}
    for position, (target, rater, value) in enumerate(ratings):
        t = targets.setdefault(target, len(targets))
        r = raters.setdefault(rater, len(raters))
        if (t, r) in cells:
            raise ValueError(f"ratings[{position}]: target {target!r} rated twice by rater {rater!r}")
        cells[t, r] = value
    arr = np.full((len(targets), len(raters)), np.nan)
    for (t, r), value in cells.items():
        if value is not None:
            arr[t, r] = value
    return icc(arr)


# --- reliability data (coder × unit) -------------------------------------------------------------------


@dataclass(frozen=True)
class ReliabilityMatrix:
    coders: list[Hashable]
    units: list[Hashable]
    rows: list[list[Any]]  # rows[i][j]: coder i's value for unit j, None if not coded


def reliability_matrix(
    codings: Mapping[Hashable, Mapping[Hashable, Any]], units: Sequence[Hashable] | None = None
) -> ReliabilityMatrix:
    """Build coder × unit reliability data from ``{coder: {unit: value}}``.

    ``units`` fixes the column order (e.g. utterance order); by default units appear in first-seen order.
    """
    if units is None:
        seen: dict[Hashable, None] = {}
        for per_unit in codings.values():
            for unit in per_unit:
                seen.setdefault(unit, None)
        units = list(seen)
    coders = list(codings)
    rows = [[codings[c].get(u) for u in units] for c in coders]
    return ReliabilityMatrix(coders=coders, units=list(units), rows=rows)


def _check_rows(data: Sequence[Sequence[Any]]) -> list[list[Any]]:
    rows = [list(r) for r in data]
    if len({len(r) for r in rows}) > 1:
        raise ValueError("reliability data rows (one per coder) must all have one entry per unit")
    return rows


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True)
class AlphaResult:
    """Krippendorff's alpha. ``n_units`` counts pairable units (coded by at least 2 coders)."""

    alpha: float | None
    level: str
    n_units: int
    n_coders: int
    n_values: int  # pairable values: codes inside pairable units
    status: Status
    reason: str = ""


def krippendorff_alpha(
    data: Sequence[Sequence[Any]],
    level: Literal["nominal", "ordinal", "interval", "ratio"] = "interval",
    value_domain: Sequence[Any] | None = None,
    *,
    min_units: int = MIN_TARGETS,
) -> AlphaResult:
    """Krippendorff's alpha with the ``krippendorff`` package on coder × unit data (None = not coded).

    * interval: global ratings and counts; ordinal (option for globals, pass ``value_domain=[1, 2, 3,
      4, 5]``); nominal: utterance-level codes, where each utterance is a unit, an explicit "no code"
      (e.g. "NONE") is an ordinary category and None means the coder did not code that utterance.
      Nominal labels may be any hashable (strings are mapped to integers; the mapping does not matter
      for a nominal metric; ``value_domain`` is not used at this level).
    * Only pairable units (>= 2 coders) carry information. Fewer than 2 of them -> "not_enough_data".
    * When every pairable value is the same there is no expected disagreement and alpha is 0/0: we
      return "undefined" rather than 1.0 (the package raises or returns NaN here). When coders agree
      perfectly and the values vary, alpha is 1.0 ("ok").
    * Fewer than ``min_units`` pairable units, or a value outside [-1, 1] (possible on tiny samples):
      "not_estimable" with the reason.
    """
    import krippendorff

    rows = _check_rows(data)
    n_coders = len(rows)
    n_units_all = len(rows[0]) if rows else 0
    present = [[not _is_missing(rows[c][u]) for u in range(n_units_all)] for c in range(n_coders)]
    pairable = [u for u in range(n_units_all) if sum(present[c][u] for c in range(n_coders)) >= 2]
    pair_values = [rows[c][u] for u in pairable for c in range(n_coders) if present[c][u]]

    def no_value(status: Status, reason: str) -> AlphaResult:
        return AlphaResult(None, level, len(pairable), n_coders, len(pair_values), status, reason)

    if n_coders < 2 or len(pairable) < 2:
        return no_value(
            "not_enough_data", REASON_ALPHA_TOO_FEW.format(have=len(pairable))
        )
    if len(set(pair_values)) < 2:
        return no_value("undefined", REASON_ALPHA_CONSTANT)
    if len(pairable) < min_units:
        return no_value("not_estimable", REASON_FEW_TARGETS.format(minimum=min_units))

    domain = value_domain
    if level == "nominal":
        labels = sorted({v for r in rows for v in r if not _is_missing(v)}, key=repr)
        code_of = {label: i for i, label in enumerate(labels)}
        arr = np.array([[np.nan if _is_missing(v) else code_of[v] for v in r] for r in rows], dtype=float)
        domain = None
    else:
        try:
            arr = np.array([[np.nan if _is_missing(v) else float(v) for v in r] for r in rows], dtype=float)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{level} alpha needs numbers (None for missing): {exc}") from exc
    try:
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            value = float(
                krippendorff.alpha(reliability_data=arr, level_of_measurement=level, value_domain=domain)
            )
    except ValueError as exc:
        if "out-of-domain" in str(exc):  # a caller error (wrong value_domain), not a property of the data
            raise
        return no_value("undefined", str(exc))
    if not math.isfinite(value):
        return no_value("undefined", REASON_ALPHA_ZERO)
    checked = estimate(value)
    if checked.value is None:
        return no_value("not_estimable", checked.reason)
    return AlphaResult(checked.value, level, len(pairable), n_coders, len(pair_values), "ok")


# --- kappa ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KappaResult:
    kappa: float | None
    n_units: int
    status: Status
    reason: str = ""
    band: str | None = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "band", cicchetti_band(self.kappa))


@dataclass(frozen=True)
class PairKappa:
    coder_a: Hashable
    coder_b: Hashable
    result: KappaResult


def cohen_kappa(
    labels_a: Sequence[Any], labels_b: Sequence[Any], *, min_units: int = MIN_TARGETS
) -> KappaResult:
    """Cohen's kappa (scikit-learn ``cohen_kappa_score``) on the units both coders coded (None = not coded).

    "undefined" when both coders used one and the same label on every shared unit (0/0);
    "not_estimable" on fewer than ``min_units`` shared units.
    """
    from sklearn.metrics import cohen_kappa_score

    if len(labels_a) != len(labels_b):
        raise ValueError(f"label sequences differ in length: {len(labels_a)} vs {len(labels_b)}")
    both = [
        (a, b) for a, b in zip(labels_a, labels_b, strict=True) if not _is_missing(a) and not _is_missing(b)
    ]
    if len(both) < 2:
        return KappaResult(
            None,
            len(both),
            "not_enough_data",
            REASON_KAPPA_TOO_FEW.format(have=len(both)),
        )
    ya = [a for a, _ in both]
    yb = [b for _, b in both]
    if len(set(ya) | set(yb)) < 2:
        return KappaResult(None, len(both), "undefined", REASON_KAPPA_CONSTANT)
    if len(both) < min_units:
        return KappaResult(None, len(both), "not_estimable", REASON_FEW_TARGETS.format(minimum=min_units))
    # sklearn sorts labels, so mixed types (e.g. str and int) would fail; compare them as strings then.
    if len({type(v) for v in ya + yb}) > 1:
        ya, yb = [repr(v) for v in ya], [repr(v) for v in yb]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(cohen_kappa_score(ya, yb))
    if not math.isfinite(value):
        return KappaResult(None, len(both), "undefined", REASON_KAPPA_ZERO)
    return _kappa(value, len(both))


def _kappa(value: float, n_units: int) -> KappaResult:
    checked = estimate(value)
    if checked.value is None:
        return KappaResult(None, n_units, "not_estimable", checked.reason)
    return KappaResult(checked.value, n_units, "ok")


def cohen_kappa_pairs(
    data: Sequence[Sequence[Any]], coders: Sequence[Hashable] | None = None, *, min_units: int = MIN_TARGETS
) -> list[PairKappa]:
    """Cohen's kappa for every pair of coders (rows of coder × unit data), in row order."""
    rows = _check_rows(data)
    names = list(coders) if coders is not None else list(range(len(rows)))
    if len(names) != len(rows):
        raise ValueError(f"{len(names)} coder names for {len(rows)} rows of reliability data")
    return [
        PairKappa(names[i], names[j], cohen_kappa(rows[i], rows[j], min_units=min_units))
        for i, j in combinations(range(len(rows)), 2)
    ]


def fleiss_kappa(data: Sequence[Sequence[Any]], *, min_units: int = MIN_TARGETS) -> KappaResult:
    """Fleiss' kappa (Fleiss 1971) on coder × unit data when every coded unit has the same number of coders.

    Units nobody coded are ignored. If the others have differing numbers of coders the statistic does
    not apply ("not_applicable"); use Krippendorff's alpha instead, which handles missing codes. Fewer
    than ``min_units`` units: "not_estimable".
    """
    rows = _check_rows(data)
    n_units_all = len(rows[0]) if rows else 0
    units = [[r[u] for r in rows if not _is_missing(r[u])] for u in range(n_units_all)]
    units = [u for u in units if u]
    if len(units) < 2:
        return KappaResult(
            None, len(units), "not_enough_data", REASON_TOO_FEW_UNITS.format(have=len(units))
        )
    sizes = {len(u) for u in units}
    if len(sizes) > 1:
        return KappaResult(
            None,
            len(units),
            "not_applicable",
            f"units have different numbers of coders ({sorted(sizes)}); use Krippendorff's alpha",
        )
    m = sizes.pop()
    if m < 2:
        return KappaResult(None, len(units), "not_enough_data", REASON_ONE_CODER_PER_UNIT)
    categories = {label: i for i, label in enumerate(sorted({v for u in units for v in u}, key=repr))}
    counts = np.zeros((len(units), len(categories)))
    for i, unit in enumerate(units):
        for v in unit:
            counts[i, categories[v]] += 1
    n_units = counts.shape[0]
    p_j = counts.sum(axis=0) / (n_units * m)
    p_i = (np.sum(counts**2, axis=1) - m) / (m * (m - 1))
    p_bar = float(p_i.mean())
    p_e = float(np.sum(p_j**2))
    if p_e >= 1.0:
        return KappaResult(None, n_units, "undefined", REASON_MULTI_CONSTANT)
    if n_units < min_units:
        return KappaResult(None, n_units, "not_estimable", REASON_FEW_TARGETS.format(minimum=min_units))
    return _kappa((p_bar - p_e) / (1 - p_e), n_units)


# --- drift ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftRow:
    transcript_id: Hashable
    coder_id: Hashable
    submitted_at: Any  # anything orderable: datetime, int sequence number
    value: float | None


@dataclass(frozen=True)
class DriftPoint:
    transcript_id: Hashable
    submitted_at: Any
    value: float
    others_mean: float
    difference: float  # value - others_mean


@dataclass(frozen=True)
class CoderDrift:
    coder_id: Hashable
    points: list[DriftPoint]  # in submission order
    mean_difference: float | None
    n: int


def coder_drift(rows: Iterable[DriftRow]) -> dict[Hashable, CoderDrift]:
    """Per coder, the difference from the mean of the *other* coders on the same transcripts, over time.

    One score at a time (call once per score key). Transcripts only this coder rated, and None values,
    give no point. A positive mean difference means the coder scores higher than colleagues.
    """
    by_transcript: dict[Hashable, dict[Hashable, DriftRow]] = {}
    coders: dict[Hashable, None] = {}
    for position, row in enumerate(rows):
        coders.setdefault(row.coder_id, None)
        per_coder = by_transcript.setdefault(row.transcript_id, {})
        if row.coder_id in per_coder:
            raise ValueError(
                f"rows[{position}]: transcript {row.transcript_id!r} appears twice for coder {row.coder_id!r}"
            )
        per_coder[row.coder_id] = row
    points: dict[Hashable, list[DriftPoint]] = {c: [] for c in coders}
    for transcript_id, per_coder in by_transcript.items():
        valued = {c: (r, float(r.value)) for c, r in per_coder.items() if r.value is not None}
        for coder, (row, value) in valued.items():
            others = [v for c, (_, v) in valued.items() if c != coder]
            if not others:
                continue
            others_mean = math.fsum(others) / len(others)
            points[coder].append(
                DriftPoint(transcript_id, row.submitted_at, value, others_mean, value - others_mean)
            )
    result: dict[Hashable, CoderDrift] = {}
    for coder, pts in points.items():
        pts.sort(key=lambda p: p.submitted_at)
        mean = math.fsum(p.difference for p in pts) / len(pts) if pts else None
        result[coder] = CoderDrift(coder, pts, mean, len(pts))
    return result

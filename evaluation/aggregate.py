"""Study-dashboard aggregates of MITI summary scores (docs/metrics.md, "Aggregation").

Pure module: plain data in, plain data out, no Django.

Input: one :class:`SummaryRow` per submitted coding (source, transcript, coder, ``{score key: value}``);
a value is None when the score is undefined for that coding (e.g. %CR with no reflections).

* **Per source**: each transcript counts once. A transcript coded by several coders contributes the
  mean of its coders' defined values; coders for whom the score is undefined are left out of that mean,
  and a transcript with no defined value for the score is not counted (``n`` is the number of
  transcripts with a value).
* **Per coder**: each of that coder's own codings counts once (no averaging with other coders).
* For each score: n, mean, sample SD (ddof = 1; None when n < 2), and the share of counted transcripts
  meeting the Fair and the Good threshold (value >= cut-off). Thresholds come from the caller as
  ``{key: (fair, good)}`` or ``{key: object with .fair and .good}`` (``annotation.miti.THRESHOLDS`` can
  be passed as is); a key without thresholds, or a None cut-off, gives None shares.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

# {score key: (fair, good)} or {score key: object with .fair and .good} such as annotation.miti.Threshold.
Thresholds = Mapping[str, Any]

# Scores are ratios of small integers, and a transcript's value may be a mean of coders; a value that is
# "exactly" at a cut-off (0.4 after float arithmetic) must meet it.
_THRESHOLD_TOLERANCE = 1e-9

def gettext_noop(message: str) -> str:
    """Mark ``message`` for the catalogue (this module imports no Django); pages translate it when they
    render it (see annotation/miti.py)."""
    return message


AGGREGATION_NOTE = gettext_noop(
    "Per source, a transcript coded by several coders contributes the mean of its coders' values; "
    "codings where a score is undefined (n/a) are left out of that score. SD is the sample SD (n - 1). "
    "Meets Fair/Good: value >= the MITI 4.2.1 cut-off."
)


@dataclass(frozen=True)
class SummaryRow:
    source: Hashable
    transcript_id: Hashable
    coder_id: Hashable
    scores: Mapping[str, float | None]


@dataclass(frozen=True)
class ScoreStats:
    n: int
    mean: float | None
    sd: float | None
    n_fair: int | None
    n_good: int | None
    share_fair: float | None
    share_good: float | None


@dataclass
class AggregateReport:
    score_keys: list[str]
    per_source: dict[Hashable, dict[str, ScoreStats]]
    per_coder: dict[Hashable, dict[str, ScoreStats]]
    transcripts_per_source: dict[Hashable, int]  # distinct transcripts with any coding
    codings_per_coder: dict[Hashable, int]
    note: str = AGGREGATION_NOTE


def _cut_offs(thresholds: Thresholds, key: str) -> tuple[float | None, float | None]:
    spec = thresholds.get(key)
    if spec is None:
        return None, None
    if hasattr(spec, "fair") and hasattr(spec, "good"):
        return spec.fair, spec.good
    fair, good = spec
    return fair, good


def _empty_stats(key: str, thresholds: Thresholds) -> ScoreStats:
    fair, good = _cut_offs(thresholds, key)
    return ScoreStats(0, None, None, None if fair is None else 0, None if good is None else 0, None, None)


def _stats_by_group(
    values: pd.DataFrame, group: str, thresholds: Thresholds
) -> dict[Hashable, dict[str, ScoreStats]]:
    """``values`` has columns [group, "score", "value"] with no NaN values; one row per counted item."""
    out: dict[Hashable, dict[str, ScoreStats]] = {}
    if values.empty:
        return out
    cut_offs = {key: _cut_offs(thresholds, key) for key in values["score"].unique()}
    fair = values["score"].map(lambda k: cut_offs[k][0]).astype(float)
    good = values["score"].map(lambda k: cut_offs[k][1]).astype(float)
    values = values.assign(
        fair=(values["value"] >= fair - _THRESHOLD_TOLERANCE).astype(float).where(fair.notna()),
        good=(values["value"] >= good - _THRESHOLD_TOLERANCE).astype(float).where(good.notna()),
    )
    grouped = values.groupby([group, "score"], sort=False, dropna=False).agg(
        n=("value", "size"),
        mean=("value", "mean"),
        sd=("value", "std"),  # pandas' std is the sample SD (ddof=1): NaN for n == 1
        n_fair=("fair", "sum"),
        n_good=("good", "sum"),
        has_fair=("fair", "count"),
        has_good=("good", "count"),
    )
    # Column by column as plain Python lists (ints and floats, NaN for a missing SD), one row at a time.
    columns = zip(
        grouped.index,
        grouped["n"].tolist(),
        grouped["mean"].tolist(),
        grouped["sd"].tolist(),
        grouped["n_fair"].tolist(),
        grouped["n_good"].tolist(),
        grouped["has_fair"].tolist(),
        grouped["has_good"].tolist(),
        strict=True,
    )
    for (name, key), count, mean, sd, fair_count, good_count, has_fair, has_good in columns:
        n = int(count)
        n_fair = int(fair_count) if has_fair else None
        n_good = int(good_count) if has_good else None
        out.setdefault(name, {})[key] = ScoreStats(
            n=n,
            mean=float(mean),
            sd=None if n < 2 or np.isnan(sd) else float(sd),
            n_fair=n_fair,
            n_good=n_good,
            share_fair=None if n_fair is None else n_fair / n,
            share_good=None if n_good is None else n_good / n,
        )
    return out


def aggregate(
    rows: Sequence[SummaryRow],
    thresholds: Thresholds | None = None,
    score_keys: Sequence[str] | None = None,
) -> AggregateReport:
    """Aggregate summary scores per source and per coder (see the module docstring for the rules).

    ``score_keys`` fixes which scores are reported and in what order (default: keys in first-seen order);
    every source and coder gets an entry for every key, with n = 0 when nothing was counted.
    A repeated (source, transcript, coder) is an error.
    """
    thresholds = thresholds or {}
    keys: list[str] = list(score_keys) if score_keys is not None else []
    known = set(keys)
    records: list[tuple[Hashable, Hashable, Hashable, str, float]] = []
    seen: set[tuple[Hashable, Hashable, Hashable]] = set()
    sources: dict[Hashable, set[Hashable]] = {}
    coders: dict[Hashable, int] = {}
    for position, row in enumerate(rows):
        ident = (row.source, row.transcript_id, row.coder_id)
        if ident in seen:
            raise ValueError(
                f"rows[{position}]: transcript {row.transcript_id!r} of source {row.source!r} "
                f"appears twice for coder {row.coder_id!r}"
            )
        seen.add(ident)
        sources.setdefault(row.source, set()).add(row.transcript_id)
        coders[row.coder_id] = coders.get(row.coder_id, 0) + 1
        for key, value in row.scores.items():
            if score_keys is None and key not in known:
                known.add(key)
                keys.append(key)
            if value is None or key not in known:
                continue
            records.append((row.source, row.transcript_id, row.coder_id, key, float(value)))

    frame = pd.DataFrame.from_records(records, columns=["source", "transcript", "coder", "score", "value"])
    frame = frame[frame["value"].notna()]  # NaN passed in as a float means undefined too
    # Transcript value per source = mean over its coders (groupby skips nothing here: NaNs are gone).
    per_transcript = (
        frame.groupby(["source", "transcript", "score"], sort=False, dropna=False)["value"]
        .mean()
        .reset_index()
    )
    by_source = _stats_by_group(per_transcript[["source", "score", "value"]], "source", thresholds)
    by_coder = _stats_by_group(frame[["coder", "score", "value"]], "coder", thresholds)

    def complete(
        found: dict[Hashable, dict[str, ScoreStats]], names: Sequence[Hashable]
    ) -> dict[Hashable, dict[str, ScoreStats]]:
        return {
            name: {k: found.get(name, {}).get(k) or _empty_stats(k, thresholds) for k in keys}
            for name in names
        }

    return AggregateReport(
        score_keys=keys,
        per_source=complete(by_source, list(sources)),
        per_coder=complete(by_coder, list(coders)),
        transcripts_per_source={s: len(t) for s, t in sources.items()},
        codings_per_coder=coders,
    )

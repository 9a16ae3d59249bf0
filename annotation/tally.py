"""MITI tallies and summary scores of many codings at once, from (assignment, utterance, volley, code) rows.

Pure module (numpy and ``annotation.miti`` only). The submit action stores a coding's summary with it
(``annotation.actions.summaries``) and ``evaluation.summaries`` tallies any coding that has no stored
summary yet, both through :func:`tally_rows` and :func:`summarise`, so the stored and the computed
numbers cannot differ.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

import numpy as np

from . import miti

CodeRow = tuple[int, int, int, str]  # (assignment id, utterance id, volley id, code)


@lru_cache(maxsize=4096)
def volley_tally(codes: frozenset[str]) -> tuple[tuple[str, int], ...]:
    """The non-zero per-volley counts of a set of codes.

    The per-volley counts depend only on which codes occur in the volley (each slot counts at most once;
    CR wins over SR and PERSUADE_WITH over PERSUADE whenever present), so one tally per distinct set of
    codes is exact and saves ~80,000 calls on a large study.
    """
    counts = miti.tally_volley(sorted(codes)).counts
    return tuple((key, n) for key, n in counts.items() if n)


def tally_codes(volleys: Iterable[Iterable[str]]) -> dict[str, int]:
    """Transcript counts from the codes of each volley (same result as ``miti.tally_transcript``)."""
    per_set: Counter[frozenset[str]] = Counter(frozenset(codes) for codes in volleys)
    totals = dict.fromkeys(miti.CODE_KEYS, 0)
    for codes, n_volleys in per_set.items():
        for key, n in volley_tally(codes):
            totals[key] += n * n_volleys
    return totals


# Each behaviour code as one bit, so a volley's set of codes is one integer (NONE sets no bit).
_CODE_BITS: dict[str, int] = {key: 1 << i for i, key in enumerate(miti.CODE_KEYS)}


@lru_cache(maxsize=4096)
def _mask_tally(mask: int) -> tuple[tuple[str, int], ...]:
    return volley_tally(frozenset(key for key, bit in _CODE_BITS.items() if mask & bit))


def tally_rows(
    rows: Sequence[CodeRow], additional: Sequence[CodeRow] = ()
) -> tuple[dict[int, dict[str, int]], dict[int, int]]:
    """Per-assignment tallies and coded-utterance counts from (assignment, utterance, volley, code) rows.

    ``additional``: rows of ``AdditionalCode`` (imported labels flagging a second behaviour on an
    utterance): they join their volley's codes for the tally but are not coded utterances.

    Vectorised because a large study has hundreds of thousands of codes: the codes of each
    (assignment, volley) are OR-ed into one bit mask with numpy, then each distinct mask is tallied
    once by ``annotation.miti`` (see ``volley_tally``) and multiplied by how often it occurs.
    """
    if not rows:
        return {}, {}
    n = len(rows)
    assignment = np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)
    volley = np.fromiter((r[2] for r in rows), dtype=np.int64, count=n)
    bits = np.fromiter((_CODE_BITS.get(r[3], 0) for r in rows), dtype=np.int64, count=n)
    ids, n_per = np.unique(assignment, return_counts=True)
    n_coded = dict(zip(ids.tolist(), n_per.tolist(), strict=True))
    if additional:
        m = len(additional)
        assignment = np.concatenate([assignment, np.fromiter((r[0] for r in additional), dtype=np.int64, count=m)])
        volley = np.concatenate([volley, np.fromiter((r[2] for r in additional), dtype=np.int64, count=m)])
        bits = np.concatenate(
            [bits, np.fromiter((_CODE_BITS.get(r[3], 0) for r in additional), dtype=np.int64, count=m)]
        )
    order = np.lexsort((volley, assignment))
    assignment, volley, bits = assignment[order], volley[order], bits[order]
    starts = np.flatnonzero(np.r_[True, (assignment[1:] != assignment[:-1]) | (volley[1:] != volley[:-1])])
    masks = np.bitwise_or.reduceat(bits, starts)
    span = 1 << len(_CODE_BITS)
    pairs, times = np.unique(assignment[starts] * span + masks, return_counts=True)
    totals: dict[int, dict[str, int]] = {}
    for pair, k in zip(pairs.tolist(), times.tolist(), strict=True):
        assignment_id, mask = divmod(pair, span)
        counts = totals.get(assignment_id)
        if counts is None:
            counts = totals[assignment_id] = dict.fromkeys(miti.CODE_KEYS, 0)
        for key, value in _mask_tally(mask):
            counts[key] += value * k
    return totals, n_coded


def summarise(
    counts: Mapping[str, int] | None, ratings: Mapping[str, int], *, globals_rated: bool
) -> tuple[dict[str, int], dict[str, int | None], dict[str, float | int | None]]:
    """(counts, globals, summary scores) of one coding from its tallies and its global ratings.

    Rounds built from imported labels (AnnoMI) rate no globals: they are "not rated" (None), never a
    default 3.
    """
    full = dict.fromkeys(miti.CODE_KEYS, 0) if counts is None else dict(counts)
    globals_: dict[str, int | None] = {
        key: (ratings.get(key) if globals_rated else None) for key in miti.GLOBAL_KEYS
    }
    return full, globals_, miti.summary_scores(full, globals_).as_dict()

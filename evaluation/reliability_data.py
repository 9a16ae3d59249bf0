"""Inter-rater reliability of a study (docs/metrics.md, "Reliability between coders"), from ``summaries``.

Only transcripts with two or more submitted *coding* assignments count (consensus codings are
adjudications, not independent ratings). The math lives in ``evaluation.reliability``; this module
builds its inputs:

* **Scores per transcript** (4 globals, 10 tallies, 6 summary scores): a transcripts × raters matrix
  for ICC(2,1)/ICC(2,k) and coder × transcript data for interval alpha. When every double-coded
  transcript has the same coders, the raters are those coders. When pairs of coders rotate (three or
  more coders sharing the double coding), the raters are positions — first and second coder of each
  transcript, coders ordered by id — and transcripts with more coders than the usual number use the
  first ones. That is how MITI studies with rotating coders report ICC(2,·); the page says so.
* **Utterance codes**: each utterance of a double-coded transcript is a unit, each coder a row, the
  code (NONE included, as a category) the value, None where the coder left it uncoded. Nominal alpha,
  Cohen's kappa per coder pair (on the utterances both coded) and Fleiss' kappa (when every unit has
  the same number of coders), overall and per code (that code vs any other, like the per-code kappas
  of Pérez-Rosas et al. 2016).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from annotation import miti

from . import reliability as irr
from .summaries import GLOBAL_KEYS, TALLY_KEYS, VALUE_LABELS, CodingSummary, StudySummaries

SUMMARY_SCORE_KEYS: tuple[str, ...] = miti.SUMMARY_KEYS
SCORE_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("global", GLOBAL_KEYS),
    ("tally", TALLY_KEYS),
    ("summary", SUMMARY_SCORE_KEYS),
)
# Interval alpha is computed for globals and counts (docs/metrics.md, "Krippendorff's alpha") and for the
# summary scores that are a global mean or a count. The ratios %CR and R:Q get ICC only: their many
# distinct values make the krippendorff package's coincidence matrix quadratic in them (seconds on a large
# study) for a number MITI reliability work does not report.
ALPHA_KEYS: frozenset[str] = frozenset((*GLOBAL_KEYS, *TALLY_KEYS, "technical", "relational", "mia", "mina"))
RATIO_ALPHA_REASON = irr.gettext_noop(
    "alpha is computed for globals and counts (docs/metrics.md); percent CR and R:Q get ICC only"
)
# Scores whose drift over time is shown (the ones a paper reports per coder).
DRIFT_KEYS: tuple[str, ...] = GLOBAL_KEYS + SUMMARY_SCORE_KEYS

# Published reference bands shown beside the table (docs/metrics.md, "Published reference bands").
REFERENCE_BANDS: tuple[tuple[str, str, str], ...] = (
    (irr.gettext_noop("Session-level ICC"), "0.75–1.00", irr.gettext_noop("Pérez-Rosas et al. 2016, 277 sessions")),
    (irr.gettext_noop("Utterance-level kappa"), "0.31–0.64", irr.gettext_noop("Pérez-Rosas et al. 2016, 277 sessions")),
    (irr.gettext_noop("MITI 4 globals and counts"), irr.gettext_noop("good to excellent except Emphasize and %CR"),
     irr.gettext_noop("Moyers et al. 2016")),
)
# Source kinds and coding kinds as the pages show them (translated at render time).
KIND_LABELS: dict[str, str] = {
    "reference": irr.gettext_noop("reference"),
    "generated": irr.gettext_noop("generated"),
    "coding": irr.gettext_noop("coding"),
    "consensus": irr.gettext_noop("consensus"),
    "machine": irr.gettext_noop("machine"),
}
# Who the ICC raters are (``StudyReliability.raters``), as the pages show it.
RATER_LABELS: dict[str, str] = {"coders": irr.gettext_noop("coders"), "positions": irr.gettext_noop("positions")}
# As a cell shows a status (English; the pages translate them).
# Who the ICC raters are (``StudyReliability.raters``), as the pages name them.
RATERS_TEXT: dict[str, str] = {
    "coders": irr.gettext_noop("the coders"),
    "positions": irr.gettext_noop("positions (first and second coder of each transcript)"),
}
STATUS_TEXT: dict[str, str] = {
    "ok": "",
    "not_enough_data": irr.gettext_noop("not enough data"),
    "undefined": irr.gettext_noop("n/a"),
    "not_applicable": irr.gettext_noop("not applicable"),
    "not_estimable": irr.gettext_noop("not estimable"),
}


@dataclass
class ScoreReliability:
    key: str
    label: str
    group: str  # global | tally | summary
    icc: irr.IccResult
    alpha: irr.AlphaResult  # status "not_applicable" for the ratios (see ALPHA_KEYS)


@dataclass
class CodeAgreement:
    code: str
    alpha: irr.AlphaResult
    fleiss: irr.KappaResult
    n_coded: int  # units where at least one coder gave this code


@dataclass
class PairAgreement:
    coder_a: str
    coder_b: str
    kappa: irr.KappaResult


@dataclass
class UtteranceReliability:
    n_units: int
    alpha: irr.AlphaResult
    fleiss: irr.KappaResult
    pairs: list[PairAgreement]
    per_code: list[CodeAgreement]


@dataclass
class DriftSummary:
    coder: str
    key: str
    n: int
    mean_difference: float | None
    first_half: float | None  # mean difference over the coder's earlier half of double codings
    second_half: float | None


@dataclass
class StudyReliability:
    n_transcripts: int  # transcripts with >= 2 submitted codings
    coders: dict[int, str]
    raters: str  # "coders" or "positions"
    k: int  # raters per transcript used for ICC
    scores: list[ScoreReliability]
    utterances: UtteranceReliability
    drift: list[DriftSummary]
    notes: list[str] = field(default_factory=list)

    @property
    def enough(self) -> bool:
        return self.n_transcripts >= 2

    def withheld(self) -> list[tuple[str, list[str]]]:
        """Every statistic (and interval) shown without a number, grouped by the reason: a report lists
        them so that no cell without a value goes unexplained on paper (a page has the hover text)."""
        by_reason: dict[str, list[str]] = {}

        def add(reason: str, what: str) -> None:
            by_reason.setdefault(reason or "no value", []).append(what)

        for s in self.scores:
            for name, e in (("ICC(2,1)", s.icc.single), ("ICC(2,k)", s.icc.average)):
                if e.value is None:
                    add(e.reason, f"{s.label} {name}")
                elif e.ci95 is None:
                    add(e.ci_reason, f"{s.label} {name} 95 % CI")
            if s.alpha.status not in ("ok", "not_applicable"):
                add(s.alpha.reason, f"{s.label} alpha")
        u = self.utterances
        stats: list[tuple[str, irr.AlphaResult | irr.KappaResult]] = [
            ("utterance alpha", u.alpha), ("Fleiss kappa", u.fleiss),
            *[(f"Cohen kappa {p.coder_a} / {p.coder_b}", p.kappa) for p in u.pairs],
            *[(f"{c.code} alpha", c.alpha) for c in u.per_code],
            *[(f"{c.code} Fleiss kappa", c.fleiss) for c in u.per_code],
        ]
        for name, result in stats:
            if result.status not in ("ok", "not_applicable"):
                add(result.reason, name)
        return list(by_reason.items())


def _double_coded(data: StudySummaries) -> dict[int, list[CodingSummary]]:
    return {t: rows for t, rows in data.by_transcript().items() if len(rows) >= 2}


def _icc_matrix(
    groups: dict[int, list[CodingSummary]], key: str, raters: str, k: int, coder_ids: list[int]
) -> list[list[float | None]]:
    matrix: list[list[float | None]] = []
    for rows in groups.values():
        if raters == "coders":
            by_coder = {r.coder_id: r.value(key) for r in rows}
            matrix.append([by_coder.get(c) for c in coder_ids])
        else:
            ordered = sorted(rows, key=lambda r: r.coder_id)
            if len(ordered) < k:
                continue
            matrix.append([r.value(key) for r in ordered[:k]])
    return matrix


def _drift(groups: dict[int, list[CodingSummary]], coders: dict[int, str]) -> list[DriftSummary]:
    out: list[DriftSummary] = []
    flat = [r for rows in groups.values() for r in rows]
    for key in DRIFT_KEYS:
        drift_rows = [
            irr.DriftRow(r.transcript_id, r.coder_id, (r.submitted_at, r.assignment_id), r.value(key))
            for r in flat
        ]
        for coder_id, d in irr.coder_drift(drift_rows).items():
            half = len(d.points) // 2
            first = d.points[:half]
            second = d.points[half:]
            out.append(
                DriftSummary(
                    coder=coders.get(coder_id, str(coder_id)),
                    key=key,
                    n=d.n,
                    mean_difference=d.mean_difference,
                    first_half=sum(p.difference for p in first) / len(first) if first else None,
                    second_half=sum(p.difference for p in second) / len(second) if second else None,
                )
            )
    return out


def utterance_reliability(
    code_rows: list[tuple[int, int, str]],
    coder_of: dict[int, int],
    coder_names: dict[int, str],
    *,
    per_code: bool = True,
    min_units: int = irr.MIN_TARGETS,
) -> UtteranceReliability:
    """Agreement on utterance codes. ``code_rows``: (assignment id, utterance id, code) of the codings
    on double-coded transcripts; ``coder_of`` maps assignment id to coder id. ``per_code`` adds the
    per-code (this code vs any other) alpha and Fleiss' kappa: 11 more passes over every utterance,
    so the dashboard leaves it to the reliability page."""
    # Codes as small integers: the statistics are nominal, so only equality matters, and numbers make
    # scikit-learn and the krippendorff package several times faster than strings on 100,000+ units.
    categories = (*miti.CODE_KEYS, miti.NO_CODE)
    index_of = {code: i for i, code in enumerate(categories)}
    per_coder: dict[int, dict[int, int]] = {}
    for assignment_id, utterance_id, code in code_rows:
        coder = coder_of.get(assignment_id)
        if coder is not None:
            per_coder.setdefault(coder, {})[utterance_id] = index_of[code]
    coder_ids = sorted(per_coder, key=lambda c: coder_names.get(c, str(c)))
    data = irr.reliability_matrix({c: per_coder[c] for c in coder_ids})
    rows = data.rows
    alpha = irr.krippendorff_alpha(rows, level="nominal", min_units=min_units)
    fleiss = irr.fleiss_kappa(rows, min_units=min_units)
    names = [coder_names.get(c, str(c)) for c in coder_ids]
    pairs = [
        PairAgreement(str(p.coder_a), str(p.coder_b), p.result)
        for p in irr.cohen_kappa_pairs(rows, coders=names, min_units=min_units)
    ]
    codes: list[CodeAgreement] = []
    used = Counter(v for r in rows for v in r if v is not None) if per_code else Counter()
    for value, code in enumerate(categories if per_code else ()):
        if not used[value]:
            continue
        binary = [[None if v is None else v == value for v in r] for r in rows]
        n_coded = sum(1 for j in range(len(data.units)) if any(r[j] for r in binary))
        codes.append(
            CodeAgreement(
                code,
                irr.krippendorff_alpha(binary, level="nominal", min_units=min_units),
                irr.fleiss_kappa(binary, min_units=min_units),
                n_coded,
            )
        )
    return UtteranceReliability(len(data.units), alpha, fleiss, pairs, codes)


def study_reliability(
    data: StudySummaries, *, per_code: bool = True, min_targets: int = irr.MIN_TARGETS
) -> StudyReliability:
    """Every reliability number of the study (or round) that ``data`` holds (see ``utterance_reliability``
    for ``per_code``). ``min_targets``: the fewest double-coded units a statistic is reported on
    (``reliability.MIN_TARGETS``; lower it only to compare the formulas with a reference on small data)."""
    groups = _double_coded(data)
    coders = data.coders
    involved = sorted({r.coder_id for rows in groups.values() for r in rows}, key=lambda c: coders[c])
    coder_sets = {frozenset(r.coder_id for r in rows) for rows in groups.values()}
    notes: list[str] = []
    if len(coder_sets) <= 1:
        raters = "coders"
        k = len(involved)
    else:
        raters = "positions"
        k = Counter(len(rows) for rows in groups.values()).most_common(1)[0][0]
        notes.append(irr.gettext_noop(
            "Different coders shared the double coding, so ICC raters are positions (first and second "
            "coder of each transcript), not named coders."
        ))
    if any(not r.globals_rated for rows in groups.values() for r in rows):
        notes.append(irr.gettext_noop("Globals were not rated in (some of) these codings: global and Technical/Relational "
                     "scores are 'not rated' there."))

    scores: list[ScoreReliability] = []
    for group, keys in SCORE_GROUPS:
        for key in keys:
            matrix = _icc_matrix(groups, key, raters, k, involved)
            per_coder: dict[int, dict[int, float | int | None]] = {c: {} for c in involved}
            for transcript_id, rows in groups.items():
                for r in rows:
                    per_coder[r.coder_id][transcript_id] = r.value(key)
            if key in ALPHA_KEYS:
                alpha = irr.krippendorff_alpha(
                    irr.reliability_matrix(per_coder, units=list(groups)).rows, level="interval",
                    min_units=min_targets,
                )
            else:
                alpha = irr.AlphaResult(None, "interval", 0, len(involved), 0, "not_applicable", RATIO_ALPHA_REASON)
            scores.append(
                ScoreReliability(key, VALUE_LABELS[key], group, irr.icc(matrix, min_targets=min_targets), alpha)
            )

    coder_of = {r.assignment_id: r.coder_id for rows in groups.values() for r in rows}
    # code_rows holds every coding's codes; utterance_reliability keeps those of double-coded transcripts
    # (the assignments in coder_of).
    utt = utterance_reliability(data.code_rows, coder_of, coders, per_code=per_code, min_units=min_targets)
    return StudyReliability(
        n_transcripts=len(groups),
        coders={c: coders[c] for c in involved},
        raters=raters,
        k=k,
        scores=scores,
        utterances=utt,
        drift=_drift(groups, coders),
        notes=notes,
    )

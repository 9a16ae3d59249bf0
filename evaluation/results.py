"""Everything the results pages, the exports and the report show, computed once per request or task.

``build_results`` loads the summaries (4 queries), aggregates them, computes reliability and reads the
metric reports; the page, the XLSX/CSV tables and the HTML/PDF report all take their numbers from
the same ``Results``, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from django.utils.translation import get_language, gettext, gettext_noop

from annotation import miti
from annotation.models import CodingRound, Study, TranscriptSource

from . import charts, grouping, queries, results_cache
from . import reliability as irr
from .aggregate import ScoreStats
from .reliability_data import RATERS_TEXT, StudyReliability, study_reliability
from .summaries import (
    GLOBAL_KEYS,
    SCORE_KEYS,
    TALLY_KEYS,
    VALUE_LABELS,
    CodingSummary,
    SourceInfo,
    StudyAggregates,
    StudySummaries,
    load_summaries,
    study_aggregates,
)

METRIC_COLUMNS: tuple[tuple[str, str], ...] = (
    ("bleu4", "BLEU-4"),
    ("rouge1", "ROUGE-1"),
    ("rouge2", "ROUGE-2"),
    ("rougeL", "ROUGE-L"),
    ("length", gettext_noop("Length (chars)")),
    ("distinct_1", "Distinct-1"),
    ("distinct_2", "Distinct-2"),
    ("empty_rate", gettext_noop("Empty replies")),
)


@dataclass
class MetricRow:
    """One generation run in the model comparison table (as in the paper: one row per model)."""

    run_id: int
    model: str
    base_model: str  # the registered base model's name for a fine-tune, else ""
    finetuned: bool
    split: str
    status: str
    report: bool
    n_rounds: int = 0
    n_dialogues: int = 0
    values: dict[str, float | None] = field(default_factory=dict)
    tokenizer: str = ""
    language: str = ""


@dataclass
class SourceRow:
    source: SourceInfo
    transcripts: int
    consensus: int
    stats: dict[str, ScoreStats]
    group: str = ""  # the group value when results are grouped (evaluation.grouping), else ""

    @property
    def label(self) -> str:
        if not self.group:
            return self.source.label
        # Grouped by coder, the consensus codings form the group "consensus" (evaluation.grouping): named
        # in the page's language.
        group = gettext("consensus") if self.group == "consensus" else self.group
        return f"{self.source.label} · {group}"


@dataclass
class Overview:
    """What the dashboard, the charts and the tables need of the summaries: small enough to cache."""

    sources: dict[int, SourceInfo]
    coders: dict[int, str]
    aggregates: StudyAggregates
    n_codings: int


@dataclass
class Results:
    """Summaries are loaded only where a page lists codings; the aggregates (``overview``) and the
    reliability come from the results cache while no coding of the scope changed (``results_cache``);
    metrics are read on first use."""

    study: Study
    coding_round: CodingRound | None
    per_code: bool = True
    fingerprint: str = ""
    group_by: str = grouping.SOURCE
    group: str | None = None  # restrict to this group of ``group_by`` (reliability of one group)
    _summaries: StudySummaries | None = None

    @cached_property
    def group_of(self) -> Callable[[CodingSummary], str] | None:
        return grouping.group_function(self.study, self.group_by)

    @cached_property
    def summaries(self) -> StudySummaries:
        """The summaries of the scope — of one group when ``group`` is set."""
        if self._summaries is None:
            self._summaries = load_summaries(self.study, self.coding_round)
        return grouping.restrict(self._summaries, self.group_of, self.group)

    def _cache_part(self, part: str) -> str:
        return f"{part}-{self.group_by}-{self.group or ''}"

    @cached_property
    def overview(self) -> Overview:
        def compute() -> Overview:
            data = self.summaries
            return Overview(
                dict(data.sources), data.coders, study_aggregates(data, group_of=self.group_of), len(data.codings)
            )

        return results_cache.get_or_compute(
            self.study, self.coding_round, self.fingerprint, self._cache_part("overview"), compute
        )

    @property
    def aggregates(self) -> StudyAggregates:
        return self.overview.aggregates

    @cached_property
    def reliability(self) -> StudyReliability:
        return results_cache.get_or_compute(
            self.study, self.coding_round, self.fingerprint, self._cache_part(f"reliability-{int(self.per_code)}"),
            lambda: study_reliability(self.summaries, per_code=self.per_code),
        )

    @cached_property
    def metrics(self) -> list[MetricRow]:
        return metric_rows(self.study)

    @property
    def sources(self) -> list[SourceRow]:
        """Sources with at least one submitted coding: reference first, then models, then imported."""
        order = {TranscriptSource.Kind.REFERENCE: 0, TranscriptSource.Kind.GENERATED: 1}
        rows = []
        for key, stats in self.aggregates.per_source.items():
            sid, group = key if isinstance(key, tuple) else (key, "")
            if sid not in self.overview.sources:
                continue
            rows.append(
                SourceRow(
                    self.overview.sources[sid],
                    self.aggregates.transcripts_per_source.get(key, 0),
                    self.aggregates.consensus_per_source.get(key, 0),
                    stats,
                    group,
                )
            )
        return sorted(rows, key=lambda r: (order.get(r.source.kind, 2), r.source.id, r.group))

    @property
    def coders(self) -> list[tuple[str, int, dict[str, ScoreStats]]]:
        names = self.overview.coders
        return sorted(
            (
                (names.get(cid, str(cid)), self.aggregates.codings_per_coder.get(cid, 0), stats)
                for cid, stats in self.aggregates.per_coder.items()
            ),
            key=lambda row: row[0],
        )

    @property
    def n_codings(self) -> int:
        return self.overview.n_codings

    def chart_series(self, keys: tuple[str, ...]) -> dict[str, list[charts.Bar]]:
        rows = self.sources
        return {
            key: [
                charts.Bar(r.label, r.stats[key].mean, r.stats[key].sd, r.stats[key].n) for r in rows
            ]
            for key in keys
        }

    def chart(self, name: str, fmt: str = "svg") -> bytes:
        """Chart ``name`` ("summary" or "counts") as SVG or PNG bytes."""
        if name == "summary":
            keys = charts.THRESHOLD_CHART_KEYS
            thresholds = {k: (t.fair, t.good) for k, t in miti.THRESHOLDS.items()}
        elif name == "counts":
            keys, thresholds = charts.COUNT_CHART_KEYS, {}
        else:
            raise ValueError(f"unknown chart {name!r}; expected one of: {', '.join(charts.CHARTS)}")
        # Drawing takes matplotlib a second or two: the picture is cached with the numbers it shows.
        return results_cache.get_or_compute(
            self.study, self.coding_round, self.fingerprint, self._cache_part(f"chart-{name}-{fmt}-{get_language()}"),
            lambda: charts.draw(keys, self.chart_series(keys), thresholds, fmt=fmt, translate=gettext),
        )


    def reliability_chart(self, name: str, fmt: str = "svg") -> bytes:
        """``icc``: ICC(2,1) and its 95 % CI per summary score; ``kappa``: Fleiss' κ per code (needs
        ``per_code``). Both over the Cicchetti bands; a statistic that is not estimable is labelled so."""
        rel = self.reliability
        if name == "icc":
            scores = [s for s in rel.scores if s.group == "summary"]
            items = [
                charts.Agreement(
                    s.key, gettext(LABELS.get(s.key, s.key)), s.icc.single.value,
                    *(s.icc.single.ci95 or (None, None)),
                )
                for s in scores
            ]
            draw = charts.draw_icc
        elif name == "kappa":
            items = [charts.Agreement(c.code, c.code, c.fleiss.kappa) for c in rel.utterances.per_code]
            draw = charts.draw_kappa
        else:
            raise ValueError(f"unknown reliability chart {name!r}; expected 'icc' or 'kappa'")
        return results_cache.get_or_compute(
            self.study, self.coding_round, self.fingerprint,
            self._cache_part(f"chart-reliability-{name}-{int(self.per_code)}-{fmt}-{get_language()}"),
            lambda: draw(items, fmt=fmt, translate=gettext),
        )


def metric_rows(study: Study) -> list[MetricRow]:
    rows: list[MetricRow] = []
    for run in queries.runs_of(study):
        model = run.model
        row = MetricRow(
            run_id=run.pk,
            model=model.name,
            base_model=model.base_of.name if model.base_of_id else "",
            finetuned=model.is_finetuned,
            split=run.split,
            status=run.get_status_display(),
            report=hasattr(run, "metric_report"),
        )
        if row.report:
            report = run.metric_report
            pooled, extra = report.pooled, report.extra
            row.n_rounds = report.n_rounds
            row.n_dialogues = int(extra.get("n_dialogues") or 0)
            row.tokenizer = report.tokenizer
            row.language = report.language
            row.values = {
                "bleu4": pooled.get("bleu4"),
                "rouge1": pooled.get("rouge1"),
                "rouge2": pooled.get("rouge2"),
                "rougeL": pooled.get("rougeL"),
                "length": pooled.get("length"),
                "distinct_1": extra.get("distinct_1"),
                "distinct_2": extra.get("distinct_2"),
                "empty_rate": pooled.get("empty_rate"),
            }
        rows.append(row)
    # Base models before their fine-tunes, as the paper's table reads.
    rows.sort(key=lambda r: (r.base_model or r.model, r.finetuned, r.model, r.run_id))
    return rows


def build_results(
    study: Study,
    coding_round: CodingRound | None = None,
    *,
    per_code: bool = True,
    group_by: str = grouping.SOURCE,
    group: str | None = None,
) -> Results:
    """Summaries, aggregates, reliability and metrics of ``study`` (or one round), each on first use.
    ``per_code=False`` skips the per-code utterance agreement, which the dashboard does not show.
    ``group_by`` splits each source by split, coder or a metadata field (``evaluation.grouping``);
    ``group`` restricts everything, reliability included, to one group.

    One query up front (the scope's fingerprint); the aggregates, reliability and charts come from the
    results cache when nothing changed since they were computed."""
    return Results(
        study=study,
        coding_round=coding_round,
        per_code=per_code,
        fingerprint=results_cache.fingerprint(study, coding_round),
        group_by=group_by,
        group=group or None,
    )


# --- shared presentation --------------------------------------------------------------------------------


def fmt_value(key: str, value: float | int | None, digits: int = 2) -> str:
    """A score as the page and report print it: %CR in percent, counts as integers, None as "n/a"."""
    if value is None:
        return "n/a"
    if key == "pct_cr":
        return f"{100 * value:.1f} %"
    if key in TALLY_KEYS or key in ("mia", "mina", "gi", "persuade_with"):
        # A transcript's count is an integer; a mean over coders or transcripts may not be.
        return str(int(value)) if float(value).is_integer() else f"{value:.{digits}f}"
    return f"{value:.{digits}f}"


def reason_display(text: str) -> str:
    """Why a statistic has no value, in the page's language when it is one of the reliability module's
    reasons (docs/metrics.md, "When a statistic is not estimable"); any other text as it is."""
    parsed = irr.parse_reason(text)
    if parsed is None:
        return text
    template, values = parsed
    return gettext(template).format(**values)


def raters_display(raters: str) -> str:
    """ICC raters ("coders" or "positions") as the pages name them."""
    return gettext(RATERS_TEXT[raters]) if raters in RATERS_TEXT else raters


def threshold_text(key: str) -> str:
    t = miti.THRESHOLDS.get(key)
    if t is None:
        return "—"
    if key == "pct_cr":
        return f"{100 * t.fair:.0f} % / {100 * t.good:.0f} %"
    if key == "r_to_q":
        return f"{t.fair:g}:1 / {t.good:g}:1"
    return f"{t.fair:g} / {t.good:g}"


SUMMARY_TABLE_KEYS: tuple[str, ...] = SCORE_KEYS
ALL_TABLE_KEYS: tuple[str, ...] = SCORE_KEYS + GLOBAL_KEYS + TALLY_KEYS
LABELS = VALUE_LABELS

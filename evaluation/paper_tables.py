"""The paper's tables, built once from ``Results``: the Tables page and its CSV/XLSX/Markdown/LaTeX files.

1. Automatic metrics per model × split; a fine-tuned model's row carries its registered base model's
   numbers on the same split beside its own.
2. MITI summary scores per source (reference dialogues first): mean ± SD, n, share meeting Fair/Good;
   per (source, group) when the results are grouped.
3. Reliability per score: ICC(2,1) and ICC(2,k) with 95 % CIs, band, Krippendorff's alpha, n — the
   numbers ``evaluation.reliability`` gives, with its "not estimable" reasons where it has them.
4. Paired comparisons of each generated source with the reference on the same dialogues
   (``evaluation.paired``), per group when grouped by split or metadata.

Each table has a *display* form (formatted cells: the page, Markdown, LaTeX) and a *raw* form (numbers
unrounded, one row per value: CSV and XLSX). The whole ``PaperTables`` is cached with the results.
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.utils.translation import get_language
from django.utils.translation import gettext as _

from annotation import miti
from annotation.models import Transcript, TranscriptSource

from . import paired, results_cache
from .exports import Table
from .reasons import translate_reason
from .results import METRIC_COLUMNS, Results, fmt_value
from .summaries import CONSENSUS, display_label
from .table_formats import DisplayTable, to_latex, to_markdown
from .xlsx import XlsxWriter

PAPER_METRICS: tuple[str, ...] = ("bleu4", "rouge1", "rouge2", "rougeL")
SCORE_KEYS: tuple[str, ...] = miti.SUMMARY_KEYS
FORMATS: dict[str, tuple[str, str]] = {
    "csv": ("zip", "application/zip"),
    "xlsx": ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "md": ("md", "text/markdown; charset=utf-8"),
    "tex": ("tex", "application/x-tex; charset=utf-8"),
}


@dataclass
class PaperTable:
    display: DisplayTable
    raw: Table


@dataclass
class PaperTables:
    tables: list[PaperTable]

    def display(self) -> list[DisplayTable]:
        return [t.display for t in self.tables]


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _p(value: float | None) -> str:
    if value is None:
        return "—"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f} %"


def _ci(ci: tuple[float, float] | None, digits: int = 2) -> str:
    return "" if ci is None else f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


# --- 1. automatic metrics -----------------------------------------------------------------------------


def metrics_table(results: Results) -> PaperTable:
    rows = results.metrics
    by_model_split = {(r.model, r.split): r for r in rows if r.report}
    with_base = any(r.base_model for r in rows)
    labels = dict(METRIC_COLUMNS)
    header = [_("Model"), _("Split")]
    for key in PAPER_METRICS:
        if with_base:
            header.append(_("%(metric)s base") % {"metric": labels[key]})
        header.append(labels[key])
    display_rows: list[list[str]] = []
    raw_rows: list[list[Any]] = []
    for r in rows:
        if not r.report:
            continue
        base = by_model_split.get((r.base_model, r.split)) if r.base_model else None
        name = f"{r.model} ({_('fine-tuned from %(base)s') % {'base': r.base_model}})" if r.base_model else r.model
        cells = [name, r.split]
        for key in PAPER_METRICS:
            if with_base:
                cells.append(_num(base.values.get(key)) if base else "—")
            cells.append(_num(r.values.get(key)))
        display_rows.append(cells)
        raw_rows.append([r.run_id, r.model, r.base_model, r.finetuned, r.split, r.n_dialogues, r.n_rounds,
                         *[r.values.get(k) for k in PAPER_METRICS],
                         *[(base.values.get(k) if base else None) for k in PAPER_METRICS]])
    display = DisplayTable(
        "automatic_metrics", _("Automatic metrics per model and split (BLEU-4, ROUGE F1, pooled over rounds)"),
        header, display_rows, (_("A fine-tuned model's base columns are its registered base model's run on the same split."),),
        numeric_from=2,
    )
    raw = Table("automatic_metrics",
                ["run_id", "model", "base_model", "finetuned", "split", "n_dialogues", "n_rounds", *PAPER_METRICS,
                 *[f"base_{k}" for k in PAPER_METRICS]], raw_rows)
    return PaperTable(display, raw)


# --- 2. MITI summaries per source ---------------------------------------------------------------------


def miti_table(results: Results) -> PaperTable:
    header = [_("Source"), _("Transcripts")]
    for key in SCORE_KEYS:
        header.append(display_label(key))
    display_rows: list[list[str]] = []
    raw_rows: list[list[Any]] = []
    for row in results.sources:
        cells = [row.label, str(row.transcripts)]
        for key in SCORE_KEYS:
            st = row.stats[key]
            if not st.n:
                cells.append("—")
                continue
            text = f"{fmt_value(key, st.mean)}"
            if st.sd is not None:
                text += f" ± {fmt_value(key, st.sd)}"
            text += f" (n={st.n})"
            if key in miti.THRESHOLDS:
                text += f"; {_('Fair')} {_share(st.share_fair)}, {_('Good')} {_share(st.share_good)}"
            cells.append(text)
            raw_rows.append([row.source.label, row.source.kind, row.group, key, st.n, st.mean, st.sd,
                             st.share_fair, st.share_good])
        display_rows.append(cells)
    thresholds = "; ".join(
        f"{display_label(k)} {t.fair:g}/{t.good:g}" for k, t in miti.THRESHOLDS.items() if k in SCORE_KEYS
    )
    display = DisplayTable(
        "miti_by_source", _("MITI 4.2.1 summary scores per source: mean ± SD (n), share meeting Fair / Good"),
        header, display_rows, (results.aggregates.note, _("Fair / Good thresholds: %(t)s.") % {"t": thresholds}),
        numeric_from=1,
    )
    raw = Table("miti_by_source",
                ["source", "source_kind", "group", "score", "n", "mean", "sd", "share_fair", "share_good"], raw_rows)
    return PaperTable(display, raw)


# --- 3. reliability -----------------------------------------------------------------------------------


def reliability_table(results: Results) -> PaperTable:
    rel = results.reliability
    header = [_("Score"), "n", "ICC(2,1) [95 % CI]", "ICC(2,k) [95 % CI]", _("Band"), "Krippendorff α"]
    display_rows: list[list[str]] = []
    raw_rows: list[list[Any]] = []
    for s in rel.scores:
        i, a = s.icc, s.alpha
        if i.status == "ok":
            icc1, icck, band = f"{_num(i.icc2_1)}{_ci(i.ci95_2_1)}", f"{_num(i.icc2_k)}{_ci(i.ci95_2_k)}", _(i.band) if i.band else ""
        else:
            reason = translate_reason(i.reason) if i.reason else i.status
            icc1, icck, band = _("not estimable (%(reason)s)") % {"reason": reason}, "—", ""
        alpha = _num(a.alpha, 3) if a.status == "ok" else "—"
        display_rows.append([display_label(s.key), str(i.n), icc1, icck, band, alpha])
        raw_rows.append([s.key, s.label, i.n, i.k, i.icc2_1, *(i.ci95_2_1 or (None, None)), i.icc2_k,
                         *(i.ci95_2_k or (None, None)), i.band, i.status, i.reason, a.alpha, a.n_units, a.status,
                         a.reason])
    notes = [_("%(n)s double-coded transcripts; ICC raters: %(raters)s, k = %(k)s.")
             % {"n": rel.n_transcripts, "raters": rel.raters, "k": rel.k}, *rel.notes]
    if results.group:
        notes.append(_("Only the group %(group)s of %(by)s.") % {"group": results.group, "by": results.group_by})
    display = DisplayTable("reliability", _("Reliability between coders per score"), header, display_rows,
                           tuple(notes), numeric_from=1)
    raw = Table("reliability",
                ["score", "label", "n", "k", "icc2_1", "icc2_1_ci_low", "icc2_1_ci_high", "icc2_k", "icc2_k_ci_low",
                 "icc2_k_ci_high", "band", "icc_status", "icc_reason", "alpha", "alpha_units", "alpha_status",
                 "alpha_reason"], raw_rows)
    return PaperTable(display, raw)


# --- 4. paired comparisons ----------------------------------------------------------------------------


def _final_values(results: Results) -> dict[tuple[int, int, str], dict[str, float]]:
    """{(source, dialogue, group): {score: final value}}: consensus, else the mean of the coders."""
    data = results.summaries
    dialogue_of = dict(
        Transcript.objects.filter(source__study=results.study).values_list("id", "dialogue_id").iterator(chunk_size=10000)
    )
    group_of = results.group_of if results.group_by not in ("source", "coder") else None
    collected: dict[tuple[int, int, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    consensus_of = {s.transcript_id for s in data.consensus}
    for s in data.final_rows():
        if s.kind != CONSENSUS and s.transcript_id in consensus_of:
            continue
        key = (s.source_id, dialogue_of.get(s.transcript_id, -1), group_of(s) if group_of else "")
        for score in SCORE_KEYS:
            value = s.value(score)
            if value is not None:
                collected[key][score].append(float(value))
    return {key: {k: sum(v) / len(v) for k, v in scores.items()} for key, scores in collected.items()}


def paired_table(results: Results) -> PaperTable:
    sources = results.overview.sources
    reference_ids = [sid for sid, info in sources.items() if info.kind == TranscriptSource.Kind.REFERENCE]
    generated_ids = [sid for sid, info in sources.items() if info.kind == TranscriptSource.Kind.GENERATED]
    values = _final_values(results) if reference_ids and generated_ids else {}
    groups = sorted({g for (_s, _d, g) in values})
    header = [_("Source vs reference"), _("Score"), "n", _("Mean difference [95 % CI]"), "Wilcoxon p (Holm)",
              _("Rank-biserial r"), "t-test p (Holm)", "Cohen's d_z"]
    display_rows: list[list[str]] = []
    raw_rows: list[list[Any]] = []
    for sid in generated_ids:
        for group in groups:
            pairs: dict[str, list[tuple[float, float]]] = {k: [] for k in SCORE_KEYS}
            for (source, dialogue, g), generated in values.items():
                if source != sid or g != group:
                    continue
                for ref in reference_ids:
                    reference = values.get((ref, dialogue, g))
                    if reference is None:
                        continue
                    for key in SCORE_KEYS:
                        if key in generated and key in reference:
                            pairs[key].append((generated[key], reference[key]))
                    break  # the first reference source that has the dialogue
            if not any(pairs.values()):
                continue
            name = sources[sid].label + (f" · {group}" if group else "")
            for r in paired.compare_scores(pairs):
                digits = 3 if r.key == "pct_cr" else 2
                diff = "—" if r.mean_difference is None else f"{r.mean_difference:+.{digits}f}{_ci(r.ci95, digits)}"
                display_rows.append([
                    name, display_label(r.key), str(r.n), diff,
                    f"{_p(r.wilcoxon_p)} ({_p(r.wilcoxon_p_holm)})", _num(r.rank_biserial),
                    f"{_p(r.t_p)} ({_p(r.t_p_holm)})", _num(r.cohens_dz),
                ])
                raw_rows.append([sources[sid].label, group, r.key, r.n, r.mean_generated, r.mean_reference,
                                 r.mean_difference, *(r.ci95 or (None, None)), r.wilcoxon_p, r.wilcoxon_p_holm,
                                 r.rank_biserial, r.t_p, r.t_p_holm, r.cohens_dz, r.reason])
    display = DisplayTable(
        "paired_comparisons",
        _("Each generated source against the reference on the same dialogues (generated − reference)"),
        header, display_rows,
        (_("Per dialogue the transcript's final value (consensus, else the mean of its coders). Wilcoxon signed-rank "
           "(zero differences dropped) and paired t-test, two-sided; p in brackets Holm-adjusted across the scores "
           "of one comparison."),),
        numeric_from=2,
    )
    raw = Table("paired_comparisons",
                ["source", "group", "score", "n", "mean_generated", "mean_reference", "mean_difference", "ci_low",
                 "ci_high", "wilcoxon_p", "wilcoxon_p_holm", "rank_biserial", "t_p", "t_p_holm", "cohens_dz",
                 "reason"], raw_rows)
    return PaperTable(display, raw)


def paper_tables(results: Results) -> PaperTables:
    """The four tables, from the results cache while the scope is unchanged."""

    def compute() -> PaperTables:
        return PaperTables([metrics_table(results), miti_table(results), reliability_table(results),
                            paired_table(results)])

    # Metrics change without a coding changing: the runs' scoring state joins the key.
    stamp = "|".join(f"{r.run_id}:{r.status}:{r.n_rounds}:{r.values}" for r in results.metrics)
    digest = hashlib.sha1(stamp.encode(), usedforsecurity=False).hexdigest()[:12]
    return results_cache.get_or_compute(
        results.study, results.coding_round, results.fingerprint,
        f"paper-{results.group_by}-{results.group or ''}-{get_language()}-{digest}", compute,
    )


# --- files --------------------------------------------------------------------------------------------


def write(tables: PaperTables, fmt: str, out: Path) -> None:
    """The tables as a zip of CSV files, one XLSX workbook (a sheet each), Markdown or LaTeX."""
    if fmt == "md":
        out.write_text(to_markdown(tables.display()), encoding="utf-8")
    elif fmt == "tex":
        out.write_text(to_latex(tables.display()), encoding="utf-8")
    elif fmt == "xlsx":
        with XlsxWriter(out) as book:
            for t in tables.tables:
                book.sheet(t.raw.name, t.raw.header, t.raw.rows)
    elif fmt == "csv":
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for t in tables.tables:
                buffer = io.StringIO()
                writer = csv.writer(buffer)
                writer.writerow(t.raw.header)
                writer.writerows(t.raw.rows)
                archive.writestr(f"{t.raw.name}.csv", buffer.getvalue().encode("utf-8-sig"))
    else:
        raise ValueError(f"unknown table format {fmt!r}; use one of: {', '.join(FORMATS)}")

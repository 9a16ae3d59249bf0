"""The printable MITI report: HTML (print CSS, charts inline as SVG) and PDF (reportlab, charts as PNG).

Both take a ``Results`` so their numbers are the dashboard's. Sections: study and scope; methods
(instrument version, coders, rounds and overlap, aggregation rule, reliability and metric
definitions); MITI results per source with the Fair/Good thresholds; per coder; reliability with the
published reference bands; automatic metrics per model.
"""

from __future__ import annotations

import io
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from annotation import miti
from annotation import queries as annotation_queries
from annotation.models import CodingRound

from . import metrics as metric_defs
from .reliability import CICCHETTI_BANDS, Estimate
from .reliability_data import REFERENCE_BANDS, STATUS_TEXT
from .results import METRIC_COLUMNS, SUMMARY_TABLE_KEYS, Results, fmt_value, reason_display, threshold_text

# The reliability methods as the report prints them: marked for translation (the page shows it in its
# language, the PDF in English), followed by the Cicchetti bands.
RELIABILITY_TEXT = gettext_noop(
    "Computed on transcripts with two or more submitted codings (consensus codings excluded). "
    "ICC(2,1) and ICC(2,k): two-way random effects, absolute agreement (Shrout & Fleiss 1979), with 95 percent "
    "confidence intervals (McGraw & Wong 1996), per score, never pooled across scores. Krippendorff's alpha: "
    "interval level for scores; nominal for utterance codes, each utterance a unit, \"no code\" a category, "
    "missing = not coded; alpha is computed for globals and counts, the ratios %CR and R:Q get ICC only. "
    "Cohen's kappa per coder pair on the utterances both coded; Fleiss' kappa when every utterance "
    "has the same number of coders."
)
RELIABILITY_METHODS = RELIABILITY_TEXT + " " + CICCHETTI_BANDS + "."
ALL_ROUNDS = gettext_noop("all coding rounds")


def _round_rows(results: Results) -> list[dict[str, Any]]:
    rounds = (
        [results.coding_round]
        if results.coding_round is not None
        else list(CodingRound.objects.filter(study=results.study).order_by("created_at", "id"))
    )
    progress = annotation_queries.totals_by_round(
        annotation_queries.coding_progress(results.study, results.coding_round)
    )
    rows = []
    for r in rounds:
        counted = progress.get(r.pk) or annotation_queries.RoundTotal(r.pk, r.name)
        rows.append({
            "name": r.name,
            "overlap": f"{100 * r.overlap:.0f} %",
            "seed": r.seed,
            "instrument": r.instrument_version,
            "globals_rated": r.globals_rated,
            "coders": r.coders.count(),
            "assignments": counted.total,
            "submitted": counted.submitted,
        })
    return rows


def methods(results: Results) -> dict[str, Any]:
    """The methods section as data: the HTML and the PDF print the same text."""
    study = results.study
    codings = results.summaries.codings
    return {
        "instrument": study.instrument_version,
        "change_goal": study.change_goal,
        "language": study.get_language_display(),
        "scope": results.coding_round.name if results.coding_round else ALL_ROUNDS,
        "rounds": _round_rows(results),
        "coders": [(name, n) for name, n, _stats in results.coders],
        "n_codings": len(codings),
        "n_transcripts": len({s.transcript_id for s in codings} | {s.transcript_id for s in results.summaries.consensus}),
        "n_double": results.reliability.n_transcripts,
        "n_consensus": len(results.summaries.consensus),
        "aggregation": results.aggregates.note,
        "reliability": RELIABILITY_METHODS,
        "reliability_text": RELIABILITY_TEXT,
        "metrics": metric_defs.DEFINITIONS,
        "thresholds": [
            (miti.SUMMARY_LABELS[k], miti.SUMMARY_FORMULAS[k], threshold_text(k)) for k in SUMMARY_TABLE_KEYS
        ],
        "reference_bands": REFERENCE_BANDS,
    }


def withheld_display(results: Results) -> list[tuple[str, list[str]]]:
    """The report's "not reported as a number" list in the page's language: reasons and score names
    translated at render time (``StudyReliability.withheld`` keeps the English the PDF prints)."""
    from .summaries import display_label

    rel = results.reliability
    labels = {s.label: display_label(s.key) for s in rel.scores}
    names = {"utterance alpha": gettext("utterance alpha"), "Fleiss kappa": "Fleiss' kappa",
             "alpha": "alpha", "Cohen kappa": "Cohen's kappa"}
    shown = []
    for why, whats in rel.withheld():
        translated = []
        for what in whats:
            for english, local in labels.items():
                if what.startswith(english + " "):
                    what = local + what[len(english):]
                    break
            else:
                for english, local in names.items():
                    if what.startswith(english):
                        what = local + what[len(english):]
                        break
            translated.append(what.replace("95 % CI", gettext("95 percent CI")))
        shown.append((reason_display(why) if why != "no value" else gettext("no value"), translated))
    return shown


def report_context(results: Results) -> dict[str, Any]:
    return {
        "withheld": withheld_display(results),
        "results": results,
        "study": results.study,
        "methods": methods(results),
        "generated": timezone.now(),
        "summary_chart": results.chart("summary", "svg").decode("utf-8"),
        "counts_chart": results.chart("counts", "svg").decode("utf-8"),
        "score_keys": SUMMARY_TABLE_KEYS,
        "metric_columns": METRIC_COLUMNS,
    }


def render_html(results: Results) -> str:
    """The report as one self-contained HTML page (inline CSS and SVG, no external files)."""
    return render_to_string("evaluation/report.html", report_context(results))


# --- PDF ------------------------------------------------------------------------------------------------


def _cell(text: str, style) -> Any:
    from xml.sax.saxutils import escape

    from reportlab.platypus import Paragraph

    return Paragraph(escape(str(text)), style)


def _fonts() -> tuple[str, str]:
    """(regular, bold) font names; a CJK CID font when reportlab has one, so Chinese labels print."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    try:
        pdfmetrics.getFont("STSong-Light")
    except KeyError:
        try:
            pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
        except Exception:  # noqa: BLE001 - no CJK font data in this reportlab: Latin text still prints
            return "Helvetica", "Helvetica-Bold"
    return "STSong-Light", "STSong-Light"


def _stat_text(key: str, stats) -> str:
    if stats.n == 0:
        return "n/a (n=0)"
    sd = f" ± {fmt_value(key, stats.sd)}" if stats.sd is not None else ""
    return f"{fmt_value(key, stats.mean)}{sd} (n={stats.n})"


def _share(stats) -> str:
    if stats.share_fair is None:
        return "—"
    return f"{100 * stats.share_fair:.0f} % / {100 * stats.share_good:.0f} %"


def _value(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def render_pdf(results: Results) -> bytes:
    """The report as PDF bytes (A4, tables and the two charts)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Image, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    regular, bold = _fonts()
    base = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=base["BodyText"], fontName=regular, fontSize=9, leading=12)
    small = ParagraphStyle("small", parent=body, fontSize=7.5, leading=9.5)
    h1 = ParagraphStyle("h1", parent=base["Heading1"], fontName=bold, fontSize=16)
    h2 = ParagraphStyle("h2", parent=base["Heading2"], fontName=bold, fontSize=12, spaceBefore=8)
    study = results.study
    m = methods(results)
    width = A4[0] - 30 * mm
    table_style = TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#c9cfdb")),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef1f7")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ])

    def table(rows: list[list[str]], widths: list[float] | None = None) -> Table:
        t = Table([[_cell(c, small) for c in row] for row in rows], colWidths=widths, repeatRows=1)
        t.setStyle(table_style)
        return t

    story: list[Any] = [
        Paragraph(f"MITI report: {study.name}", h1),
        Paragraph(
            # " | ", not a middle dot: the CJK CID font used for Chinese labels has no glyph for U+00B7.
            f"{m['instrument']} | {m['language']} | change goal: {m['change_goal']} | scope: {m['scope']} | "
            f"generated {timezone.localtime(timezone.now()):%Y-%m-%d %H:%M}",
            body,
        ),
        Paragraph("Methods", h2),
        Paragraph(
            f"{m['n_codings']} submitted codings of {m['n_transcripts']} transcripts by {len(m['coders'])} "
            f"coders; {m['n_double']} transcripts double-coded; {m['n_consensus']} consensus codings.",
            body,
        ),
    ]
    if m["rounds"]:
        story.append(table(
            [["Round", "Instrument", "Overlap", "Seed", "Coders", "Submitted / assignments", "Globals"]]
            + [[r["name"], r["instrument"], r["overlap"], str(r["seed"]), str(r["coders"]),
                f"{r['submitted']} / {r['assignments']}", "rated" if r["globals_rated"] else "not rated"]
               for r in m["rounds"]]
        ))
    story += [
        Paragraph(m["aggregation"], small),
        Paragraph(m["reliability"], small),
        Paragraph(m["metrics"].replace("\n", " "), small),
        table([["Summary score", "Formula", "Fair / Good"]] + [list(t) for t in m["thresholds"]]),
        Paragraph("MITI results per source", h2),
    ]
    sources = results.sources
    header = ["Score", "Fair / Good"] + [f"{r.label} ({r.transcripts} transcripts)" for r in sources]
    rows = [header]
    for key in SUMMARY_TABLE_KEYS:
        rows.append([miti.SUMMARY_LABELS[key], threshold_text(key)]
                    + [_stat_text(key, r.stats[key]) for r in sources])
        if key in miti.THRESHOLDS:
            rows.append(["  meets Fair / Good", ""] + [_share(r.stats[key]) for r in sources])
    story.append(table(rows) if sources else Paragraph("No submitted codings yet.", body))
    for name in ("summary", "counts"):
        png = results.chart(name, "png")
        image = Image(io.BytesIO(png))
        scale = width / image.imageWidth
        image.drawWidth, image.drawHeight = width, image.imageHeight * scale
        story += [image, Spacer(1, 4 * mm)]

    coders = results.coders
    if coders:
        story.append(Paragraph("Per coder (own codings)", h2))
        rows = [["Coder", "Codings"] + [miti.SUMMARY_LABELS[k] for k in SUMMARY_TABLE_KEYS]]
        rows += [[name, str(n)] + [_stat_text(k, stats[k]) for k in SUMMARY_TABLE_KEYS] for name, n, stats in coders]
        story.append(table(rows))

    story += [PageBreak(), Paragraph("Reliability", h2)]
    rel = results.reliability
    story.append(Paragraph(
        f"{rel.n_transcripts} double-coded transcripts; coders: {', '.join(rel.coders.values()) or '—'}; "
        f"ICC raters: {rel.raters} (k = {rel.k}). " + " ".join(rel.notes), body))
    story.append(table(
        [["Reference", "Band", "Source"]] + [list(b) for b in REFERENCE_BANDS]
    ))
    rows = [["Score", "n", "ICC(2,1) [95 % CI]", "Band", "ICC(2,k) [95 % CI]", "alpha (interval)"]]

    def icc_text(e: Estimate, status: str) -> str:
        # Only an Estimate's value is printed; an omitted interval says so (the reason is listed below).
        if e.value is None:
            return STATUS_TEXT.get(status if status != "ok" else "not_estimable", status)
        ci = f" [{e.ci95[0]:.2f}, {e.ci95[1]:.2f}]" if e.ci95 else " [CI omitted]"
        return f"{e.value:.3f}{ci}"

    for s in rel.scores:
        i = s.icc
        if s.alpha.status == "not_applicable":
            alpha = "—"
        else:
            alpha = _value(s.alpha.alpha) if s.alpha.status == "ok" else STATUS_TEXT.get(s.alpha.status, "")
        rows.append([s.label, str(i.n), icc_text(i.single, i.status), i.single.band or "—",
                     icc_text(i.average, i.status), alpha])
    story.append(table(rows))
    u = rel.utterances
    rows = [["Utterance-level statistic", "Value", "Units", "Band"]]

    def stat(label: str, value: float | None, n: int, status: str, band: str | None) -> list[str]:
        return [label, _value(value) if status == "ok" else STATUS_TEXT.get(status, status), str(n), band or "—"]

    rows.append(stat("Krippendorff alpha (nominal)", u.alpha.alpha, u.alpha.n_units, u.alpha.status, None))
    rows.append(stat("Fleiss kappa", u.fleiss.kappa, u.fleiss.n_units, u.fleiss.status, u.fleiss.band))
    for p in u.pairs:
        rows.append(stat(f"Cohen kappa {p.coder_a} / {p.coder_b}", p.kappa.kappa, p.kappa.n_units,
                         p.kappa.status, p.kappa.band))
    for c in u.per_code:
        rows.append(stat(f"{c.code}: alpha (this code vs other)", c.alpha.alpha, c.alpha.n_units,
                         c.alpha.status, None))
    story.append(table(rows))
    withheld = rel.withheld()
    if withheld:
        story.append(Paragraph("Not reported as a number, and why", h2))
        from xml.sax.saxutils import escape

        story += [Paragraph(f"<b>{escape(why)}</b>: {escape(', '.join(what))}", small) for why, what in withheld]

    story.append(Paragraph("Automatic metrics (×100, mean over rounds)", h2))
    if results.metrics:
        rows = [["Model", "Base", "Rounds"] + [label for _k, label in METRIC_COLUMNS]]
        for r in results.metrics:
            rows.append([r.model, r.base_model or ("(base)" if not r.finetuned else ""), str(r.n_rounds)]
                        + [_value(r.values.get(k), 2) if r.report else "not computed" for k, _l in METRIC_COLUMNS])
        story.append(table(rows))
    else:
        story.append(Paragraph("No generation runs in this study.", body))

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm, bottomMargin=15 * mm,
        title=f"MITI report: {study.name}", author="MI Platform", creator="MI Platform",
    )
    doc.build(story)
    return buffer.getvalue()

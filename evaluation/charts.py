"""Dashboard and report charts, drawn with matplotlib (Agg backend) from local files only.

Pure module: plain data in, SVG or PNG bytes out, no Django. Each threshold line carries an SVG id
(``threshold-fair-technical``, ``threshold-good-pct_cr`` …) so a page, a test or a reader's browser
can find it; the SVG keeps its text as text (``svg.fonttype = none``) so it stays searchable and
sharp in print. Bars are the per-source means, whiskers ± 1 SD, the number under each bar is n.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import matplotlib

matplotlib.use("Agg")

from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

# matplotlib's pyplot state is not thread-safe; gunicorn threads or Celery threads may draw at once.
_LOCK = threading.Lock()

# Local CJK fonts (Debian fonts-noto-cjk, fonts-wqy-*) for source labels in Chinese. matplotlib's font
# cache may predate their installation, so they are registered explicitly when present.
CJK_FONT_FILES: tuple[str, ...] = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
)
CJK_FAMILIES: tuple[str, ...] = ("Noto Sans CJK SC", "Noto Serif CJK SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei")


@lru_cache(maxsize=1)
def font_family() -> tuple[str, ...]:
    """Latin text first, then the first CJK family found (matplotlib falls back per glyph).

    Called on the first chart, not at import: reading the CJK font files takes about a second."""
    from pathlib import Path

    from matplotlib import font_manager

    for path in CJK_FONT_FILES:
        if Path(path).exists():
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):  # an unreadable font file: draw without it
                continue
    known = {f.name for f in font_manager.fontManager.ttflist}
    return ("DejaVu Sans", *[f for f in CJK_FAMILIES if f in known][:1])
def gettext_noop(message: str) -> str:
    """Mark ``message`` for the catalogue (no Django here); ``draw`` gets the page's ``translate``."""
    return message


Translate = Callable[[str], str]


def _same(text: str) -> str:
    return text


FAIR_COLOUR = "#a15c00"
GOOD_COLOUR = "#17803d"
BAR_COLOURS = ["#5b6475", "#2855c5", "#7a4fc4", "#0f8b8d", "#c04a7a", "#8a6d1f", "#3f7f3f", "#a33"]

THRESHOLD_CHART_KEYS: tuple[str, ...] = ("technical", "relational", "pct_cr", "r_to_q")
COUNT_CHART_KEYS: tuple[str, ...] = ("mia", "mina", "gi", "persuade_with")
CHART_TITLES: dict[str, str] = {
    "technical": gettext_noop("Technical global"),
    "relational": gettext_noop("Relational global"),
    "pct_cr": gettext_noop("% Complex Reflection"),
    "r_to_q": gettext_noop("Reflection : Question"),
    "mia": gettext_noop("MI-adherent (total)"),
    "mina": gettext_noop("MI non-adherent (total)"),
    "gi": gettext_noop("Giving Information"),
    "persuade_with": gettext_noop("Persuade with Permission"),
}
CHARTS: dict[str, str] = {
    "summary": gettext_noop("MITI summary scores per source, with the Fair and Good thresholds"),
    "counts": gettext_noop("MITI behaviour totals per source"),
}
NOT_AVAILABLE = gettext_noop("n/a")
FAIR = gettext_noop("Fair")
GOOD = gettext_noop("Good")


@dataclass(frozen=True)
class Bar:
    """One source's value for one score: mean, SD (or None) and n."""

    label: str
    mean: float | None
    sd: float | None
    n: int


def _scale(key: str) -> float:
    return 100.0 if key == "pct_cr" else 1.0  # %CR is stored as a fraction, shown in percent


def _panel(
    ax, key: str, bars: Sequence[Bar], thresholds: Mapping[str, tuple[float, float]], translate: Translate = _same
) -> None:
    scale = _scale(key)
    xs = list(range(len(bars)))
    heights = [(b.mean or 0.0) * scale for b in bars]
    errors = [(b.sd or 0.0) * scale for b in bars]
    colours = [BAR_COLOURS[i % len(BAR_COLOURS)] for i in xs]
    ax.bar(xs, heights, yerr=errors, color=colours, capsize=3, width=0.6, error_kw={"elinewidth": 1})
    top = max([h + e for h, e in zip(heights, errors, strict=True)] + [1.0])
    for x, b in zip(xs, bars, strict=True):
        if b.mean is None:
            ax.text(x, 0.02 * top, translate(NOT_AVAILABLE), ha="center", va="bottom", fontsize=8, color="#5b6475")
    if key in thresholds:
        fair, good = (v * scale for v in thresholds[key])
        top = max(top, good * 1.15)
        line = ax.axhline(fair, color=FAIR_COLOUR, linestyle="--", linewidth=1.2)
        line.set_gid(f"threshold-fair-{key}")
        line = ax.axhline(good, color=GOOD_COLOUR, linestyle="-.", linewidth=1.2)
        line.set_gid(f"threshold-good-{key}")
        ax.text(1.0, fair, " " + translate(FAIR), transform=ax.get_yaxis_transform(), color=FAIR_COLOUR, fontsize=7,
                va="center", ha="left", clip_on=False)
        ax.text(1.0, good, " " + translate(GOOD), transform=ax.get_yaxis_transform(), color=GOOD_COLOUR, fontsize=7,
                va="center", ha="left", clip_on=False)
    if key in ("technical", "relational"):
        ax.set_ylim(0, 5.2)
    else:
        ax.set_ylim(0, top * 1.1)
    ax.set_title(translate(CHART_TITLES.get(key, key)) + (" (%)" if key == "pct_cr" else ""), fontsize=10)
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{b.label}\nn={b.n}" for b in bars], fontsize=7)
    ax.tick_params(axis="y", labelsize=8)
    ax.spines[["top", "right"]].set_visible(False)


def draw(
    keys: Sequence[str],
    series: Mapping[str, Sequence[Bar]],
    thresholds: Mapping[str, tuple[float, float]] | None = None,
    *,
    fmt: str = "svg",
    title: str = "",
    translate: Translate = _same,
) -> bytes:
    """A grid of bar charts, one panel per key in ``keys``; ``series[key]`` holds one bar per source.

    ``thresholds`` maps a key to (Fair, Good) in the stored unit (fractions for %CR); those panels
    get the two dashed lines. ``fmt`` is "svg" or "png" (150 dpi). ``translate`` turns the English
    labels (titles, "Fair", "Good", "n/a") into the page's language (Django's ``gettext``).
    """
    if fmt not in ("svg", "png"):
        raise ValueError(f"chart format must be 'svg' or 'png', got {fmt!r}")
    thresholds = thresholds or {}
    n = len(keys)
    cols = 2 if n > 1 else 1
    rows = (n + cols - 1) // cols
    n_bars = max((len(series.get(k, ())) for k in keys), default=1)
    width = max(7.0, 1.2 * n_bars * cols + 2)
    with _LOCK, plt.rc_context(_style()):
        fig = Figure(figsize=(width, 2.9 * rows + (0.4 if title else 0)))
        axes = fig.subplots(rows, cols, squeeze=False)
        for i, key in enumerate(keys):
            _panel(axes[i // cols][i % cols], key, series.get(key, ()), thresholds, translate)
        for j in range(n, rows * cols):
            axes[j // cols][j % cols].set_visible(False)
        if title:
            fig.suptitle(title, fontsize=11)
        return _finish(fig, fmt)


def draw_drift(series: Mapping[str, Sequence[tuple[int, float | None]]], threshold: float, *, fmt: str = "svg",
               title: str = "", x_label: str = "", y_label: str = "") -> bytes:
    """Each coder's rolling agreement with seeded gold (kappa, one line per coder) and the alert line.

    ``series[coder]`` holds (n-th seeded coding, rolling kappa or None); a None leaves a gap. The
    threshold line has the SVG id ``drift-threshold``; each coder's line ``drift-<k>`` (k: its order).
    """
    if fmt not in ("svg", "png"):
        raise ValueError(f"chart format must be 'svg' or 'png', got {fmt!r}")
    with _LOCK, plt.rc_context(_style()):
        fig = Figure(figsize=(7.0, 3.2))
        ax = fig.subplots()
        for k, (coder, points) in enumerate(series.items()):
            xs = [x for x, _y in points]
            ys = [float("nan") if y is None else y for _x, y in points]
            (line,) = ax.plot(xs, ys, marker="o", markersize=3, linewidth=1.4, color=BAR_COLOURS[k % len(BAR_COLOURS)],
                              label=coder)
            line.set_gid(f"drift-{k}")
        line = ax.axhline(threshold, color=FAIR_COLOUR, linestyle="--", linewidth=1.2)
        line.set_gid("drift-threshold")
        ax.set_ylim(-0.2, 1.05)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # the n-th coding: whole numbers
        ax.set_xlabel(x_label, fontsize=8)
        ax.set_ylabel(y_label, fontsize=8)
        ax.tick_params(labelsize=8)
        ax.spines[["top", "right"]].set_visible(False)
        if series:
            ax.legend(fontsize=7, loc="lower left")
        if title:
            ax.set_title(title, fontsize=10)
        return _finish(fig, fmt)


# --------------------------------------------------------------------------------------------------
# Reliability: ICC with its 95 % CI per summary score, and per-code kappa, against Cicchetti's bands.
# Every mark carries an SVG id (``icc-<key>``, ``ci-<key>``, ``kappa-<code>``; ``not-estimable-…`` for
# a statistic that is not estimable, which gets a label and never a mark) so tests and readers find them.
# --------------------------------------------------------------------------------------------------

# Cicchetti (1994): poor < .40, fair .40–.59, good .60–.74, excellent >= .75.
CICCHETTI_BANDS: tuple[tuple[str, str, float, float, str], ...] = (
    ("poor", gettext_noop("poor"), -1.0, 0.40, "#fbdcd8"),
    ("fair", gettext_noop("fair"), 0.40, 0.60, "#fff1c7"),
    ("good", gettext_noop("good"), 0.60, 0.75, "#e6f5d0"),
    ("excellent", gettext_noop("excellent"), 0.75, 1.0, "#d3f2dc"),
)
NOT_ESTIMABLE = gettext_noop("not estimable")
ICC_AXIS = gettext_noop("ICC(2,1) with its 95 percent CI")
KAPPA_AXIS = gettext_noop("Fleiss' κ (this code vs any other)")
MARK_COLOUR = "#2855c5"


@dataclass(frozen=True)
class Agreement:
    """One statistic to plot: ``value`` None when not estimable; ``low``/``high`` its CI (or None)."""

    key: str
    label: str
    value: float | None
    low: float | None = None
    high: float | None = None


def _bands(ax, *, vertical: bool, low: float, translate: Translate) -> None:
    for name, text, start, end, colour in CICCHETTI_BANDS:
        start = max(start, low)
        if end <= start:
            continue
        span = (ax.axvspan if vertical else ax.axhspan)(start, end, color=colour, zorder=0, linewidth=0)
        span.set_gid(f"band-{name}")
        middle = (start + end) / 2
        if vertical:
            ax.text(middle, 1.0, translate(text), transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                    fontsize=7, color="#5b6475")
        else:
            ax.text(1.0, middle, " " + translate(text), transform=ax.get_yaxis_transform(), ha="left",
                    va="center", fontsize=7, color="#5b6475", clip_on=False)


def _finish(fig: Figure, fmt: str) -> bytes:
    """The figure as bytes. Date=None keeps an SVG byte-identical between runs (cacheable, diffable); an
    inline SVG goes into an HTML page, so the XML prolog and doctype are dropped."""
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format=fmt, dpi=150, metadata={"Date": None} if fmt == "svg" else None)
    data = out.getvalue()
    if fmt == "svg":
        text = data.decode("utf-8")
        data = text[text.index("<svg"):].encode("utf-8")
    return data


def _style() -> dict[str, object]:
    return {"font.family": list(font_family()), "svg.fonttype": "none", "svg.hashsalt": "mi-platform",
            "axes.unicode_minus": False}


def draw_icc(items: Sequence[Agreement], *, fmt: str = "svg", translate: Translate = _same) -> bytes:
    """ICC per score as a dot with its 95 % CI as a line, over the Cicchetti bands (one row per score)."""
    if fmt not in ("svg", "png"):
        raise ValueError(f"chart format must be 'svg' or 'png', got {fmt!r}")
    values = [v for i in items for v in (i.value, i.low) if v is not None]
    low = min([0.0, *values])
    with _LOCK, plt.rc_context(_style()):
        fig = Figure(figsize=(7.0, 0.9 + 0.38 * max(len(items), 1)))
        ax = fig.subplots()
        _bands(ax, vertical=True, low=low, translate=translate)
        ys = list(range(len(items)))[::-1]
        for y, item in zip(ys, items, strict=True):
            if item.value is None:
                ax.text(low + 0.02 * (1 - low), y, translate(NOT_ESTIMABLE), va="center", ha="left", fontsize=8,
                        color="#5b6475", style="italic").set_gid(f"not-estimable-{item.key}")
                continue
            if item.low is not None and item.high is not None:
                ax.hlines(y, item.low, item.high, color=MARK_COLOUR, linewidth=1.5).set_gid(f"ci-{item.key}")
            ax.plot([item.value], [y], "o", color=MARK_COLOUR, markersize=5, gid=f"icc-{item.key}")
        ax.set_yticks(ys)
        ax.set_yticklabels([item.label for item in items], fontsize=8)
        ax.set_ylim(-0.7, len(items) - 0.3)
        ax.set_xlim(low, 1.0)
        ax.set_xlabel(translate(ICC_AXIS), fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
        ax.spines[["top", "right"]].set_visible(False)
        return _finish(fig, fmt)


def draw_kappa(items: Sequence[Agreement], *, fmt: str = "svg", translate: Translate = _same) -> bytes:
    """Per-code κ as bars over the Cicchetti bands; a code whose κ is not estimable gets a label, no bar."""
    if fmt not in ("svg", "png"):
        raise ValueError(f"chart format must be 'svg' or 'png', got {fmt!r}")
    values = [i.value for i in items if i.value is not None]
    low = min([0.0, *values])
    with _LOCK, plt.rc_context(_style()):
        fig = Figure(figsize=(max(7.0, 0.55 * len(items) + 1.5), 3.2))
        ax = fig.subplots()
        _bands(ax, vertical=False, low=low, translate=translate)
        xs = list(range(len(items)))
        for x, item in zip(xs, items, strict=True):
            if item.value is None:
                ax.text(x, low + 0.02 * (1 - low), translate(NOT_ESTIMABLE), rotation=90, ha="center", va="bottom",
                        fontsize=7, color="#5b6475", style="italic").set_gid(f"not-estimable-{item.key}")
                continue
            (bar,) = ax.bar([x], [item.value], color=MARK_COLOUR, width=0.6, zorder=2)
            bar.set_gid(f"kappa-{item.key}")
        ax.set_xticks(xs)
        ax.set_xticklabels([item.label for item in items], fontsize=7, rotation=45, ha="right")
        ax.set_xlim(-0.6, len(items) - 0.4)
        ax.set_ylim(low, 1.0)
        ax.set_ylabel(translate(KAPPA_AXIS), fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.spines[["top", "right"]].set_visible(False)
        return _finish(fig, fmt)

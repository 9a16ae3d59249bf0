"""The training-loss chart as inline SVG, drawn on the server (no JavaScript, no CDN).

Pure: numbers in, an SVG string out. Only numbers and the (escaped) texts the caller passes in its
language go into the markup, so it is safe to mark as safe in a template.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape


def _english_non_finite(count: int) -> str:
    return f"{count} non-finite step(s) not drawn"


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    if high <= low:
        return [low]
    return [low + (high - low) * i / count for i in range(count + 1)]


def loss_chart_svg(
    points: Sequence[tuple[int, float]],
    width: int = 640,
    height: int = 240,
    title: str = "training loss",
    empty_note: str = "no steps logged yet",
    caption: str = "step (last loss {loss})",
    non_finite: Callable[[int], str] = _english_non_finite,
) -> str:
    """A line chart of ``(step, loss)``; an empty chart with a note when there are no points.

    The texts come in the page's language: ``caption`` has a ``{loss}`` placeholder, ``non_finite``
    words the count of steps left out (plural forms are the caller's).

    Non-finite losses (nan/inf from a diverged step) are left out of the line and counted in the
    caption, so one bad step neither breaks the chart nor hides.
    """
    left, right, top, bottom = 56, 12, 20, 32
    plot_w, plot_h = width - left - right, height - top - bottom
    finite = [(s, v) for s, v in points if math.isfinite(v)]
    bad = len(points) - len(finite)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{escape(title)}" class="loss-chart">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#ccc"/>',
    ]
    if not finite:
        parts.append(
            f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
            f'font-size="13" fill="#666">{escape(empty_note)}</text></svg>'
        )
        return "".join(parts)
    steps = [s for s, _ in finite]
    losses = [v for _, v in finite]
    x_low, x_high = min(steps), max(steps)
    y_low, y_high = min(losses), max(losses)
    if y_high - y_low < 1e-9:
        y_low, y_high = y_low - 0.5, y_high + 0.5
    x_span = max(1, x_high - x_low)

    def x(step: float) -> float:
        return left + (step - x_low) / x_span * plot_w

    def y(value: float) -> float:
        return top + (y_high - value) / (y_high - y_low) * plot_h

    for value in _ticks(y_low, y_high):
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#eee"/>'
            f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#444">{value:.3g}</text>'
        )
    for value in sorted({round(v) for v in _ticks(x_low, x_high)}):
        parts.append(
            f'<text x="{x(value):.1f}" y="{top + plot_h + 16}" text-anchor="middle" font-size="11" '
            f'fill="#444">{value}</text>'
        )
    path = " ".join(f"{'M' if i == 0 else 'L'}{x(s):.1f},{y(v):.1f}" for i, (s, v) in enumerate(finite))
    parts.append(f'<path d="{path}" fill="none" stroke="#1f6feb" stroke-width="1.5"/>')
    if len(finite) == 1:
        parts.append(f'<circle cx="{x(steps[0]):.1f}" cy="{y(losses[0]):.1f}" r="3" fill="#1f6feb"/>')
    text = caption.format(loss=f"{losses[-1]:.4f}")
    if bad:
        text += ", " + non_finite(bad)
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 4}" text-anchor="middle" font-size="11" '
        f'fill="#444">{escape(text)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)

"""Filters for the results pages: scores as MITI prints them, statistics, bands, "n/a"."""

from __future__ import annotations

from typing import Any

from django import template

from annotation import miti

from ..reliability_data import STATUS_TEXT
from ..results import LABELS, fmt_value, threshold_text

register = template.Library()


@register.filter
def get(mapping: Any, key: Any) -> Any:
    """``mapping|get:key`` — dict lookup with a variable key (None when absent)."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter
def score(value: float | int | None, key: str) -> str:
    """``value|score:key`` — %CR in percent, counts as integers, None as "n/a"."""
    return fmt_value(key, value)


@register.filter
def num(value: float | None, digits: int = 3) -> str:
    """A plain number with ``digits`` decimals, None as "n/a"."""
    return "n/a" if value is None else f"{value:.{int(digits)}f}"


@register.filter
def percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f} %"


@register.filter
def label(key: str) -> str:
    return LABELS.get(key, key)


@register.filter
def thresholds(key: str) -> str:
    return threshold_text(key)


@register.filter
def has_threshold(key: str) -> bool:
    return key in miti.THRESHOLDS


@register.filter
def status_of(value: float | None, key: str) -> str:
    """"good" / "fair" / "below" / "n/a" for a score with thresholds, "" otherwise."""
    if key not in miti.ALL_SUMMARY_KEYS:
        return ""
    return miti.threshold_status(key, value) or ""


@register.filter
def status_text(status: str) -> str:
    """A result status ("not_enough_data", "undefined", …) as shown in a table cell."""
    return STATUS_TEXT.get(status, status)


@register.filter
def ci(interval: tuple[float, float] | None) -> str:
    return "" if interval is None else f"[{interval[0]:.2f}, {interval[1]:.2f}]"

"""Filters for the results pages: scores as MITI prints them, statistics, bands, "n/a"."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.translation import gettext

from annotation import miti

from .. import reliability as irr
from ..reasons import translate_reason
from ..reliability_data import STATUS_TEXT
from ..results import fmt_value, raters_display, threshold_text
from ..summaries import display_label

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
    return gettext("n/a") if value is None else fmt_value(key, value)


@register.filter
def num(value: float | None, digits: int = 3) -> str:
    """A plain number with ``digits`` decimals, None as "n/a"."""
    return gettext("n/a") if value is None else f"{value:.{int(digits)}f}"


@register.filter
def percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f} %"


@register.filter
def label(key: str) -> str:
    """A score, global or code by its name in the page's language (codes keep their abbreviation)."""
    return display_label(key)


@register.filter
def export_kind(kind: str) -> str:
    """An export job's kind as the exports page lists it, in the page's language."""
    from ..exports import EXPORT_KINDS

    return gettext(EXPORT_KINDS[kind]) if kind in EXPORT_KINDS else kind


@register.filter
def tr(text: object) -> str:
    """Translate a string the pure modules marked with ``gettext_noop`` (notes, bands, kinds, statuses)."""
    return gettext(str(text)) if text else ""


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
    """A result status ("not_enough_data", "undefined", "not_estimable" …) as shown in a table cell."""
    text = STATUS_TEXT.get(status, status)
    return gettext(text) if text else text


@register.filter
def reason(text: str) -> str:
    """Why a statistic has no value (``title`` of its cell), translated when it is one of the reliability
    module's reasons (docs/metrics.md, "When a statistic is not estimable")."""
    return translate_reason(text)


@register.filter
def raters(value: str) -> str:
    """ICC raters ("coders" or "positions") in the page's language."""
    return raters_display(value)


@register.simple_tag
def min_targets() -> int:
    """``reliability.MIN_TARGETS``, the fewest double-coded units a statistic is reported on."""
    return irr.MIN_TARGETS


@register.filter
def ci(interval: tuple[float, float] | None) -> str:
    return "" if interval is None else f"[{interval[0]:.2f}, {interval[1]:.2f}]"

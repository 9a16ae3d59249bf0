"""Why a statistic has no value, in the active language: the reasons of :mod:`evaluation.reliability`
(templates with numbers, matched back by :func:`evaluation.reliability.parse_reason`), and the fixed
reasons of :mod:`evaluation.gold_agreement` and :mod:`evaluation.reliability_data`, all English texts
marked with ``gettext_noop``; any other text is shown as it is."""

from __future__ import annotations

from django.utils.translation import gettext

from . import gold_agreement as ga
from .reliability_data import RATIO_ALPHA_REASON
from .results import reason_display

_FIXED = frozenset((*ga.REASONS, RATIO_ALPHA_REASON))


def translate_reason(text: str) -> str:
    """``text`` in the active language (its numbers kept) when it is one of those reasons, else unchanged."""
    text = str(text or "")
    if text in _FIXED:
        return gettext(text)
    return reason_display(text)

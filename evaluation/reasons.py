"""Why a statistic has no value, in the active language: the reasons of :mod:`evaluation.reliability`,
:mod:`evaluation.gold_agreement` and :mod:`evaluation.reliability_data` are English templates marked
with ``gettext_noop``; a shown reason is matched back to its template, translated and filled in again."""

from __future__ import annotations

from django.utils.translation import gettext

from . import gold_agreement as ga
from . import reliability as irr
from .reliability_data import RATIO_ALPHA_REASON


def translate_reason(text: str) -> str:
    """``text`` in the active language (its numbers kept) when it is one of those reasons, else unchanged."""
    found = irr.reason_match(str(text or ""), (*irr.REASONS, *ga.REASONS, RATIO_ALPHA_REASON))
    if found is None:
        return text
    template_text, values = found
    return gettext(template_text).format(**values)

"""Why a statistic has no value, in the page's language: the reliability module's reason templates and
the plain-English reasons the statistics give (some with counts filled in), matched and translated."""

from __future__ import annotations

import re

from django.utils.translation import gettext, gettext_noop

from . import reliability as irr
from .reliability_data import RATIO_ALPHA_REASON

# The reasons the statistics modules give as plain English (some with counts filled in), as the pages
# show them: a pattern over the English text and the msgid with the same placeholders.
_REASON_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"no variation: every rating is the same value"),
     gettext_noop("no variation: every rating is the same value")),
    (re.compile(r"no variation: every coder gave the same value to every unit"),
     gettext_noop("no variation: every coder gave the same value to every unit")),
    (re.compile(r"no variation: every coder used one single label"),
     gettext_noop("no variation: every coder used one single label")),
    (re.compile(r"need at least 2 targets rated by all raters and 2 raters; have n=(?P<n>\d+), k=(?P<k>\d+)"),
     gettext_noop("need at least 2 targets rated by all raters and 2 raters; have n={n}, k={k}")),
    (re.compile(r"need at least 2 units coded by 2 or more coders; have (?P<n>\d+)"),
     gettext_noop("need at least 2 units coded by 2 or more coders; have {n}")),
    (re.compile(r"need at least 2 units coded by both coders; have (?P<n>\d+)"),
     gettext_noop("need at least 2 units coded by both coders; have {n}")),
    (re.compile(r"need at least 2 coded units; have (?P<n>\d+)"),
     gettext_noop("need at least 2 coded units; have {n}")),
    (re.compile(re.escape(RATIO_ALPHA_REASON)),
     gettext_noop("alpha is computed for globals and counts (docs/metrics.md); the ratios percent CR and R:Q "
                  "get ICC only")),
)


def translate_reason(text: str) -> str:
    """``text`` in the active language when it is a known reason, else unchanged."""
    for template_text in irr.REASONS:
        if irr.reason_text(template_text) == text:
            return gettext(template_text).format(minimum=irr.MIN_TARGETS)
    for pattern, msgid in _REASON_PATTERNS:
        match = pattern.fullmatch(text or "")
        if match:
            return gettext(msgid).format(**match.groupdict())
    return text

"""The proficiency gate's seam: annotation asks, evaluation answers (docs/calibration.md).

Agreement with gold (kappa, alpha, ICC) is computed by ``evaluation`` with the reliability module,
and ``annotation`` may not import ``evaluation`` (docs/architecture.md: the arrows point down). So the
round-creation action asks through this seam, and the evaluation app plugs its assessor in when Django
starts (``evaluation.apps.EvaluationConfig.ready``) — the way Django's own apps register hooks. Without
an assessor (the evaluation app not installed), a round that requires proficiency cannot be created.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Verdict:
    """Whether one coder may be assigned to a round that requires proficiency, and why not."""

    eligible: bool
    reasons: list[str] = field(default_factory=list)  # English sentences (messages, logs)
    # The failed checks, for pages to translate: {"name", "status", "value", "threshold", "reason"}.
    failed: list[dict[str, Any]] = field(default_factory=list)


Assessor = Callable[[object, Sequence[int]], dict[int, Verdict]]
_assessor: Assessor | None = None


def register_assessor(assessor: Assessor) -> None:
    """Install the function that judges coders of a study: ``assessor(study, user_ids) -> {id: Verdict}``."""
    global _assessor
    _assessor = assessor


def assess(study: object, user_ids: Sequence[int]) -> dict[int, Verdict] | None:
    """Verdicts for ``user_ids`` in ``study``; None when no assessor is installed."""
    if _assessor is None:
        return None
    return _assessor(study, user_ids)


Agreement = Callable[[Sequence[tuple[str | None, str]]], dict[str, Any]]
_agreement: Agreement | None = None


def register_agreement(agreement: Agreement) -> None:
    """Install the function that gives kappa and alpha of one coding with its gold (the feedback panel)."""
    global _agreement
    _agreement = agreement


def agreement(pairs: Sequence[tuple[str | None, str]]) -> dict[str, Any] | None:
    """``{"kappa", "alpha", "percent", ...}`` of (coder code, gold code) pairs; None without the evaluation app."""
    if _agreement is None:
        return None
    return _agreement(pairs)

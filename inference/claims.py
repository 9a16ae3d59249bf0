"""The claim kernel, under the name inference's modules use: it lives in :mod:`annotation.claims`, the
ground floor, so that annotation's imports and evaluation's exports claim their rows the same way as
generation and transformation items (docs/architecture.md, "The claim kernel").
"""

from __future__ import annotations

from annotation.claims import (
    ClaimedWork,
    chunked,
    claim,
    claim_stale_seconds,
    held_by,
    new_claim_token,
    open_filter,
    release,
    seconds_until_foreign_claims_go_stale,
    send_after_commit,
    send_task,
    stale_cutoff,
)

__all__ = [
    "ClaimedWork",
    "chunked",
    "claim",
    "claim_stale_seconds",
    "held_by",
    "new_claim_token",
    "open_filter",
    "release",
    "seconds_until_foreign_claims_go_stale",
    "send_after_commit",
    "send_task",
    "stale_cutoff",
]

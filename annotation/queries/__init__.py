"""Permission-aware reads of the annotation app. Views, the API, tasks and commands all go through these.

- :mod:`.access` — the permission gate (``study_for``, ``assignment_for``, ``round_for`` …): an
  outsider gets 404 (the study's existence is not revealed); a member without the needed role 403.
  Site staff (Django ``is_staff``) act as coordinators everywhere.
- :mod:`.coding` — the coding page and the coder's API: volleys, globals, progress, what is missing.
- :mod:`.adjudication` — double-coded transcripts and the coders side by side.
- :mod:`.progress` — coding progress of rounds, one grouped query for every page, the API and reports.

The gate's names are re-exported here (``queries.study_for`` …), as are the progress helpers.
"""

from __future__ import annotations

from .access import (
    CODER,
    COORDINATOR,
    User,
    assignment_for,
    assignments_for,
    dialogues_for,
    import_batch_for,
    is_coordinator,
    members_of,
    next_assignment_for,
    removed_coder_ids,
    role_in,
    round_for,
    studies_for,
    study_for,
    study_with_counts,
)
from .progress import ProgressRow, RoundTotal, coding_progress, round_totals, totals_by_round

__all__ = [
    "CODER",
    "COORDINATOR",
    "ProgressRow",
    "RoundTotal",
    "User",
    "assignment_for",
    "assignments_for",
    "removed_coder_ids",
    "coding_progress",
    "dialogues_for",
    "import_batch_for",
    "is_coordinator",
    "members_of",
    "next_assignment_for",
    "role_in",
    "round_for",
    "round_totals",
    "studies_for",
    "study_for",
    "study_with_counts",
    "totals_by_round",
]

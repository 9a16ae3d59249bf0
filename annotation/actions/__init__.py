"""Every state change of the annotation app, as named, atomic functions.

Views, the API, Celery tasks and management commands call these; nothing else writes.
"""

from __future__ import annotations

from .imports import import_dialogues
from .studies import ActionError, create_study, remove_membership, set_membership, split_by_ids, split_randomly

__all__ = [
    "ActionError",
    "create_study",
    "import_dialogues",
    "remove_membership",
    "set_membership",
    "split_by_ids",
    "split_randomly",
]

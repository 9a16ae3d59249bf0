"""Every state change of the annotation app, as named, atomic functions.

Views, the API, Celery tasks and management commands call these; nothing else writes.
"""

from __future__ import annotations

from .imports import import_dialogues
from .rounds import create_coding_round, plan_assignments, reopen_assignment
from .studies import (
    ActionError,
    create_study,
    remove_membership,
    set_membership,
    split_by_ids,
    split_randomly,
)
from .transcripts import (
    create_generated_source,
    dialogue_rounds,
    ensure_reference_source,
    merge_utterances,
    split_utterance,
)

__all__ = [
    "ActionError",
    "create_coding_round",
    "create_generated_source",
    "create_study",
    "dialogue_rounds",
    "ensure_reference_source",
    "import_dialogues",
    "merge_utterances",
    "plan_assignments",
    "remove_membership",
    "reopen_assignment",
    "set_membership",
    "split_by_ids",
    "split_utterance",
    "split_randomly",
]

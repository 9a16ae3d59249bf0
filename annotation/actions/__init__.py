"""Every state change of the annotation app, as named, atomic functions.

Views, the API, Celery tasks and management commands call these; nothing else writes. Reads live in
``annotation.queries``; the token writes live with the rest of accounts (``annotation.accounts.tokens``)
and are exported here too.
"""

from __future__ import annotations

from ..accounts.tokens import create_token, revoke_token
from .adjudication import (
    record_consensus_code,
    record_consensus_global,
    start_consensus,
    submit_consensus,
)
from .annomi import import_annomi_round
from .coding import (
    AssignmentReadOnly,
    StaleVersion,
    clear_code,
    save_code,
    set_global,
    submit_assignment,
    undo_last,
)
from .gold import (
    create_calibration_round,
    create_gold_set,
    current_golds,
    mark_gold,
    mark_imported_round_gold,
    revise_gold,
    set_proficiency_standard,
)
from .imports import IMPORT_TASK, create_derived_dialogue, import_dialogues, request_import, run_import
from .machine import add_machine_coding, create_service_user, record_machine_codes, reset_machine_coding
from .rounds import (
    create_coding_round,
    include_in_results,
    plan_assignments,
    reassign_coder,
    reopen_assignment,
)
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
    "add_machine_coding",
    "create_service_user",
    "record_machine_codes",
    "reset_machine_coding",
    "IMPORT_TASK",
    "ActionError",
    "AssignmentReadOnly",
    "StaleVersion",
    "clear_code",
    "save_code",
    "set_global",
    "submit_assignment",
    "undo_last",
    "create_calibration_round",
    "create_coding_round",
    "create_gold_set",
    "current_golds",
    "mark_gold",
    "mark_imported_round_gold",
    "revise_gold",
    "set_proficiency_standard",
    "create_derived_dialogue",
    "create_generated_source",
    "create_study",
    "create_token",
    "dialogue_rounds",
    "ensure_reference_source",
    "import_annomi_round",
    "include_in_results",
    "import_dialogues",
    "merge_utterances",
    "plan_assignments",
    "record_consensus_code",
    "record_consensus_global",
    "remove_membership",
    "reassign_coder",
    "reopen_assignment",
    "request_import",
    "revoke_token",
    "run_import",
    "set_membership",
    "split_by_ids",
    "split_randomly",
    "split_utterance",
    "start_consensus",
    "submit_consensus",
]

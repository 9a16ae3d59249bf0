"""JSON-based formats: the project's own JSONL, PsyDTCorpus, LLaMA-Factory ShareGPT and Alpaca,
OpenAI chat.

Every format is read from a JSON list of records, a single record object, or JSON Lines (one
record per line; blank lines skipped). Records are named "record N" (1-based) in a list and
"line N" in JSON Lines, in errors and in the fallback external id ``<file stem>-<N>``.
See the package docstring for each format's fields. All of them are role-tagged: two turns of one
speaker in a row are refused unless ``ImportOptions.merge_consecutive`` (``RULES`` per format).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from .base import (
    CLIENT,
    COUNSELOR,
    SPEAKERS,
    SPLITS,
    SYSTEM,
    ImportFormatError,
    ImportOptions,
    ParsedDialogue,
    TurnRules,
    location,
    make_dialogue,
)

Records = list[tuple[str, Any]]  # (record label, decoded JSON value)
Record = dict[str, Any]
RawTurns = list[tuple[str, str, str]]  # (speaker, text, label such as "conversations[2]")

JSONL_KEYS = {"external_id", "topic", "split", "source", "metadata", "turns"}
# Keys our own exports may carry that the parser recomputes; ignored without a warning.
JSONL_DERIVED_KEYS = {"content_hash", "rounds"}
PSYDT_ROLES = {"user": CLIENT, "assistant": COUNSELOR, "system": SYSTEM}
# OpenAI's "developer" role is the newer name of "system".
OPENAI_ROLES = {"user": CLIENT, "assistant": COUNSELOR, "system": SYSTEM, "developer": SYSTEM}
# (role-tagged, client first) per format; the coordinator's merge tick is added per import.
RULES: dict[str, tuple[bool, bool]] = {
    "jsonl": (True, False),  # MI sessions often open with the counselor
    "openai": (True, False),  # chat transcripts may open with an assistant greeting
    "psydt": (True, True),  # LLaMA-Factory sharegpt-style: user first
    "sharegpt": (True, True),  # LLaMA-Factory: human at odd positions, gpt at even
    "alpaca": (True, True),  # history pairs and instruction -> output: client first by construction
}
SHAREGPT_ROLES = {
    "human": CLIENT,
    "user": CLIENT,
    "gpt": COUNSELOR,
    "assistant": COUNSELOR,
    "system": SYSTEM,
}


def load_records(text: str, filename: str) -> Records:
    """Decode a JSON list / single object / JSON Lines document into labelled records."""
    if filename.lower().endswith(".jsonl"):
        return _load_lines(text, filename)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        if err.msg == "Extra data" and text.lstrip().startswith("{"):
            return _load_lines(text, filename)  # JSON Lines saved under another extension
        raise ImportFormatError(
            f"invalid or truncated JSON: {err.msg}", filename, f"line {err.lineno}, column {err.colno}", None
        ) from None
    if isinstance(value, list):
        return [(f"record {i}", item) for i, item in enumerate(value, 1)]
    if isinstance(value, dict):
        return [("record 1", value)]
    raise ImportFormatError("expected a JSON list of records or one record object", filename, None, None)


def _load_lines(text: str, filename: str) -> Records:
    records: Records = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append((f"line {lineno}", json.loads(line)))
        except json.JSONDecodeError as err:
            raise ImportFormatError(
                f"invalid or truncated JSON: {err.msg} (column {err.colno})", filename, f"line {lineno}", None
            ) from None
    return records


def detect_json_format(records: Records) -> str | None:
    """Tell the format from the keys of the first record; None when no record format fits."""
    if not records or not isinstance(records[0][1], dict):
        return None
    first = records[0][1]
    if "turns" in first:
        return "jsonl"
    if "messages" in first:
        # PsyDTCorpus records carry its topic tag; a bare {"messages": [...]} is OpenAI chat.
        return "psydt" if "normalizedTag" in first else "openai"
    if "conversations" in first:
        return "sharegpt"
    if "instruction" in first and "output" in first:
        return "alpaca"
    return None


def _rules(fmt: str, options: ImportOptions) -> TurnRules:
    role_tagged, client_first = RULES[fmt]
    return TurnRules(role_tagged=role_tagged, client_first=client_first, merge=options.merge_consecutive)


def _object(value: Any, filename: str, label: str) -> Record:
    if not isinstance(value, dict):
        raise ImportFormatError(f"expected a JSON object, got {type(value).__name__}", filename, label, None)
    return value


def _optional_string(record: Record, key: str, filename: str, label: str, path: str = "") -> str | None:
    value = record.get(key)
    if value is None:
        return None
    return _string(record, key, filename, label, path=path)


def _string(record: Record, key: str, filename: str, label: str, path: str = "") -> str:
    value = record.get(key)
    if not isinstance(value, str):
        problem = "missing" if value is None else f"must be a string, got {type(value).__name__}"
        raise ImportFormatError(problem, filename, label, path or key)
    return value


def _id(record: Record, key: str, filename: str, label: str) -> str:
    """A record's own id (string or integer) or, without one, ``<file stem>-<record number>``."""
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int | type(None)):
        raise ImportFormatError(
            f"must be a string or an integer, got {type(value).__name__}", filename, label, key
        )
    if value is None or value == "":
        return f"{PurePosixPath(filename.replace(chr(92), '/')).stem}-{label.split()[-1]}"
    return str(value)


def _content(message: Record, key: str, filename: str, label: str, path: str) -> str:
    """A message's text: a string, or (OpenAI) a list of {"type": "text", "text"} parts joined."""
    value = message.get(key)
    if isinstance(value, list):
        parts = []
        for j, part in enumerate(value):
            if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)):
                raise ImportFormatError("expected a text part {\"type\": \"text\", \"text\": ...}", filename, label,
                                        f"{path}[{j}]")
            parts.append(part["text"])
        return "\n".join(parts)
    return _string(message, key, filename, label, path=path)


def _messages(
    record: Record, key: str, roles: dict[str, str], role_keys: tuple[str, str], filename: str, label: str
) -> RawTurns:
    """Map a list of chat messages to (speaker, text, label); role_keys = (role key, content key)."""
    messages = record.get(key)
    if not isinstance(messages, list):
        problem = "missing" if messages is None else "must be a list of messages"
        raise ImportFormatError(problem, filename, label, key)
    role_key, content_key = role_keys
    turns = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ImportFormatError("expected a message object", filename, label, f"{key}[{i}]")
        role = message.get(role_key)
        if role not in roles:
            raise ImportFormatError(
                f"unknown role {role!r}; expected one of {', '.join(roles)}",
                filename,
                label,
                f"{key}[{i}].{role_key}",
            )
        text = _content(message, content_key, filename, label, f"{key}[{i}].{content_key}")
        turns.append((roles[role], text, f"{key}[{i}]"))
    return turns


def parse_jsonl(
    records: Records, filename: str, warnings: list[str], options: ImportOptions
) -> list[ParsedDialogue]:
    """The project's own format: {"external_id", "topic"?, "split"?, "source"?, "metadata"?, "turns"}."""
    dialogues = []
    rules = _rules("jsonl", options)
    for label, value in records:
        record = _object(value, filename, label)
        external_id = _string(record, "external_id", filename, label)
        if not external_id.strip():
            raise ImportFormatError("must not be empty", filename, label, "external_id")
        topic = _optional_string(record, "topic", filename, label)
        source = _optional_string(record, "source", filename, label)
        split = record.get("split")
        if split is not None and split not in SPLITS:
            raise ImportFormatError(
                f"unknown split {split!r}; expected one of {', '.join(SPLITS)}", filename, label, "split"
            )
        metadata = record.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise ImportFormatError("must be an object", filename, label, "metadata")
        unknown = set(record) - JSONL_KEYS - JSONL_DERIVED_KEYS
        if unknown:
            warnings.append(
                f"{location(filename, label)}: ignored unknown key(s) {', '.join(sorted(unknown))}"
            )
        turns = record.get("turns")
        if not isinstance(turns, list):
            raise ImportFormatError(
                "missing" if turns is None else "must be a list of turns", filename, label, "turns"
            )
        raw: list[tuple[str, str]] = []
        for i, turn in enumerate(turns):
            if not isinstance(turn, dict):
                raise ImportFormatError("expected a turn object", filename, label, f"turns[{i}]")
            speaker = turn.get("speaker")
            if speaker not in SPEAKERS:
                raise ImportFormatError(
                    f"unknown speaker {speaker!r}; expected one of {', '.join(SPEAKERS)}",
                    filename,
                    label,
                    f"turns[{i}].speaker",
                )
            raw.append((speaker, _string(turn, "text", filename, label, path=f"turns[{i}].text")))
        dialogues.append(
            make_dialogue(
                external_id.strip(),
                raw,
                file=filename,
                record=label,
                warnings=warnings,
                source_dataset=source or "",
                topic=topic,
                metadata=metadata,
                split=split,
                rules=rules,
            )
        )
    return dialogues


def _parse_records(
    records: Records,
    filename: str,
    warnings: list[str],
    turns: Callable[[Record, str], RawTurns],
    *,
    rules: TurnRules,
    source_dataset: str,
    topic_field: str,
) -> list[ParsedDialogue]:
    """The loop the record formats share: each record is an object with an ``id``, its turns as
    ``turns(record, label)`` reads them, and an optional topic."""
    dialogues = []
    for label, value in records:
        record = _object(value, filename, label)
        raw = turns(record, label)  # read before the id, as each format's errors always were
        dialogues.append(
            make_dialogue(
                _id(record, "id", filename, label),
                [(speaker, text) for speaker, text, _ in raw],
                file=filename,
                record=label,
                warnings=warnings,
                source_dataset=source_dataset,
                topic=_optional_string(record, topic_field, filename, label),
                rules=rules,
                turn_labels=[turn_label for _, _, turn_label in raw],
                id_field="id",
            )
        )
    return dialogues


def _system_turn(record: Record, filename: str, label: str) -> RawTurns:
    """LLaMA-Factory's optional top-level ``system`` prompt, as a system turn."""
    system = _optional_string(record, "system", filename, label)
    return [(SYSTEM, system, "system")] if system else []


def parse_psydt(
    records: Records, filename: str, warnings: list[str], options: ImportOptions
) -> list[ParsedDialogue]:
    """PsyDTCorpus: {"id", "normalizedTag", "messages": [{"role": system|user|assistant, "content"}]}."""

    def turns(record: Record, label: str) -> RawTurns:
        return _messages(record, "messages", PSYDT_ROLES, ("role", "content"), filename, label)

    return _parse_records(
        records, filename, warnings, turns, rules=_rules("psydt", options), source_dataset="PsyDTCorpus",
        topic_field="normalizedTag",
    )


def parse_openai(
    records: Records, filename: str, warnings: list[str], options: ImportOptions
) -> list[ParsedDialogue]:
    """OpenAI chat (fine-tuning JSONL): {"messages": [{"role": system|developer|user|assistant, "content"}]}.

    ``content`` is a string or a list of text parts; other keys of a message ("weight", "name") are
    ignored; the external id is the record's "id" when present, else ``<file stem>-<N>``.
    """

    def turns(record: Record, label: str) -> RawTurns:
        return _messages(record, "messages", OPENAI_ROLES, ("role", "content"), filename, label)

    return _parse_records(
        records, filename, warnings, turns, rules=_rules("openai", options), source_dataset="openai",
        topic_field="topic",
    )


def parse_sharegpt(
    records: Records, filename: str, warnings: list[str], options: ImportOptions
) -> list[ParsedDialogue]:
    """LLaMA-Factory ShareGPT: "conversations" of {"from", "value"}, optional top-level "system"."""

    def turns(record: Record, label: str) -> RawTurns:
        system = _system_turn(record, filename, label)
        return system + _messages(record, "conversations", SHAREGPT_ROLES, ("from", "value"), filename, label)

    return _parse_records(
        records, filename, warnings, turns, rules=_rules("sharegpt", options), source_dataset="sharegpt",
        topic_field="topic",
    )


def parse_alpaca(
    records: Records, filename: str, warnings: list[str], options: ImportOptions
) -> list[ParsedDialogue]:
    """LLaMA-Factory Alpaca: history [[q, r], ...], then instruction(+input) -> output; optional system."""

    def turns(record: Record, label: str) -> RawTurns:
        raw = _system_turn(record, filename, label)
        history = record.get("history") or []
        if not isinstance(history, list):
            raise ImportFormatError("must be a list of [query, response] pairs", filename, label, "history")
        for i, pair in enumerate(history):
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(s, str) for s in pair)):
                raise ImportFormatError(
                    "expected a [query, response] pair of strings", filename, label, f"history[{i}]"
                )
            raw += [(CLIENT, pair[0], f"history[{i}][0]"), (COUNSELOR, pair[1], f"history[{i}][1]")]
        instruction = _string(record, "instruction", filename, label)
        extra = _optional_string(record, "input", filename, label)
        # LLaMA-Factory's converter joins instruction and input with a newline.
        raw.append((CLIENT, f"{instruction}\n{extra}" if extra else instruction, "instruction"))
        raw.append((COUNSELOR, _string(record, "output", filename, label), "output"))
        return raw

    return _parse_records(
        records, filename, warnings, turns, rules=_rules("alpaca", options), source_dataset="alpaca",
        topic_field="topic",
    )


RecordParser = Callable[[Records, str, list[str], ImportOptions], list[ParsedDialogue]]
PARSERS: dict[str, RecordParser] = {
    "jsonl": parse_jsonl,
    "psydt": parse_psydt,
    "sharegpt": parse_sharegpt,
    "alpaca": parse_alpaca,
    "openai": parse_openai,
}

"""JSON-based formats: the project's own JSONL, PsyDTCorpus, LLaMA-Factory ShareGPT and Alpaca.

Every format is read from a JSON list of records, a single record object, or JSON Lines (one
record per line; blank lines skipped). Records are named "record N" (1-based) in a list and
"line N" in JSON Lines, in errors and in the fallback external id ``<file stem>-<N>``.
See the package docstring for each format's fields.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any, Literal, overload

from .base import (
    CLIENT,
    COUNSELOR,
    SPEAKERS,
    SPLITS,
    SYSTEM,
    ImportFormatError,
    ParsedDialogue,
    location,
    make_dialogue,
)

Records = list[tuple[str, Any]]  # (record label, decoded JSON value)
JsonObject = dict[str, Any]  # a decoded JSON object

JSONL_KEYS = {"external_id", "topic", "split", "source", "metadata", "turns"}
# Keys our own exports may carry that the parser recomputes; ignored without a warning.
JSONL_DERIVED_KEYS = {"content_hash", "rounds"}
PSYDT_ROLES = {"user": CLIENT, "assistant": COUNSELOR, "system": SYSTEM}
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


def detect_json_format(records: Records, filename: str) -> str:
    """Tell the format from the keys of the first record."""
    if not records:
        raise ImportFormatError("no records in the file", filename, None, None)
    label, first = records[0]
    if not isinstance(first, dict):
        raise ImportFormatError("expected a JSON object", filename, label, None)
    if "turns" in first:
        return "jsonl"
    if "messages" in first:
        return "psydt"
    if "conversations" in first:
        return "sharegpt"
    if "instruction" in first and "output" in first:
        return "alpaca"
    raise ImportFormatError(
        f"unknown format: no 'turns', 'messages', 'conversations' or 'instruction'+'output' key "
        f"(keys: {', '.join(sorted(first)) or 'none'}); name the format explicitly",
        filename,
        label,
        "fmt",
    )


def _object(value: Any, filename: str, label: str) -> JsonObject:
    if not isinstance(value, dict):
        raise ImportFormatError(f"expected a JSON object, got {type(value).__name__}", filename, label, None)
    return value


@overload
def _string(
    record: JsonObject, key: str, filename: str, label: str, *, required: Literal[True], path: str = ""
) -> str: ...
@overload
def _string(
    record: JsonObject, key: str, filename: str, label: str, *, required: Literal[False], path: str = ""
) -> str | None: ...
def _string(
    record: JsonObject, key: str, filename: str, label: str, *, required: bool, path: str = ""
) -> str | None:
    value = record.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        problem = "missing" if value is None else f"must be a string, got {type(value).__name__}"
        raise ImportFormatError(problem, filename, label, path or key)
    return value


def _id(record: JsonObject, key: str, filename: str, label: str) -> str:
    """A record's own id (string or integer) or, without one, ``<file stem>-<record number>``."""
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int | type(None)):
        raise ImportFormatError(
            f"must be a string or an integer, got {type(value).__name__}", filename, label, key
        )
    if value is None or value == "":
        return f"{PurePosixPath(filename.replace(chr(92), '/')).stem}-{label.split()[-1]}"
    return str(value)


def _messages(
    record: JsonObject, key: str, roles: dict[str, str], role_keys: tuple[str, str], filename: str, label: str
) -> list[tuple[str, str]]:
    """Map a list of chat messages to (speaker, text); role_keys = (role key, content key)."""
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
        text = _string(message, content_key, filename, label, required=True, path=f"{key}[{i}].{content_key}")
        turns.append((roles[role], text))
    return turns


def parse_jsonl(records: Records, filename: str, warnings: list[str]) -> list[ParsedDialogue]:
    """The project's own format: {"external_id", "topic"?, "split"?, "source"?, "metadata"?, "turns"}."""
    dialogues = []
    for label, value in records:
        record = _object(value, filename, label)
        external_id = _string(record, "external_id", filename, label, required=True)
        if not external_id.strip():
            raise ImportFormatError("must not be empty", filename, label, "external_id")
        topic = _string(record, "topic", filename, label, required=False)
        source = _string(record, "source", filename, label, required=False)
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
        raw = []
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
            raw.append(
                (speaker, _string(turn, "text", filename, label, required=True, path=f"turns[{i}].text"))
            )
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
            )
        )
    return dialogues


def _parse_records(
    records: Records,
    filename: str,
    warnings: list[str],
    turns: Callable[[JsonObject, str], list[tuple[str, str]]],
    *,
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
                raw,
                file=filename,
                record=label,
                warnings=warnings,
                source_dataset=source_dataset,
                topic=_string(record, topic_field, filename, label, required=False),
            )
        )
    return dialogues


def _system_turn(record: JsonObject, filename: str, label: str) -> list[tuple[str, str]]:
    """LLaMA-Factory's optional top-level ``system`` prompt, as a system turn."""
    system = _string(record, "system", filename, label, required=False)
    return [(SYSTEM, system)] if system else []


def parse_psydt(records: Records, filename: str, warnings: list[str]) -> list[ParsedDialogue]:
    """PsyDTCorpus: {"id", "normalizedTag", "messages": [{"role": system|user|assistant, "content"}]}."""

    def turns(record: JsonObject, label: str) -> list[tuple[str, str]]:
        return _messages(record, "messages", PSYDT_ROLES, ("role", "content"), filename, label)

    return _parse_records(
        records, filename, warnings, turns, source_dataset="PsyDTCorpus", topic_field="normalizedTag"
    )


def parse_sharegpt(records: Records, filename: str, warnings: list[str]) -> list[ParsedDialogue]:
    """LLaMA-Factory ShareGPT: "conversations" of {"from", "value"}, optional top-level "system"."""

    def turns(record: JsonObject, label: str) -> list[tuple[str, str]]:
        system = _system_turn(record, filename, label)
        return system + _messages(record, "conversations", SHAREGPT_ROLES, ("from", "value"), filename, label)

    return _parse_records(records, filename, warnings, turns, source_dataset="sharegpt", topic_field="topic")


def parse_alpaca(records: Records, filename: str, warnings: list[str]) -> list[ParsedDialogue]:
    """LLaMA-Factory Alpaca: history [[q, r], ...], then instruction(+input) -> output; optional system."""

    def turns(record: JsonObject, label: str) -> list[tuple[str, str]]:
        raw = _system_turn(record, filename, label)
        history = record.get("history") or []
        if not isinstance(history, list):
            raise ImportFormatError("must be a list of [query, response] pairs", filename, label, "history")
        for i, pair in enumerate(history):
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(s, str) for s in pair)):
                raise ImportFormatError(
                    "expected a [query, response] pair of strings", filename, label, f"history[{i}]"
                )
            raw += [(CLIENT, pair[0]), (COUNSELOR, pair[1])]
        instruction = _string(record, "instruction", filename, label, required=True)
        extra = _string(record, "input", filename, label, required=False)
        # LLaMA-Factory's converter joins instruction and input with a newline.
        raw.append((CLIENT, f"{instruction}\n{extra}" if extra else instruction))
        raw.append((COUNSELOR, _string(record, "output", filename, label, required=True)))
        return raw

    return _parse_records(records, filename, warnings, turns, source_dataset="alpaca", topic_field="topic")


PARSERS = {"jsonl": parse_jsonl, "psydt": parse_psydt, "sharegpt": parse_sharegpt, "alpaca": parse_alpaca}

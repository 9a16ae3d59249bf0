"""Training data in LLaMA-Factory's formats, so a group can train elsewhere with the same data.

Pure: no Django. Two files and a ``dataset_info.json`` that names them:

* **ShareGPT** (multi-turn), one record per dialogue::

    {"conversations": [{"from": "human", "value": q_1}, {"from": "gpt", "value": r_1}, ...],
     "system": "..."}                                     # "system" only when one is given

* **Alpaca with history**, one record per round i (the CPsyCoun / LLaMA-Factory per-round form)::

    {"instruction": q_i, "input": "", "output": r_i, "history": [[q_1, r_1], ..., [q_{i-1}, r_{i-1}]],
     "system": "..."}

Rounds are formed as for generation (docs/metrics.md, "Rounds"; :func:`inference.prompts.build_rounds`), so
a dialogue with n rounds gives one ShareGPT record with 2n messages and n Alpaca records. A
dialogue with no round is left out of both files and counted in ``skipped``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference.prompts import build_rounds

# One JSON object of a LLaMA-Factory file (a ShareGPT or Alpaca record, a dataset_info entry).
JsonRecord = dict[str, Any]

Turn = tuple[str, str]


@dataclass(frozen=True)
class ExportDialogue:
    """One dialogue to export: an id (for error messages) and its ``(speaker, text)`` turns."""

    external_id: str
    turns: Sequence[Turn]


@dataclass
class ExportResult:
    """What :func:`write_export` wrote: file paths and counts."""

    directory: Path
    sharegpt_path: Path
    alpaca_path: Path
    dataset_info_path: Path
    dialogues: int = 0
    rounds: int = 0
    skipped: list[str] = field(default_factory=list)


def _rounds(dialogue: ExportDialogue) -> list[tuple[str, str]]:
    try:
        return [(r.client, r.counselor) for r in build_rounds(dialogue.turns)]
    except ValueError as error:
        raise ValueError(f"dialogue {dialogue.external_id}: {error}") from None


def sharegpt_record(rounds: Sequence[tuple[str, str]], system: str | None = None) -> JsonRecord:
    """One ShareGPT record from a dialogue's rounds."""
    conversations = []
    for client, counselor in rounds:
        conversations.append({"from": "human", "value": client})
        conversations.append({"from": "gpt", "value": counselor})
    record: JsonRecord = {"conversations": conversations}
    if system:
        record["system"] = system
    return record


def alpaca_records(rounds: Sequence[tuple[str, str]], system: str | None = None) -> list[JsonRecord]:
    """One Alpaca record per round, the earlier rounds as ``history``."""
    records = []
    for i, (client, counselor) in enumerate(rounds):
        record: JsonRecord = {
            "instruction": client,
            "input": "",
            "output": counselor,
            "history": [[q, r] for q, r in rounds[:i]],
        }
        if system:
            record["system"] = system
        records.append(record)
    return records


def dataset_info(name: str, sharegpt_file: str, alpaca_file: str, with_system: bool) -> JsonRecord:
    """LLaMA-Factory ``dataset_info.json`` entries ``<name>_sharegpt`` and ``<name>_alpaca``."""
    sharegpt_columns = {"messages": "conversations"}
    alpaca_columns = {"prompt": "instruction", "query": "input", "response": "output", "history": "history"}
    if with_system:
        sharegpt_columns["system"] = "system"
        alpaca_columns["system"] = "system"
    return {
        f"{name}_sharegpt": {
            "file_name": sharegpt_file,
            "formatting": "sharegpt",
            "columns": sharegpt_columns,
            "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"},
        },
        f"{name}_alpaca": {"file_name": alpaca_file, "formatting": "alpaca", "columns": alpaca_columns},
    }


def build_records(
    dialogues: Iterable[ExportDialogue], system: str | None = None
) -> tuple[list[JsonRecord], list[JsonRecord], list[str]]:
    """``(sharegpt records, alpaca records, ids of dialogues skipped for having no round)``."""
    sharegpt: list[JsonRecord] = []
    alpaca: list[JsonRecord] = []
    skipped: list[str] = []
    for dialogue in dialogues:
        rounds = _rounds(dialogue)
        if not rounds:
            skipped.append(dialogue.external_id)
            continue
        sharegpt.append(sharegpt_record(rounds, system))
        alpaca.extend(alpaca_records(rounds, system))
    return sharegpt, alpaca, skipped


def _write_json(path: Path, value: object) -> None:
    # Written to a temporary name and renamed: a half-written file never carries the final name.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def write_export(
    directory: Path, dialogues: Iterable[ExportDialogue], name: str = "mi", system: str | None = None
) -> ExportResult:
    """Write ``<name>_sharegpt.json``, ``<name>_alpaca.json`` and ``dataset_info.json`` (JSON
    lists, UTF-8, as LLaMA-Factory's data folder expects) into ``directory``."""
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"export name {name!r}: use letters, digits, '-' or '_'")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    sharegpt, alpaca, skipped = build_records(dialogues, system)
    result = ExportResult(
        directory=directory,
        sharegpt_path=directory / f"{name}_sharegpt.json",
        alpaca_path=directory / f"{name}_alpaca.json",
        dataset_info_path=directory / "dataset_info.json",
        dialogues=len(sharegpt),
        rounds=len(alpaca),
        skipped=skipped,
    )
    _write_json(result.sharegpt_path, sharegpt)
    _write_json(result.alpaca_path, alpaca)
    info = dataset_info(name, result.sharegpt_path.name, result.alpaca_path.name, with_system=bool(system))
    _write_json(result.dataset_info_path, info)
    return result

"""LLaMA-Factory training exports: literal records, loading with `datasets`, the CPsyCounD round count."""

from __future__ import annotations

import json

import pytest

from inference.recipe import export
from tests.conftest import shared_data

DIALOGUES = [
    export.ExportDialogue(
        "d1",
        [
            ("system", "persona"),
            ("client", "q1"),
            ("counselor", "r1"),
            ("client", "q2a"),
            ("client", "q2b"),
            ("counselor", "r2"),
            ("client", "trailing"),
        ],
    ),
    export.ExportDialogue("d2", [("client", "only"), ("counselor", "one")]),
    export.ExportDialogue("d3", [("counselor", "hello"), ("client", "no reply")]),  # no round
]


def test_records_are_one_per_dialogue_and_one_per_round():
    sharegpt, alpaca, skipped = export.build_records(DIALOGUES, system="You use MI.")
    assert skipped == ["d3"]
    assert sharegpt == [
        {
            "conversations": [
                {"from": "human", "value": "q1"},
                {"from": "gpt", "value": "r1"},
                {"from": "human", "value": "q2a\n\nq2b"},
                {"from": "gpt", "value": "r2"},
            ],
            "system": "You use MI.",
        },
        {
            "conversations": [{"from": "human", "value": "only"}, {"from": "gpt", "value": "one"}],
            "system": "You use MI.",
        },
    ]
    assert alpaca == [
        {"instruction": "q1", "input": "", "output": "r1", "history": [], "system": "You use MI."},
        {
            "instruction": "q2a\n\nq2b",
            "input": "",
            "output": "r2",
            "history": [["q1", "r1"]],
            "system": "You use MI.",
        },
        {"instruction": "only", "input": "", "output": "one", "history": [], "system": "You use MI."},
    ]


def test_dataset_info_names_both_files_and_their_columns():
    info = export.dataset_info("mi", "mi_sharegpt.json", "mi_alpaca.json", with_system=False)
    assert info == {
        "mi_sharegpt": {
            "file_name": "mi_sharegpt.json",
            "formatting": "sharegpt",
            "columns": {"messages": "conversations"},
            "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"},
        },
        "mi_alpaca": {
            "file_name": "mi_alpaca.json",
            "formatting": "alpaca",
            "columns": {
                "prompt": "instruction",
                "query": "input",
                "response": "output",
                "history": "history",
            },
        },
    }


def test_written_files_load_with_datasets(tmp_path):
    datasets = pytest.importorskip("datasets", reason="the `datasets` library is a dev dependency")
    result = export.write_export(tmp_path, DIALOGUES, name="demo_mi")
    assert (result.dialogues, result.rounds, result.skipped) == (2, 3, ["d3"])
    info = json.loads(result.dataset_info_path.read_text(encoding="utf-8"))
    assert sorted(info) == ["demo_mi_alpaca", "demo_mi_sharegpt"]
    sharegpt = datasets.load_dataset(
        "json",
        data_files=str(tmp_path / info["demo_mi_sharegpt"]["file_name"]),
        split="train",
        cache_dir=str(tmp_path / "hf-cache"),
    )
    alpaca = datasets.load_dataset(
        "json",
        data_files=str(tmp_path / info["demo_mi_alpaca"]["file_name"]),
        split="train",
        cache_dir=str(tmp_path / "hf-cache"),
    )
    assert sharegpt.num_rows == 2 and alpaca.num_rows == 3
    assert sharegpt[0]["conversations"][2] == {"from": "human", "value": "q2a\n\nq2b"}
    assert alpaca[1]["history"] == [["q1", "r1"]]
    assert not list(tmp_path.glob("*.tmp"))


def test_bad_export_name_is_refused(tmp_path):
    with pytest.raises(ValueError, match="export name 'a/b'"):
        export.write_export(tmp_path, DIALOGUES, name="a/b")


def test_cpsycound_folder_gives_24590_alpaca_rounds(tmp_path):
    folder = shared_data("CPsyCounD", "Data")
    datasets = pytest.importorskip("datasets", reason="the `datasets` library is a dev dependency")
    from annotation.parsers import parse_path

    parsed = parse_path(folder)
    dialogues = [
        export.ExportDialogue(d.external_id, [(t.speaker, t.text) for t in d.turns]) for d in parsed.dialogues
    ]
    result = export.write_export(tmp_path, dialogues, name="cpsycound")
    assert (result.dialogues, result.rounds, result.skipped) == (3134, 24590, [])
    cache = str(tmp_path / "hf-cache")
    alpaca = datasets.load_dataset("json", data_files=str(result.alpaca_path), split="train", cache_dir=cache)
    sharegpt = datasets.load_dataset(
        "json", data_files=str(result.sharegpt_path), split="train", cache_dir=cache
    )
    assert alpaca.num_rows == 24590
    assert sharegpt.num_rows == 3134
    assert sum(len(c) for c in sharegpt["conversations"]) == 2 * 24590

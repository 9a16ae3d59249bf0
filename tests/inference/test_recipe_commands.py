"""The recipe's management commands, run in this process (``--here``) on committed data."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from annotation.models import Dialogue
from inference import actions as inference_actions
from inference.recipe.models import FineTuneJob, TransformationJob
from tests.inference.recipe_support import FakeOpenAIServer, demo_model_dir, import_demo_dialogues

pytestmark = pytest.mark.django_db(transaction=True)


def _run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_transform_then_export(study, tmp_path):
    import_demo_dialogues(study, split="test")
    with FakeOpenAIServer() as server:
        inference_actions.register_model(
            name="mi-writer", backend="openai", base_model="mi-writer", server_url=server.url
        )
        server.change_client_when = "I want to get fitter"
        output = _run(
            "transform_dialogues", "--study", "smoking", "--model", "mi-writer", "--split", "test", "--here"
        )
    job = TransformationJob.objects.get()
    assert f"Transformation {job.pk} started: 8 dialogues on queue 'cpu'." in output
    assert "done: 7 accepted, 1 rejected, 0 failed of 8" in output
    assert "not kept: client_changed x 1" in output
    assert Dialogue.objects.filter(study=study, derived_from__isnull=False, split="train").count() == 7

    output = _run(
        "export_training_data",
        "--study",
        "smoking",
        "--split",
        "train",
        "--derived-only",
        "--out",
        str(tmp_path),
        "--name",
        "mi_demo",
    )
    assert "7 dialogues -> " in output
    info = json.loads((tmp_path / "dataset_info.json").read_text(encoding="utf-8"))
    assert info["mi_demo_alpaca"]["file_name"] == "mi_demo_alpaca.json"
    with pytest.raises(CommandError, match="no dialogues to export in the 'unused' split"):
        _run("export_training_data", "--study", "smoking", "--split", "unused", "--out", str(tmp_path))
    with pytest.raises(CommandError, match="No registered model named 'nope'"):
        _run("transform_dialogues", "--study", "smoking", "--model", "nope", "--split", "test")


def test_finetune_here(study, settings, tmp_path, tmp_path_factory):
    pytest.importorskip("torch", reason="fine-tuning needs torch (pip install '.[cpu]')").set_num_threads(1)
    settings.MI_MODEL_STORE = tmp_path / "models"
    import_demo_dialogues(study, split="train")
    inference_actions.register_model(
        name="demo-tiny", backend="transformers", base_model=str(demo_model_dir(tmp_path_factory))
    )
    output = _run(
        "finetune",
        "--study",
        "smoking",
        "--base-model",
        "demo-tiny",
        "--output-name",
        "tiny-mi",
        "--here",
        "--set",
        "max_steps=2",
        "--set",
        "batch_size=8",
        "--set",
        "gradient_accumulation_steps=1",
        "--set",
        "cutoff_len=256",
    )
    job = FineTuneJob.objects.get()
    assert f"Fine-tuning job {job.pk}: 8 dialogues on queue 'cpu'." in output
    assert "Registered 'tiny-mi'" in output
    assert job.status == FineTuneJob.Status.DONE and job.steps.count() == 2
    with pytest.raises(CommandError, match="--set expects KEY=VALUE"):
        _run("finetune", "--study", "smoking", "--base-model", "demo-tiny", "--set", "oops")

"""The recipe's tasks through a real Celery worker process and Redis: a transformation job against a
local OpenAI-compatible server, then a LoRA job on the tiny model (queue cpu)."""

from __future__ import annotations

import time

import pytest

from annotation.models import Dialogue
from inference import actions as inference_actions
from inference.recipe import actions
from inference.recipe.models import FineTuneJob, TransformationJob
from tests.inference.recipe_support import FakeOpenAIServer, demo_model_dir, import_demo_dialogues

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _wait_for(predicate, seconds: float = 180.0) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"condition not met within {seconds:g} s")


@pytest.fixture
def worker_model_store(monkeypatch, tmp_path):
    # Read by the worker process at start: its adapters go to this test's folder.
    monkeypatch.setenv("MI_MODEL_STORE", str(tmp_path / "models"))
    return tmp_path / "models"


def test_transformation_and_finetune_run_on_a_worker(
    worker_model_store, celery_worker_process, study, tmp_path_factory
):
    pytest.importorskip("torch", reason="fine-tuning needs torch (pip install '.[cpu]')")
    import_demo_dialogues(study, split="test")
    with FakeOpenAIServer() as server:
        writer = inference_actions.register_model(
            name="mi-writer", backend="openai", base_model="mi-writer", server_url=server.url
        )
        job = actions.start_transformation(study, writer, split="test", output_split="train", chunk_size=3)

        def transformed() -> bool:
            job.refresh_from_db()
            return job.status == TransformationJob.Status.DONE

        _wait_for(transformed)
    assert job.items.filter(status="accepted").count() == 8
    assert Dialogue.objects.filter(study=study, derived_from__isnull=False, split="train").count() == 8

    base = inference_actions.register_model(
        name="demo-tiny", backend="transformers", base_model=str(demo_model_dir(tmp_path_factory))
    )
    finetune = actions.start_finetune(
        study,
        base,
        derived_only=True,
        queue="cpu",
        hyperparameters={
            "max_steps": 3,
            "batch_size": 8,
            "gradient_accumulation_steps": 1,
            "cutoff_len": 256,
        },
    )

    # The worker trains and registers the adapter; what the job page shows is in the database.
    def trained() -> bool:
        finetune.refresh_from_db()
        return finetune.status in ("done", "failed", "stopped")

    _wait_for(trained)
    assert finetune.status == FineTuneJob.Status.DONE, finetune.log
    assert finetune.steps.count() == 3
    assert finetune.adapter_path == str(worker_model_store / f"finetune-{finetune.pk}")
    assert finetune.result_model.provenance["dialogue_count"] == 8

"""LoRA fine-tuning jobs on the tiny model (CPU): loss logged per step and going down, adapter saved
and registered with provenance, a generation run with it; stopping; a failed job keeps its log."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from annotation import actions as annotation_actions
from inference import actions as inference_actions
from inference.models import GenerationItem, GenerationRun
from inference.recipe import actions, execute
from inference.recipe.finetune import LoraHyperparameters, tokenize_dialogue
from inference.recipe.models import FineTuneJob, FineTuneStep
from tests.inference.recipe_support import (
    demo_model_dir,
    eager_celery,  # noqa: F401 - a fixture
    import_demo_dialogues,
)

torch = pytest.importorskip("torch", reason="fine-tuning needs torch (pip install '.[cpu]')")

# A few full-batch steps at a high rate: enough for the loss to fall on the tiny model, in seconds.
QUICK = {
    "learning_rate": 1e-2,
    "batch_size": 8,
    "gradient_accumulation_steps": 1,
    "max_steps": 6,
    "warmup_ratio": 0.0,
    "lr_scheduler": "constant",
    "cutoff_len": 512,
}
SYSTEM = "You are a counselor who uses motivational interviewing."


@pytest.fixture
def model_store(settings, tmp_path):
    settings.MI_MODEL_STORE = tmp_path / "models"
    return settings.MI_MODEL_STORE


@pytest.fixture
def base_model(tmp_path_factory):
    torch.set_num_threads(1)
    return inference_actions.register_model(
        name="demo-tiny",
        backend="transformers",
        base_model=str(demo_model_dir(tmp_path_factory)),
        system_prompt="base prompt",
        max_new_tokens=16,
    )


def test_loss_mask_covers_only_the_counselor_turns(tmp_path_factory):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(demo_model_dir(tmp_path_factory))
    messages = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "我想戒烟"},
        {"role": "assistant", "content": "你想改变。"},
        {"role": "user", "content": "是的"},
        {"role": "assistant", "content": "说说看"},
    ]
    ids, labels, truncated = tokenize_dialogue(tokenizer, messages, cutoff_len=1024)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    assert ids == tokenizer(full, add_special_tokens=False)["input_ids"] and not truncated
    assert tokenizer.decode([i for i, label in zip(ids, labels, strict=True) if label != -100]) == (
        "你想改变。<|im_end|>\n说说看<|im_end|>\n"
    )
    short_ids, short_labels, cut = tokenize_dialogue(tokenizer, messages, cutoff_len=5)
    assert (len(short_ids), cut, set(short_labels)) == (5, True, {-100})


def test_hyperparameters_default_to_the_recipe_and_name_bad_fields():
    params = LoraHyperparameters()
    assert (params.lora_rank, params.lora_alpha, params.lora_dropout, params.lora_target) == (
        8,
        16,
        0.0,
        "all",
    )
    assert LoraHyperparameters.from_dict({"learning_rate": "5e-5", "num_epochs": "2", "max_steps": ""}) == (
        LoraHyperparameters(learning_rate=5e-5, num_epochs=2.0)
    )
    with pytest.raises(ValueError, match="hyperparameter batch_size: expected int, got 'many'"):
        LoraHyperparameters.from_dict({"batch_size": "many"})
    with pytest.raises(ValueError, match="lora_dropout must be in"):
        LoraHyperparameters.from_dict({"lora_dropout": 1.5})
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        LoraHyperparameters.from_dict({"rank": 4})


@pytest.mark.django_db
def test_lora_job_trains_registers_and_generates(
    study,
    coordinator,
    base_model,
    model_store,
    eager_celery,  # noqa: F811 - the fixture imported above
    django_capture_on_commit_callbacks,
):
    import_demo_dialogues(study, split="train")
    annotation_actions.split_by_ids(study, split="test", external_ids=["demo-zh-1", "demo-en-1"])
    with django_capture_on_commit_callbacks(execute=True):
        job = actions.start_finetune(
            study,
            base_model,
            output_name="demo-tiny-mi",
            hyperparameters=QUICK,
            system_prompt=SYSTEM,
            queue="cpu",
            created_by=coordinator,
        )
    job.refresh_from_db()
    assert job.status == FineTuneJob.Status.DONE, job.log
    assert (job.dialogue_count, job.queue, job.current_step, job.total_steps) == (6, "cpu", 6, 6)
    losses = list(job.steps.order_by("step").values_list("loss", flat=True))
    assert len(losses) == 6
    assert losses[-1] < losses[0] * 0.9, losses
    assert (
        "6 examples (0 skipped, 0 truncated)" in job.log and "registered as model 'demo-tiny-mi'" in job.log
    )

    adapter = Path(job.adapter_path)
    assert adapter == model_store / f"finetune-{job.pk}"
    assert {"adapter_config.json", "adapter_model.safetensors", "training_log.json"} <= {
        p.name for p in adapter.iterdir()
    }
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"], config["lora_dropout"]) == (8, 16, 0.0)
    assert set(config["target_modules"]) == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }

    model = job.result_model
    assert (model.name, model.is_finetuned, model.base_of, model.adapter_path) == (
        "demo-tiny-mi",
        True,
        base_model,
        str(adapter),
    )
    assert (model.backend, model.base_model, model.system_prompt) == (
        "transformers",
        base_model.base_model,
        SYSTEM,
    )
    provenance = model.provenance
    assert provenance["finetune_job"] == job.pk and provenance["study"] == "smoking"
    assert (provenance["split"], provenance["dialogue_count"], provenance["steps"]) == ("train", 6, 6)
    assert provenance["hyperparameters"]["learning_rate"] == 0.01
    assert provenance["hyperparameters"]["lora_rank"] == 8
    assert provenance["base_model"] == {
        "id": base_model.pk,
        "name": "demo-tiny",
        "path": base_model.base_model,
    }
    assert provenance["final_loss"] == pytest.approx(losses[-1], abs=1e-5)
    assert len(provenance["training_set_sha256"]) == 64

    # A generation run with the new adapter, through the transformers backend.
    with django_capture_on_commit_callbacks(execute=True):
        run = inference_actions.start_run(study, model, split="test", chunk_size=4, created_by=coordinator)
    run.refresh_from_db()
    items = list(GenerationItem.objects.filter(run=run))
    assert len(items) == 8  # demo-zh-1 and demo-en-1 have 4 rounds each
    assert all(item.status == GenerationItem.Status.DONE and item.response.strip() for item in items), [
        (i.status, i.error) for i in items
    ]
    assert items[0].messages[0] == {"role": "system", "content": SYSTEM}
    assert run.status == GenerationRun.Status.DONE, run.error


@pytest.mark.django_db
def test_refusals(study, base_model):
    import_demo_dialogues(study, split="train")
    server_model = inference_actions.register_model(
        name="remote", backend="openai", base_model="x", server_url="http://127.0.0.1:9/v1"
    )
    with pytest.raises(actions.ActionError, match="served over HTTP"):
        actions.start_finetune(study, server_model)
    with pytest.raises(actions.ActionError, match="Hyperparameters: lora_rank must be at least 1"):
        actions.start_finetune(study, base_model, hyperparameters={"lora_rank": 0})
    with pytest.raises(actions.ActionError, match="no dialogue with a round in the 'test' split"):
        actions.start_finetune(study, base_model, split="test")
    assert FineTuneJob.objects.count() == 0


@pytest.mark.django_db
def test_failed_job_keeps_its_log(
    study,
    base_model,
    model_store,
    eager_celery,  # noqa: F811 - the fixture imported above
    django_capture_on_commit_callbacks,
):
    import_demo_dialogues(study, split="train")
    with django_capture_on_commit_callbacks(execute=True):
        job = actions.start_finetune(
            study, base_model, hyperparameters={**QUICK, "cutoff_len": 4}, queue="cpu"
        )
    job.refresh_from_db()
    assert job.status == FineTuneJob.Status.FAILED
    assert job.error.startswith("ValueError: no training example has a counselor token within cutoff_len=4")
    assert "training demo-tiny on 8 dialogues of split 'train'" in job.log
    assert "failed: ValueError: no training example" in job.log
    assert job.result_model is None and job.finished_at is not None


@pytest.mark.django_db
def test_queued_job_stops_at_once(study, base_model):
    import_demo_dialogues(study, split="train")
    job = actions.start_finetune(study, base_model, queue="cpu")
    assert actions.request_finetune_stop(job) is True
    assert job.status == FineTuneJob.Status.STOPPED
    assert execute.run_finetune(job.pk, "task-1") == "stopped"  # a late delivery does nothing
    assert actions.request_finetune_stop(job) is False


@pytest.mark.django_db(transaction=True)
def test_running_job_stops_after_the_current_step(study, base_model, model_store):
    import_demo_dialogues(study, split="train")
    job = actions.start_finetune(study, base_model, queue="cpu", hyperparameters={**QUICK, "max_steps": 400})
    result: dict[str, str] = {}

    def train() -> None:
        from django.db import connection

        try:
            result["status"] = execute.run_finetune(job.pk, "task-1")
        finally:
            connection.close()

    worker = threading.Thread(target=train)
    worker.start()
    deadline = time.time() + 120
    while FineTuneStep.objects.filter(job=job).count() < 2 and time.time() < deadline and worker.is_alive():
        time.sleep(0.05)
    assert actions.request_finetune_stop(job) is True
    worker.join(120)
    job.refresh_from_db()
    assert result["status"] == "stopped" and job.status == FineTuneJob.Status.STOPPED
    steps = job.steps.count()
    assert 2 <= steps < 400 and job.current_step == steps
    assert "stop requested after step" in job.log
    assert job.result_model is None and not (model_store / f"finetune-{job.pk}").exists()


# --- checkpoints: a redelivered job continues where it stopped -------------------------------------


class Killed(BaseException):
    """What a worker's death looks like to the training loop: nothing after it runs."""


def _dialogues() -> list[list[dict[str, str]]]:
    chats = []
    for number in range(5):
        chats.append(
            [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"我想戒烟，第{number}次了"},
                {"role": "assistant", "content": f"你已经试过{number}次，说明你很在乎。"},
                {"role": "user", "content": "是的"},
                {"role": "assistant", "content": "说说看，什么让你想再试一次？"},
            ]
        )
    return chats


# Two micro-batches of 2 per step over 5 examples: steps cross epoch boundaries mid-step, so resuming
# must continue the shuffled order exactly where it was.
RESUMABLE = LoraHyperparameters(
    learning_rate=1e-2,
    batch_size=2,
    gradient_accumulation_steps=2,
    max_steps=6,
    warmup_ratio=0.2,
    lr_scheduler="cosine",
    cutoff_len=256,
    device="cpu",
)


def _train(model_dir, out, params=RESUMABLE, *, checkpoints=None, kill_at=None, seen=None, lines=None):
    from inference.recipe.finetune import train_lora

    def on_step(entry) -> bool:
        if seen is not None:
            seen.append(entry.step)
        if entry.step == kill_at:
            raise Killed
        return False

    return train_lora(
        str(model_dir),
        _dialogues(),
        out,
        params,
        on_step=on_step,
        log=(lines.append if lines is not None else None),
        checkpoint_dir=checkpoints,
        checkpoint_every=2,
    )


def _adapter(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def test_interrupted_training_resumes_from_its_checkpoint_exactly(tmp_path, tmp_path_factory):
    torch.set_num_threads(1)
    model_dir = demo_model_dir(tmp_path_factory)
    straight = _train(model_dir, tmp_path / "straight")

    checkpoints = tmp_path / "ckpt"
    first: list[int] = []
    with pytest.raises(Killed):
        _train(model_dir, tmp_path / "resumed", checkpoints=checkpoints, kill_at=5, seen=first)
    assert first == [1, 2, 3, 4, 5] and (checkpoints / "checkpoint.pt").exists()
    assert not (tmp_path / "resumed").exists()

    second: list[int] = []
    lines: list[str] = []
    resumed = _train(model_dir, tmp_path / "resumed", checkpoints=checkpoints, seen=second, lines=lines)
    assert second == [5, 6]  # the checkpoint of step 4 is the last one before the kill
    assert any(line.startswith("resumed from step 4") for line in lines), lines
    assert resumed.status == "done" and resumed.steps == 6
    # Same weights, optimizer moments, schedule, batch order and RNG: the run is bit-identical on CPU.
    assert resumed.losses == straight.losses
    expected, got = _adapter(tmp_path / "straight"), _adapter(tmp_path / "resumed")
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[name], got[name]) for name in expected)


def test_a_checkpoint_of_another_run_is_ignored(tmp_path, tmp_path_factory):
    torch.set_num_threads(1)
    model_dir = demo_model_dir(tmp_path_factory)
    checkpoints = tmp_path / "ckpt"
    with pytest.raises(Killed):
        _train(model_dir, tmp_path / "a", checkpoints=checkpoints, kill_at=3)
    assert (checkpoints / "checkpoint.pt").exists()

    seen: list[int] = []
    lines: list[str] = []
    other = LoraHyperparameters(**{**RESUMABLE.as_dict(), "learning_rate": 5e-3, "max_steps": 2})
    result = _train(model_dir, tmp_path / "b", other, checkpoints=checkpoints, seen=seen, lines=lines)
    assert seen == [1, 2] and result.status == "done"
    assert "checkpoint ignored: hyperparameters (learning_rate, max_steps) differ from this run's" in lines


@pytest.mark.django_db
def test_redelivered_job_continues_from_its_checkpoint(study, base_model, model_store, monkeypatch):
    from inference.recipe import finetune

    import_demo_dialogues(study, split="train")
    job = actions.start_finetune(
        study, base_model, queue="cpu", hyperparameters={**QUICK, "batch_size": 4, "max_steps": 5}
    )
    monkeypatch.setattr(execute, "CHECKPOINT_EVERY", 2)
    train_lora = finetune.train_lora

    def killed_at_step_3(*args, on_step, **kwargs):
        def dying(entry):
            stop = on_step(entry)  # the step is logged, then the worker dies before the next checkpoint
            if entry.step == 3:
                raise Killed
            return stop

        return train_lora(*args, on_step=dying, **kwargs)

    monkeypatch.setattr(finetune, "train_lora", killed_at_step_3)
    with pytest.raises(Killed):
        execute.run_finetune(job.pk, "task-1")
    job.refresh_from_db()
    assert job.status == FineTuneJob.Status.RUNNING
    assert list(job.steps.values_list("step", flat=True)) == [1, 2, 3]
    assert (model_store / f"finetune-{job.pk}.checkpoint" / "checkpoint.pt").exists()

    monkeypatch.setattr(finetune, "train_lora", train_lora)
    assert execute.run_finetune(job.pk, "task-2") == "running"  # another delivery finds it taken
    assert execute.run_finetune(job.pk, "task-1") == "done"  # the same task, redelivered
    job.refresh_from_db()
    assert list(job.steps.values_list("step", flat=True)) == [1, 2, 3, 4, 5]
    assert job.current_step == 5 and job.status == FineTuneJob.Status.DONE
    assert "resumed from step 2" in job.log and "restarting" not in job.log
    assert job.result_model.provenance["steps"] == 5
    assert not (model_store / f"finetune-{job.pk}.checkpoint").exists()

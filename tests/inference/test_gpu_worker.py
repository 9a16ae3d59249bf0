"""GPU workers on CPU: a dead engine's chunk retried on a new engine, the pool a gpu/train worker
refuses, engine options refused at registration, training that unloads engines first.

The vLLM stand-in (``fake_vllm``) plays the GPU: it refuses a second live engine the way vLLM's
free-memory check does, and its engine core can be made to die.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from annotation.errors import ActionError
from inference import actions, execute, registry
from inference.backends import GenerationParams, ModelSpec
from inference.backends.base import cached_engine_keys, shared_engine
from inference.models import GenerationItem, GenerationRun
from inference.workers import pool_name, pool_refusal, worker_command

from .vllm_support import build_tokenizer_folder, write_adapter_config


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    pytest.importorskip("transformers", reason="the tokenizer needs transformers (pip install '.[cpu]')")
    return build_tokenizer_folder(tmp_path_factory.mktemp("gpu-worker") / "tiny")


# -- the pool -------------------------------------------------------------------------------------
def test_a_worker_on_gpu_or_train_refuses_pools_other_than_solo_and_threads():
    from celery.concurrency.prefork import TaskPool as Prefork
    from celery.concurrency.solo import TaskPool as Solo
    from celery.concurrency.thread import TaskPool as Threads

    assert [pool_name(p) for p in ("prefork", "processes", "threads", Prefork, Solo, Threads)] == [
        "prefork",
        "prefork",
        "threads",
        "prefork",
        "solo",
        "threads",
    ]
    assert pool_refusal(["cpu"], "prefork") is None
    assert pool_refusal(["gpu"], Solo) is None and pool_refusal(["train", "cpu"], "threads") is None
    assert pool_refusal(["cpu", "gpu"], "prefork") == (
        "This worker consumes the 'gpu' queue but runs the 'prefork' pool. GPU work (vLLM engines, "
        "fine-tuning) must run in the worker's own process: vLLM's engine core cannot start from a "
        "daemonic pool process. Start it with --pool solo (or --pool threads), e.g.: "
        "celery -A mi_platform worker -Q gpu -c 1 --pool solo"
    )
    assert "consumes the 'gpu' and 'train' queues but runs the 'gevent' pool" in pool_refusal(
        ["train", "gpu"], "gevent"
    )
    assert worker_command("cpu") == "celery -A mi_platform worker -Q cpu"


def test_the_worker_init_signal_stops_a_gpu_worker_on_prefork():
    """The handler mi_platform.celery connects to ``worker_init``, given what Celery gives it."""
    from mi_platform.celery import refuse_a_pool_unfit_for_gpu_queues

    class Queues(dict):
        consume_from = None

    def worker(queues, pool, declared=("cpu",)):
        declared_queues = Queues.fromkeys(declared)
        declared_queues.consume_from = queues
        return SimpleNamespace(app=SimpleNamespace(amqp=SimpleNamespace(queues=declared_queues)), pool_cls=pool)

    with pytest.raises(SystemExit, match=r"^Refusing to start: This worker consumes the 'train' queue"):
        refuse_a_pool_unfit_for_gpu_queues(sender=worker({"train": None}, "prefork"))
    refuse_a_pool_unfit_for_gpu_queues(sender=worker({"gpu": None, "train": None}, "solo"))
    refuse_a_pool_unfit_for_gpu_queues(sender=worker({"cpu": None}, "prefork"))
    # No -Q: every declared queue counts.
    with pytest.raises(SystemExit):
        refuse_a_pool_unfit_for_gpu_queues(sender=worker(None, "prefork", declared=("cpu", "gpu")))


# -- a dead engine: evicted, the chunk retried ----------------------------------------------------
class Retry(Exception):
    pass


class FakeTask:
    """The bound Celery task as run_claimed_chunk uses it: ``request.retries`` and ``retry()``."""

    def __init__(self) -> None:
        self.request = SimpleNamespace(retries=0)
        self.retries: list[dict] = []

    def retry(self, exc=None, countdown=None, kwargs=None):
        self.retries.append({"exc": exc, "countdown": countdown, "kwargs": kwargs})
        return Retry()


@pytest.mark.django_db
def test_a_chunk_that_finds_its_engine_dead_is_retried_on_a_new_engine(
    fake_vllm, model_dir, demo_study, coordinator
):
    model = actions.register_model(
        name="tiny-vllm", backend="vllm", base_model=str(model_dir), max_new_tokens=6, created_by=coordinator
    )
    run = actions.start_run(demo_study, model, chunk_size=64, created_by=coordinator)
    ids = list(run.items.values_list("id", flat=True))
    assert run.queue == "gpu"

    fake_vllm.CONTROL.die_on_call = 1
    task = FakeTask()
    with pytest.raises(Retry):
        execute.execute_chunk(task, run.pk, ids)
    [retry] = task.retries
    assert "the vLLM engine of" in str(retry["exc"]) and "died" in str(retry["exc"])
    token = retry["kwargs"]["claim_token"]
    # Released for the retry (nobody waits for staleness), the dead engine shut down and forgotten.
    assert set(GenerationItem.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"pending"}
    [dead] = fake_vllm.CONTROL.engines
    assert dead.llm_engine.engine_core.is_shut_down and cached_engine_keys() == []

    fake_vllm.CONTROL.die_on_call = None
    summary = execute.execute_chunk(task, run.pk, ids, claim_token=token)  # the retry, same token
    assert summary == {"run": run.pk, "claimed": len(ids), "written": len(ids), "failed": 0}
    run.refresh_from_db()
    assert run.status == GenerationRun.Status.DONE
    assert len(fake_vllm.CONTROL.engines) == 2 and not fake_vllm.CONTROL.engines[1].llm_engine.engine_core.dead
    assert all(item.response and item.finish_reason in {"stop", "length"} for item in run.items.all())


# -- options refused before an engine starts -------------------------------------------------------
@pytest.mark.django_db
def test_registration_refuses_engine_options_vllm_would_refuse(model_dir, tmp_path, coordinator):
    adapter = write_adapter_config(tmp_path / "rank128", rank=128)
    fields = {"backend": "vllm", "base_model": str(model_dir), "adapter_path": str(adapter)}
    with pytest.raises(ActionError, match=r"LoRA rank 128 .* over max_lora_rank 64: set options\['max_lora_rank'\] to 128"):
        actions.register_model(name="wide", **fields)
    with pytest.raises(ActionError, match=r"context_length 2048 is over the model's own limit of 1024"):
        actions.register_model(name="long", backend="vllm", base_model=str(model_dir), context_length=2048)
    with pytest.raises(ActionError, match="engine_options must be a JSON object"):
        actions.register_model(name="list", backend="vllm", base_model=str(model_dir), engine_options=[1])
    model = actions.register_model(name="wide", engine_options={"max_lora_rank": 128}, **fields)
    assert registry.spec_for(model).options == {"max_lora_rank": 128}
    # A run keeps the options in its snapshot.
    assert registry.params_snapshot(model)["engine_options"] == {"max_lora_rank": 128}


# -- training next to serving -----------------------------------------------------------------------
@pytest.mark.django_db
def test_training_unloads_this_workers_engines_first_and_frees_gpu_memory_after(
    model_dir, demo_study, coordinator, monkeypatch, settings
):
    from inference.recipe import actions as recipe_actions
    from inference.recipe import execute as recipe_execute
    from inference.recipe import finetune
    from inference.recipe.models import FineTuneJob

    base = actions.register_model(name="base", backend="transformers", base_model=str(model_dir))
    job = recipe_actions.start_finetune(demo_study, base, split="test", created_by=coordinator)
    assert job.queue == "train"  # its own worker by default
    settings.MI_FINETUNE_QUEUE = "gpu"
    assert recipe_actions.start_finetune(demo_study, base, split="test").queue == "gpu"

    closed: list[str] = []
    events: list[str] = []
    engine = SimpleNamespace(close=lambda: closed.append("engine"))
    shared_engine(("vllm", "/models/loaded"), lambda: engine, on_gpu=True)

    def train_lora(*args, **kwargs):
        events.append(f"train with {len(cached_engine_keys())} engines loaded")
        return finetune.TrainResult(status="stopped", steps=0, total_steps=1)

    monkeypatch.setattr(recipe_execute.finetune, "train_lora", train_lora)
    monkeypatch.setattr(recipe_execute, "free_gpu_memory", lambda: events.append("free GPU memory"))
    assert recipe_execute.run_finetune(job.pk, "token") == FineTuneJob.Status.STOPPED
    assert closed == ["engine"]
    assert events == ["train with 0 engines loaded", "free GPU memory"]
    job.refresh_from_db()
    assert "released 1 loaded engine(s) before training" in job.log


# -- the transformers backend sized for a GPU ---------------------------------------------------------
def test_transformers_sub_batch_is_the_whole_chunk_on_cuda_bounded_by_the_kv_cache(monkeypatch):
    from inference.backends.transformers_backend import (
        TransformersBackend,
        TransformersEngine,
        default_batch_size,
        kv_cache_bytes_per_token,
    )

    mib = 1024**2
    # A Llama-style 1B: 16 layers, 32 heads of 64, 8 KV heads, bf16 → 2·16·8·64·2 bytes per token.
    config = SimpleNamespace(num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8, hidden_size=2048)
    assert kv_cache_bytes_per_token(config, 2) == 32768
    # 640 tokens per prompt (512 prompt + 128 new) → 20 MiB of KV cache per prompt.
    assert default_batch_size(40, True, 10 * 1024 * mib, 32768, 640) == 40  # room for 256: the chunk
    assert default_batch_size(40, True, 400 * mib, 32768, 640) == 10  # half of 400 MiB / 20 MiB
    assert default_batch_size(40, True, 0, 32768, 640) == 1
    assert default_batch_size(40, False, 0, 0, 0) == 8 and default_batch_size(3, False, 0, 0, 0) == 3

    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (400 * mib, 80 * 1024 * mib))
    engine = TransformersEngine(
        tokenizer=None, model=SimpleNamespace(config=config, dtype=torch.bfloat16), device="cuda:0"
    )
    spec = ModelSpec(name="t", backend="transformers", base_model="/m", params=GenerationParams(max_new_tokens=128))
    encoded = [(i, [1] * 512) for i in range(40)]
    assert TransformersBackend(spec)._batch_size(engine, encoded) == 10
    configured = ModelSpec(name="t", backend="transformers", base_model="/m", options={"batch_size": 16})
    assert TransformersBackend(configured)._batch_size(engine, encoded) == 16
    on_cpu = TransformersEngine(tokenizer=None, model=None, device="cpu")
    assert TransformersBackend(spec)._batch_size(on_cpu, encoded) == 8


def test_a_real_celery_worker_on_the_gpu_queue_with_prefork_exits_with_the_reason():
    """The command a user would type: Celery itself must stop, with the sentence, before taking work."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mi_platform.settings"}
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "mi_platform", "worker", "-Q", "cpu,gpu", "--pool", "prefork",
         "-c", "1", "--without-heartbeat", "--without-mingle", "--without-gossip", "-l", "WARNING"],
        cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True, timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "Refusing to start: This worker consumes the 'gpu' queue but runs the 'prefork' pool" in output
    assert "--pool solo" in output

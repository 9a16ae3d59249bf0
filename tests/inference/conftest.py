"""Fixtures of the generation tests: the tiny model (built once per session), a demo study, a model.

The worker-based tests (``celery_worker_process``) need PostgreSQL or SQLite plus Redis, as in
``scripts/test.sh``. ``fault_worker`` starts a worker from a test-only app module that slows chunks
down, with extra environment (the delay, short claim/visibility timeouts), so a fault can be
injected mid-run.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .vllm_support import fake_vllm  # noqa: F401 - the vLLM stand-in, a fixture for every test here

DEMO_FILE = Path(__file__).resolve().parents[2] / "annotation" / "demo_data" / "demo_dialogues.jsonl"
DEMO_TEST_ROUNDS = 15  # demo-zh-1: 4, demo-zh-2: 4, demo-en-1: 4, demo-en-2: 3


@pytest.fixture(scope="session")
def demo_model_dir(tmp_path_factory) -> Path:
    """The tiny chat model, trained briefly (100 steps, about 10 s) once per test session.

    One torch thread: on a busy 2-core CI machine it trains several times faster than two.
    """
    pytest.importorskip("torch", reason="the demo model needs torch (pip install '.[cpu]')")
    from inference.management.commands.build_demo_model import ensure_demo_model

    folder, _ = ensure_demo_model(
        tmp_path_factory.mktemp("demo-model") / "demo-tiny", steps=100, seed=0, num_threads=1
    )
    return folder


@pytest.fixture
def demo_study(study, coordinator):
    """The persona study with the 8 demo dialogues imported with the file's split (4 test, 4 train)."""
    from annotation import actions as annotation_actions

    annotation_actions.import_dialogues(study, path=str(DEMO_FILE), created_by=coordinator)
    return study


@pytest.fixture
def demo_model(demo_model_dir, coordinator):
    """The tiny model registered through the action: transformers, greedy, seed 0, short replies."""
    from inference import actions
    from inference.demo_model import DEFAULT_SYSTEM_PROMPT

    return actions.register_model(
        name="demo-tiny",
        backend="transformers",
        base_model=str(demo_model_dir),
        system_prompt=DEFAULT_SYSTEM_PROMPT,
        temperature=0.0,
        seed=0,
        max_new_tokens=24,
        created_by=coordinator,
    )


@pytest.fixture
def fault_worker(request, monkeypatch, transactional_db):
    """A real worker started from :mod:`tests.inference.fault_worker_app` (the shipped app plus a
    test hook that slows generation chunks) with the environment a test puts in ``request.param``."""
    from tests.conftest import running_worker

    for key, value in getattr(request, "param", {}).items():
        monkeypatch.setenv(key, str(value))
    with running_worker(app_module="tests.inference.fault_worker_app") as worker:
        yield worker


def wait_for_run(run, timeout: float = 120.0, until=None):
    """Poll the database until the run is finished (or ``until(run)`` holds); return the fresh run."""
    from inference.models import GenerationRun

    finished = {GenerationRun.Status.DONE, GenerationRun.Status.FAILED, GenerationRun.Status.CANCELLED}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if until(run) if until else run.status in finished:
            return run
        time.sleep(0.25)
    counts = list(run.items.values_list("status", flat=True))
    raise AssertionError(f"run {run.pk} still {run.status} after {timeout} s; items: {counts}")


def item_rows(run) -> list[tuple]:
    """The fields that must never change once an item is done, per item, in a stable order."""
    return list(
        run.items.order_by("dialogue_id", "round_index").values_list(
            "id",
            "dialogue_id",
            "round_index",
            "status",
            "response",
            "finished_at",
            "attempts",
            "claim_token",
            "completion_tokens",
        )
    )

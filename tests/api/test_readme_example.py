"""The README's "API in 5 minutes" example runs as written.

A live server holds a demo study set up like ``manage.py demo`` (study ``mi-demo``, the demo
dialogues, a model named ``demo-tiny``) with some submitted coding; the example's Python block is
executed unchanged with ``MI_API_URL``/``MI_API_TOKEN`` in the environment and ``my_dialogues.jsonl``
in the working directory.
"""

from __future__ import annotations

import re
import shutil

import pytest

from tests.conftest import FIXTURES, REPO

pytestmark = pytest.mark.django_db(transaction=True)


def readme_python_block() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## API in 5 minutes", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the README's 'API in 5 minutes' section should hold exactly one Python example"
    return blocks[0]


def code_and_submit(assignment, user, code: str) -> None:
    """Code every utterance with ``code``, rate the globals 4, submit — through the coding actions."""
    from annotation import miti
    from annotation.actions import coding
    from annotation.queries import coding as coding_queries

    version = assignment.version
    for volley in coding_queries.coding_sheet(assignment).volleys:
        for utterance in volley.utterances:
            version = coding.save_code(assignment, utterance_id=utterance.pk, code=code, version=version,
                                       actor=user).version
    for scale in miti.GLOBAL_KEYS:
        version = coding.set_global(assignment, scale=scale, value=4, version=version, actor=user).version
    coding.submit_assignment(assignment, version=version, actor=user)


@pytest.fixture
def demo_study(coordinator, coder, coder2, demo_dialogues_file):
    """The demo study as ``manage.py demo`` sets it up, plus a submitted double coding of two transcripts."""
    from annotation import actions
    from annotation.models import Assignment
    from inference.models import RegisteredModel

    study = actions.create_study(name="MI demo", slug="mi-demo", change_goal="quit smoking", created_by=coordinator)
    actions.set_membership(study, "coder", "coder")
    actions.set_membership(study, "coder2", "coder")
    actions.import_dialogues(study, path=str(demo_dialogues_file), created_by=coordinator)
    reference = actions.ensure_reference_source(study)
    # Same name as the demo's tiny model; an OpenAI-compatible backend needs no model files here, and
    # no worker runs, so the started run stays queued.
    RegisteredModel.objects.create(name="demo-tiny", backend="openai", base_model="demo-tiny",
                                   server_url="http://127.0.0.1:9/v1")
    coding_round = actions.create_coding_round(study, name="Round 1", sources=[reference], coders=[coder, coder2],
                                               overlap=1.0, seed=1, created_by=coordinator)
    transcripts = sorted(set(Assignment.objects.filter(coding_round=coding_round).values_list("transcript", flat=True)))
    for transcript_id, user, code in [(transcripts[0], coder, "SR"), (transcripts[0], coder2, "CR"),
                                      (transcripts[1], coder, "Q")]:
        code_and_submit(Assignment.objects.get(coding_round=coding_round, transcript_id=transcript_id, coder=user),
                        user, code)
    return study


@pytest.fixture
def import_worker(monkeypatch):
    """A stand-in for the Celery worker, for imports only: the batch the API queues is imported in a thread.

    A real worker would also pick up the example's generation run, which must stay queued here.
    """
    import threading

    from django.db import connection

    from annotation import actions
    from annotation.actions import imports

    def work(batch_id: int) -> None:
        try:
            actions.run_import(batch_id)
        finally:
            connection.close()

    monkeypatch.setattr(imports, "send_import", lambda batch_id: threading.Thread(target=work, args=[batch_id]).start())


def test_readme_example_runs_as_written(demo_study, coordinator, live_server, tmp_path, monkeypatch, capsys,
                                        import_worker):
    from annotation import actions
    from annotation.models import Dialogue, ImportBatch
    from inference.models import GenerationRun

    _token, raw = actions.create_token(coordinator, "readme")
    monkeypatch.setenv("MI_API_URL", live_server.url)
    monkeypatch.setenv("MI_API_TOKEN", raw)
    shutil.copy(FIXTURES / "import" / "dialogues.jsonl", tmp_path / "my_dialogues.jsonl")
    monkeypatch.chdir(tmp_path)

    namespace: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(readme_python_block(), "README.md", "exec"), namespace)  # noqa: S102 - our own doc
    out = capsys.readouterr().out

    # The import was queued, imported by the (stand-in) worker, and went in as train dialogues.
    assert "imported 3 dialogues" in out
    assert ImportBatch.objects.filter(study=demo_study, status="done", filename="my_dialogues.jsonl").count() == 1
    imported = Dialogue.objects.filter(study=demo_study, external_id__in=["en-001", "zh-001", "en-002"])
    assert sorted(imported.values_list("split", flat=True)) == ["train"] * 3
    # The run exists, covers every round of the test split and is waiting for a worker.
    run = GenerationRun.objects.get(pk=namespace["run"]["id"])
    assert run.study == demo_study and run.model.name == "demo-tiny" and run.status == "queued"
    assert f"run {run.pk} is queued: 0/{run.items.count()} rounds done" in out
    # Three submitted codings -> three rows, with the summary scores as columns.
    df = namespace["df"]
    assert len(df) == 3
    assert set(df["coder"]) == {"coder", "coder2"}
    assert {"scores.technical", "scores.relational", "scores.pct_cr", "counts.SR", "globals.EMPATHY"} <= set(df.columns)
    assert set(df["source.label"]) == {"Reference dialogues"}
    # All-CR coding: %CR is 1; all-SR: 0 (MITI: CR / (SR + CR)).
    by_coder_code = {(row["coder"], row["counts.CR"] > 0): row["scores.pct_cr"] for _, row in df.iterrows()}
    assert by_coder_code[("coder2", True)] == 1.0
    assert "Reference dialogues" in out


@pytest.fixture(autouse=True)
def _no_leftover_tasks():
    """The example's run is enqueued for real; take its chunks off the broker afterwards."""
    yield
    from mi_platform.celery import app

    app.control.purge()

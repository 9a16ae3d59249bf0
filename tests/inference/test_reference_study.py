"""``create_reference_study``: the reference protocol in one step, and its coding round as the follow-up.

Never the network: the released models are registered by hub id (nothing is fetched at
registration), and the full flow runs three small local folders through the vLLM stand-in.
"""

from __future__ import annotations

import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from annotation.models import CodingRound, Dialogue, TranscriptSource
from inference import execute, reference
from inference.backends.base import cached_engine_keys
from inference.models import GenerationRun, RegisteredModel

from .conftest import DEMO_FILE
from .vllm_support import build_tokenizer_folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    pytest.importorskip("transformers", reason="the tokenizer needs transformers (pip install '.[cpu]')")
    return build_tokenizer_folder(tmp_path_factory.mktemp("reference") / "tiny")


def command(*args: str) -> str:
    out = StringIO()
    call_command("create_reference_study", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_the_released_models_a_seeded_split_and_one_run_each(study, coordinator):
    output = command(study.slug, "--corpus", str(DEMO_FILE), "--n-train", "4", "--n-test", "4", "--seed", "3",
                     "--coordinator", coordinator.username)  # fmt: skip
    models = list(RegisteredModel.objects.order_by("name"))
    assert [(m.name, m.backend, m.base_model) for m in models] == [
        ("MI-LLM-Baichuan2_after_sft", "vllm", "kulaxiku/MI-LLM-Baichuan2_after_sft"),
        ("MI-LLM-GLM4_after_sft", "vllm", "kulaxiku/MI-LLM-GLM4_after_sft"),
        ("MI-LLM-LLama3-Chinese_after_sft", "vllm", "kulaxiku/MI-LLM-LLama3-Chinese_after_sft"),
    ]
    assert all(m.temperature == 0.0 and m.seed == 0 for m in models)
    study.refresh_from_db()
    assert study.split_info["seed"] == 3 and study.split_info["counts"] == {"test": 4, "train": 4, "unused": 0}
    test_ids = set(Dialogue.objects.filter(study=study, split="test").values_list("external_id", flat=True))
    runs = list(GenerationRun.objects.filter(study=study).order_by("id"))
    assert [(r.model.name, r.split, r.queue, r.chunk_size) for r in runs] == [
        (m.name, "test", "gpu", 40) for m in models
    ]
    rounds = {r.items.count() for r in runs}
    assert len(rounds) == 1 and rounds.pop() > 0
    assert TranscriptSource.objects.get(study=study, kind="reference").transcripts.count() == 4
    assert "when the runs are done: python manage.py create_reference_study" in output

    # Re-runnable: the same seed gives the same split, nothing is created twice.
    again = command(study.slug, "--corpus", str(DEMO_FILE), "--n-train", "4", "--n-test", "4", "--seed", "3")
    assert GenerationRun.objects.filter(study=study).count() == 3 and RegisteredModel.objects.count() == 3
    assert set(Dialogue.objects.filter(study=study, split="test").values_list("external_id", flat=True)) == test_ids
    assert "0 dialogues imported" in again and "queued" in again

    # The repositories' own code runs only when the coordinator says so.
    assert all("trust_remote_code" not in m.engine_options for m in models)
    assert "runs its repository's code" not in output

    with pytest.raises(CommandError, match=r"The study has 8 distinct dialogues; cannot take 2040"):
        command("bigger", "--corpus", str(DEMO_FILE))
    assert not study.__class__.objects.filter(slug="bigger").exists()  # all or nothing


@pytest.mark.django_db
def test_the_coding_round_follows_once_the_runs_are_done(
    fake_vllm, model_dir, tmp_path, study, coordinator, coder, coder2
):
    folders = [Path(shutil.copytree(model_dir, tmp_path / name)) for name in ("mi-a", "mi-b", "mi-c")]
    models = [arg for folder in folders for arg in ("--model", str(folder))]
    command(study.slug, "--corpus", str(DEMO_FILE), "--n-train", "4", "--n-test", "4", "--max-new-tokens", "8", *models)
    with pytest.raises(CommandError, match=r"needs every model's run done first: run \d+ of mi-a is queued"):
        command(study.slug, "--coding-round", *models)

    # The GPU worker's part, here: every chunk of every run, the three base models loaded in turn.
    for run in GenerationRun.objects.filter(study=study).order_by("id"):
        execute.execute_chunk(None, run.pk, list(run.items.values_list("id", flat=True)))
        run.refresh_from_db()
        assert run.status == GenerationRun.Status.DONE and run.source_id is not None
    assert [llm.model for llm in fake_vllm.CONTROL.engines] == [str(f) for f in folders]
    assert len(cached_engine_keys()) == 1  # one engine at a time on the worker

    output = command(study.slug, "--coding-round", "--coder", coder.username, "--coder", coder2.username,
                     "--round-seed", "5", *models)  # fmt: skip
    coding_round = CodingRound.objects.get(study=study)
    assert coding_round.name == reference.ROUND_NAME and coding_round.seed == 5
    assert sorted(coding_round.sources.values_list("kind", flat=True)) == ["generated"] * 3 + ["reference"]
    assert f"coding round '{reference.ROUND_NAME}'" in output


@pytest.mark.django_db
def test_trust_remote_code_is_set_on_the_models_only_when_asked(study):
    output = command(study.slug, "--corpus", str(DEMO_FILE), "--n-train", "4", "--n-test", "4", "--no-runs",
                     "--trust-remote-code")  # fmt: skip
    models = list(RegisteredModel.objects.order_by("name"))
    assert len(models) == 3 and all(m.engine_options == {"trust_remote_code": True} for m in models)
    assert output.count("runs its repository's code") == 3

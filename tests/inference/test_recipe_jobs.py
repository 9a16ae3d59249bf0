"""MI-style transformation jobs end to end: the tiny local model (outputs rejected, with reasons) and
an OpenAI-compatible server started by the test (valid MI dialogues stored with provenance and
judge scores); retries, cancellation, prompt versions and the training export action."""

from __future__ import annotations

import json

import pytest

from annotation.models import Dialogue
from inference import actions as inference_actions
from inference.recipe import actions, queries, transform
from inference.recipe.models import PromptTemplate, QualityScore, TransformationItem, TransformationJob
from tests.inference.recipe_support import (
    MI_TURNS,
    FakeOpenAIServer,
    demo_model_dir,
    eager_celery,  # noqa: F401 - a fixture
    import_demo_dialogues,
)

pytestmark = pytest.mark.django_db

Item = TransformationItem


@pytest.fixture
def tiny_model(tmp_path_factory):
    torch = pytest.importorskip("torch", reason="the tiny model needs torch (pip install '.[cpu]')")
    torch.set_num_threads(1)
    return inference_actions.register_model(
        name="demo-tiny",
        backend="transformers",
        base_model=str(demo_model_dir(tmp_path_factory)),
        max_new_tokens=48,
    )


@pytest.fixture
def server():
    with FakeOpenAIServer() as fake:
        yield fake


@pytest.fixture
def writer(server):
    return inference_actions.register_model(
        name="mi-writer", backend="openai", base_model="mi-writer", server_url=server.url
    )


@pytest.fixture
def judge_model(server):
    return inference_actions.register_model(
        name="mi-judge", backend="openai", base_model="mi-judge", server_url=server.url
    )


def _turns(dialogue: Dialogue) -> list[tuple[str, str]]:
    return list(dialogue.turns.order_by("index").values_list("speaker", "text"))


def test_tiny_model_job_completes_and_keeps_every_rejection_with_its_reason(
    study,
    coordinator,
    tiny_model,
    eager_celery,  # noqa: F811 - the fixture imported above
    django_capture_on_commit_callbacks,
):
    import_demo_dialogues(study)
    # The shipped prompt is longer than the tiny model's 1024-token context: items fail, saying so.
    with django_capture_on_commit_callbacks(execute=True):
        long_job = actions.start_transformation(
            study, tiny_model, split="train", max_new_tokens=48, created_by=coordinator
        )
    long_job.refresh_from_db()
    assert long_job.status == TransformationJob.Status.DONE
    assert long_job.prompt.name == "mi-rewrite" and long_job.prompt.version == 1
    assert long_job.items.count() == 8
    for item in long_job.items.all():
        assert item.status == Item.Status.FAILED
        assert item.reason_code == "backend_error"
        assert item.reason.startswith("prompt too long: ")
        assert "over the budget of 976 (context 1024 minus max_new_tokens 48)" in item.reason

    # A coordinator's shorter prompt fits; the tiny model's output is (correctly) rejected.
    short = actions.save_prompt_version(
        "mi-short", "请用动机式访谈改写：{dialogue}", "transform", created_by=coordinator
    )
    with django_capture_on_commit_callbacks(execute=True):
        job = actions.start_transformation(
            study,
            tiny_model,
            prompt=short,
            split="train",
            max_new_tokens=48,
            chunk_size=3,
            created_by=coordinator,
        )
    job.refresh_from_db()
    assert job.status == TransformationJob.Status.DONE
    assert job.started_at is not None and job.finished_at is not None
    items = list(job.items.select_related("source"))
    assert len(items) == 8
    assert {i.status for i in items} <= {Item.Status.ACCEPTED, Item.Status.REJECTED}
    rejected = [i for i in items if i.status == Item.Status.REJECTED]
    assert len(rejected) >= 6  # "mostly rejected": the tiny model does not write JSON dialogues
    for item in rejected:
        assert item.reason_code in transform.REJECTION_CODES
        assert item.reason  # a sentence, e.g. "the output is not parseable: expected a JSON list of ..."
        assert item.result is None
        assert item.attempts == 1
        assert item.completion_tokens and item.completion_tokens <= 48
        # The raw output is kept and the stored reason is exactly what re-checking it says.
        again = transform.validate_transform_output(
            item.raw_output, transform.source_rounds(_turns(item.source))
        )
        assert (again.code, again.reason) == (item.reason_code, item.reason)
    assert Dialogue.objects.filter(study=study, derived_from__isnull=False).count() == 8 - len(rejected)

    # Rejected items can be retried: they run again and are judged again.
    with django_capture_on_commit_callbacks(execute=True):
        assert actions.retry_transformation(job) == len(rejected)
    job.refresh_from_db()
    assert job.status == TransformationJob.Status.DONE
    assert sorted(i.attempts for i in job.items.filter(status=Item.Status.REJECTED)) == [2] * len(rejected)


def test_openai_server_job_stores_mi_dialogues_with_provenance_and_judge_scores(
    study,
    coordinator,
    server,
    writer,
    judge_model,
    eager_celery,  # noqa: F811 - the fixture imported above
    django_capture_on_commit_callbacks,
):
    import_demo_dialogues(study)
    sources = {d.external_id: d for d in Dialogue.objects.filter(study=study)}
    server.change_client_when = "我抽烟快十年了"  # the writer alters demo-zh-1's client turn
    with django_capture_on_commit_callbacks(execute=True):
        job = actions.start_transformation(
            study,
            writer,
            external_ids=["demo-zh-1", "demo-zh-2", "demo-en-1"],
            output_split="train",
            judge_model=judge_model,
            chunk_size=2,
            created_by=coordinator,
        )
    job.refresh_from_db()
    assert job.status == TransformationJob.Status.DONE
    assert job.suffix == "mi-v1" and job.queue == "cpu"
    assert job.selection["external_ids"] == ["demo-zh-1", "demo-zh-2", "demo-en-1"]
    by_source = {i.source.external_id: i for i in job.items.select_related("source", "result")}
    bad = by_source["demo-zh-1"]
    assert bad.status == Item.Status.REJECTED and bad.reason_code == "client_changed"
    assert bad.reason.startswith("the client turn of round 1 differs from the source: source '我抽烟快十年了")
    assert "（改写过的来访者发言）" in bad.raw_output

    for external_id in ("demo-zh-2", "demo-en-1"):
        item = by_source[external_id]
        assert item.status == Item.Status.ACCEPTED and item.reason == ""
        derived = item.result
        source = sources[external_id]
        assert derived.external_id == f"{external_id}-mi-v1"
        assert derived.derived_from_id == source.pk and derived.split == "train"
        assert derived.metadata["derived"] == {
            "kind": "mi-rewrite",
            "transformation_job": job.pk,
            "prompt": "mi-rewrite",
            "prompt_version": 1,
            "prompt_id": job.prompt_id,
            "model": "mi-writer",
            "model_id": writer.pk,
            "source": external_id,
        }
        rounds = transform.source_rounds(_turns(source))
        turns = _turns(derived)
        assert [t for t in turns if t[0] == "client"] == [t for t in rounds if t[0] == "client"]
        assert [t[1] for t in turns if t[0] == "counselor"] == MI_TURNS[: len(rounds) // 2]
        assert derived.round_count == len(rounds) // 2 and len(derived.content_hash) == 64
        score = QualityScore.objects.get(dialogue=derived)
        assert (
            score.comprehensiveness,
            score.professionalism,
            score.authenticity,
            score.safety,
            score.total,
        ) == (2, 3, 3, 1, 9)
        assert score.judge_model == judge_model and score.prompt.name == "cpsycoun-judge" and score.job == job
        assert score.raw_output.endswith("[2, 3, 3, 1]") and score.error == ""
    # Requests: 3 rewrites and 2 judge calls, at the job's max_new_tokens, greedy.
    assert [r["model"] for r in server.requests].count("mi-writer") == 3
    assert [r["model"] for r in server.requests].count("mi-judge") == 2
    assert {r["max_tokens"] for r in server.requests if r["model"] == "mi-writer"} == {2048}
    assert {r["temperature"] for r in server.requests} == {0.0}

    # The judge filter picks the scored rewrites.
    screened = queries.select_dialogues(study, split="train", derived_only=True, min_judge_total=8)
    assert sorted(screened.values_list("external_id", flat=True)) == ["demo-en-1-mi-v1", "demo-zh-2-mi-v1"]

    # Retry the rejected one once the writer behaves.
    server.change_client_when = None
    with django_capture_on_commit_callbacks(execute=True):
        assert actions.retry_transformation(job) == 1
    bad.refresh_from_db()
    assert bad.status == Item.Status.ACCEPTED and bad.result.external_id == "demo-zh-1-mi-v1"
    assert bad.attempts == 2

    # A second job with the same prompt version does not clash with the first one's names.
    with django_capture_on_commit_callbacks(execute=True):
        second = actions.start_transformation(
            study, writer, external_ids=["demo-zh-2"], output_split="unused"
        )
    second.refresh_from_db()
    assert second.suffix == f"mi-v1-j{second.pk}"
    assert second.items.get().result.external_id == f"demo-zh-2-mi-v1-j{second.pk}"


def test_export_action_writes_the_derived_training_split(
    study,
    server,
    writer,
    eager_celery,  # noqa: F811 - the fixture imported above
    django_capture_on_commit_callbacks,
    tmp_path,
):
    import_demo_dialogues(study, split="test")
    with django_capture_on_commit_callbacks(execute=True):
        actions.start_transformation(study, writer, split="test", output_split="train")
    result = actions.export_training_data(
        study, tmp_path, split="train", derived_only=True, name="demo_mi", system_prompt="You use MI."
    )
    sharegpt = json.loads(result.sharegpt_path.read_text(encoding="utf-8"))
    alpaca = json.loads(result.alpaca_path.read_text(encoding="utf-8"))
    rounds = sum(d.round_count for d in Dialogue.objects.filter(study=study, derived_from__isnull=False))
    assert (result.dialogues, len(sharegpt)) == (8, 8)
    assert result.rounds == len(alpaca) == rounds == 27
    assert all(r["system"] == "You use MI." for r in alpaca)
    assert {m["value"] for r in sharegpt for m in r["conversations"] if m["from"] == "gpt"} <= set(MI_TURNS)
    with pytest.raises(actions.ActionError, match="no dialogues to export in the 'unused' split"):
        actions.export_training_data(study, tmp_path, split="unused")


def test_prompt_versions_are_immutable_and_validated(coordinator):
    first = actions.default_prompt(PromptTemplate.Kind.TRANSFORM)
    assert (first.name, first.version, first.text) == ("mi-rewrite", 1, transform.DEFAULT_PROMPT_TEXT)
    edited = actions.save_prompt_version(
        "mi-rewrite", first.text + "\nBe brief.", "transform", created_by=coordinator
    )
    assert (edited.version, edited.created_by) == (2, coordinator)
    first.refresh_from_db()
    assert first.text == transform.DEFAULT_PROMPT_TEXT
    with pytest.raises(actions.ActionError, match=r"must contain the placeholder \{dialogue\}"):
        actions.save_prompt_version("mi-rewrite", "rewrite it", "transform")
    with pytest.raises(actions.ActionError, match="is a transform prompt"):
        actions.save_prompt_version("mi-rewrite", "{dialogue}", "judge")
    with pytest.raises(actions.ActionError, match="Prompt name 'a b'"):
        actions.save_prompt_version("a b", "{dialogue}", "transform")


def test_refusals_create_nothing(study, writer):
    import_demo_dialogues(study)
    with pytest.raises(actions.ActionError, match="Pick the dialogues"):
        actions.start_transformation(study, writer)
    with pytest.raises(actions.ActionError, match=r"Unknown dialogue id\(s\): nope"):
        actions.start_transformation(study, writer, external_ids=["demo-zh-1", "nope"])
    with pytest.raises(actions.ActionError, match="Unknown output split 'dev'"):
        actions.start_transformation(study, writer, split="train", output_split="dev")
    judge = actions.default_prompt(PromptTemplate.Kind.JUDGE)
    with pytest.raises(actions.ActionError, match="is a judge prompt, not a rewrite prompt"):
        actions.start_transformation(study, writer, split="train", prompt=judge)
    assert TransformationJob.objects.count() == 0


def test_cancelled_job_chunks_do_nothing(study, writer, server, django_capture_on_commit_callbacks):
    from inference.recipe import execute

    import_demo_dialogues(study)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = actions.start_transformation(study, writer, split="train", chunk_size=8)
    assert len(callbacks) == 1
    assert actions.cancel_transformation(job) is True
    ids = list(job.items.values_list("id", flat=True))
    assert execute.execute_transform_chunk(None, job.pk, ids) == {
        "job": job.pk,
        "claimed": 0,
        "skipped": "cancelled",
    }
    assert server.requests == []
    assert set(job.items.values_list("status", flat=True)) == {"pending"}
    assert actions.cancel_transformation(job) is False


def test_a_redelivered_chunk_writes_nothing_twice(study, writer, server, django_capture_on_commit_callbacks):
    from inference.recipe import execute

    import_demo_dialogues(study)
    with django_capture_on_commit_callbacks(execute=False):
        job = actions.start_transformation(
            study, writer, external_ids=["demo-zh-1", "demo-en-2"], chunk_size=2
        )
    ids = list(job.items.values_list("id", flat=True))
    first = execute.execute_transform_chunk(None, job.pk, ids, claim_token="task-1")
    assert first["claimed"] == 2 and first["written"] == 2
    # The same chunk again (another delivery): nothing is open, nothing is written or requested.
    assert execute.execute_transform_chunk(None, job.pk, ids, claim_token="task-2") == {
        "job": job.pk,
        "claimed": 0,
        "skipped": "done",
    }
    assert len(server.requests) == 2
    assert Dialogue.objects.filter(study=study, derived_from__isnull=False).count() == 2


def test_a_vllm_judge_sends_the_chunks_to_the_gpu_queue(
    study, writer, tmp_path_factory, django_capture_on_commit_callbacks
):
    pytest.importorskip("torch", reason="the tiny model folder is built with torch")
    import_demo_dialogues(study)
    vllm_judge = inference_actions.register_model(
        name="judge-vllm", backend="vllm", base_model=str(demo_model_dir(tmp_path_factory))
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        cpu_job = actions.start_transformation(study, writer, external_ids=["demo-zh-1"])
        gpu_job = actions.start_transformation(
            study, writer, external_ids=["demo-zh-1"], judge_model=vllm_judge
        )
    assert (cpu_job.queue, gpu_job.queue) == ("cpu", "gpu")
    assert gpu_job.judge_prompt.name == "cpsycoun-judge" and gpu_job.judge_params["backend"] == "vllm"
    assert len(callbacks) == 2

"""Generation runs: start (bad input refused, nothing half-created), claim/store, finish, pages.

The first test is the acceptance run: the demo test split through a real Celery worker (Redis
broker) with the tiny model on CPU. The rest run chunks in this process by calling the task body
(``execute_chunk``) directly, which is the same code the worker runs.
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta

import pytest
from django.utils import timezone

from annotation import segmentation
from annotation.models import Dialogue, Transcript, TranscriptSource, Volley
from inference import actions, execute
from inference.models import GenerationItem, GenerationRun

from .conftest import DEMO_TEST_ROUNDS, item_rows, wait_for_run


def run_in_process(run) -> None:
    """Execute every open chunk of the run here, as a worker would (no broker)."""
    ids = list(run.items.order_by("dialogue_id", "round_index").values_list("id", flat=True))
    for start in range(0, len(ids), run.chunk_size):
        execute.execute_chunk(None, run.pk, ids[start : start + run.chunk_size])
    run.refresh_from_db()


def responses(run) -> dict[tuple[str, int], str]:
    return {
        (item.dialogue.external_id, item.round_index): item.response
        for item in run.items.select_related("dialogue")
    }


# --- the acceptance run through a real worker ----------------------------------------------------


@pytest.mark.worker
def test_demo_split_through_real_worker_completes_reproducibly_with_transcripts(
    celery_worker_process, demo_study, demo_model, coordinator, client_for
):
    run = actions.start_run(demo_study, demo_model, chunk_size=4, created_by=coordinator)
    assert run.items.count() == DEMO_TEST_ROUNDS
    run = wait_for_run(run, timeout=180)

    assert run.status == GenerationRun.Status.DONE, run.error
    items = list(run.items.all())
    assert len(items) == DEMO_TEST_ROUNDS
    for item in items:
        assert item.status == GenerationItem.Status.DONE
        assert item.response.strip() != ""
        assert item.finish_reason in {"stop", "length"}
        assert item.completion_tokens > 0 and item.prompt_tokens > 0
        assert item.attempts == 1
        assert item.error == ""

    # The run's transcripts are there for coding: one per test dialogue, one volley per round,
    # the generated replies as the counselor text.
    source = TranscriptSource.objects.get(generation_run_id=run.pk)
    assert run.source_id == source.pk
    assert source.kind == TranscriptSource.Kind.GENERATED
    assert source.label == f"demo-tiny · run {run.pk}"
    assert Transcript.objects.filter(source=source).count() == 4
    volleys = Volley.objects.filter(transcript__source=source)
    assert volleys.count() == DEMO_TEST_ROUNDS
    by_round = {
        (v.transcript.dialogue.external_id, v.index): v.text
        for v in volleys.select_related("transcript__dialogue")
    }
    assert by_round == responses(run)

    # Greedy decoding with a fixed seed: a second run writes exactly the same replies.
    again = wait_for_run(actions.start_run(demo_study, demo_model, chunk_size=4), timeout=120)
    assert again.status == GenerationRun.Status.DONE
    assert responses(again) == responses(run)
    assert TranscriptSource.objects.get(generation_run_id=again.pk).label == f"demo-tiny · run {again.pk}"

    # The run page shows the finished run without a polling trigger.
    page = client_for(coordinator).get(f"/studies/smoking/generation/runs/{run.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"{DEMO_TEST_ROUNDS}/{DEMO_TEST_ROUNDS} done, 0 failed" in html
    assert 'hx-trigger="every 2s"' not in html

    # "Test this model" goes to the worker and its answer is polled from the result backend.
    response = client_for(coordinator).post(f"/models/{demo_model.pk}/test/")
    assert response.status_code == 302
    task_id = response["Location"].split("?test=")[1]
    for _ in range(120):
        partial = client_for(coordinator).get(f"/models/{demo_model.pk}/test/{task_id}/").content.decode()
        if "every 2s" not in partial:
            break
        import time

        time.sleep(0.25)
    assert "Ready: the model loaded and generated a reply." in partial


# --- starting a run: the items, and bad input ------------------------------------------------------


@pytest.mark.django_db
def test_start_run_creates_one_item_per_round_with_gold_history(
    demo_study, demo_model, coordinator, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        run = actions.start_run(demo_study, demo_model, chunk_size=4, created_by=coordinator)
    assert len(callbacks) == 1  # the chunks are sent once, after commit
    assert run.status == GenerationRun.Status.QUEUED
    assert run.queue == "cpu"
    assert run.params["temperature"] == 0.0 and run.params["seed"] == 0 and run.params["max_new_tokens"] == 24
    assert run.params["base_model"] == demo_model.base_model
    assert run.items.count() == DEMO_TEST_ROUNDS
    counts = {
        d: run.items.filter(dialogue__external_id=d).count()
        for d in ("demo-zh-1", "demo-zh-2", "demo-en-1", "demo-en-2")
    }
    assert counts == {"demo-zh-1": 4, "demo-zh-2": 4, "demo-en-1": 4, "demo-en-2": 3}

    third = run.items.get(dialogue__external_id="demo-zh-1", round_index=2)
    roles = [m["role"] for m in third.messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    assert third.messages[0]["content"] == demo_model.system_prompt
    assert third.messages[1]["content"] == "我抽烟快十年了，最近总是咳嗽，家里人一直劝我戒。"
    assert third.messages[-1]["content"] == "是啊，我其实也想过戒，但是怕戒不掉，之前试过一次就失败了。"
    assert third.reference.startswith("你之前就尝试过戒烟")

    # Creating the items again (as a repeated start would) adds nothing: the unique constraint holds.
    dialogues = Dialogue.objects.filter(study=demo_study, split="test")
    actions._create_items(run, dialogues, demo_model.system_prompt)
    assert run.items.count() == DEMO_TEST_ROUNDS
    # A new run's rows (on PostgreSQL one insert from a JSON document, annotation.bulk) are exactly
    # the rows the ORM's bulk_create path writes for the same rounds.
    other = GenerationRun.objects.create(study=demo_study, model=demo_model, params=run.params)
    actions._create_items(other, dialogues, demo_model.system_prompt)

    def rows(r):
        fields = [
            f.attname for f in GenerationItem._meta.concrete_fields if f.attname not in ("id", "run_id")
        ]
        return list(r.items.order_by("dialogue_id", "round_index").values_list(*fields))

    assert rows(run) == rows(other)


@pytest.mark.django_db
def test_study_without_test_split_is_refused_and_nothing_is_created(demo_study, demo_model):
    Dialogue.objects.filter(study=demo_study).update(split="train")
    with pytest.raises(actions.ActionError, match="has no dialogues in the 'test' split"):
        actions.start_run(demo_study, demo_model)
    assert GenerationRun.objects.count() == 0
    assert GenerationItem.objects.count() == 0


@pytest.mark.django_db
def test_bad_split_chunk_size_and_vanished_model_are_refused(demo_study, demo_model, tmp_path):
    with pytest.raises(actions.ActionError, match="Unknown split 'validation'"):
        actions.start_run(demo_study, demo_model, split="validation")
    with pytest.raises(actions.ActionError, match="chunk_size must be at least 1"):
        actions.start_run(demo_study, demo_model, chunk_size=0)
    moved = tmp_path / "moved"
    demo_model.base_model = str(moved)
    demo_model.save()
    with pytest.raises(actions.ActionError, match=f"base_model path {moved} does not exist"):
        actions.start_run(demo_study, demo_model)
    assert GenerationRun.objects.count() == 0
    assert GenerationItem.objects.count() == 0


@pytest.mark.django_db
def test_dialogue_whose_rounds_disagree_with_its_transcript_rolls_the_start_back(demo_study, demo_model):
    dialogue = Dialogue.objects.get(study=demo_study, external_id="demo-en-2")
    # A blank counselor turn: prompt building skips it, the transcript rule would not.
    dialogue.turns.filter(index=1).update(text="   ")
    with pytest.raises(actions.ActionError, match="Dialogue demo-en-2: .* rounds for generation"):
        actions.start_run(demo_study, demo_model)
    assert GenerationRun.objects.count() == 0
    assert GenerationItem.objects.count() == 0


# --- chunks in this process: finish, cancel, resume, retry, truncation -----------------------------


@pytest.mark.django_db(transaction=True)
def test_chunks_in_process_finish_the_run_and_hand_over_transcripts(demo_study, demo_model):
    run = actions.start_run(demo_study, demo_model, chunk_size=8)
    run_in_process(run)
    assert run.status == GenerationRun.Status.DONE
    assert run.started_at is not None and run.finished_at >= run.started_at
    assert run.items.filter(status="done").count() == DEMO_TEST_ROUNDS
    assert Transcript.objects.filter(source_id=run.source_id).count() == 4
    # Every volley holds the item's reply, cut into utterances by the segmentation rules.
    replies = dict(run.items.values_list("id", "response"))
    volleys = Volley.objects.filter(transcript__source_id=run.source_id).prefetch_related("utterances")
    assert sorted(v.text for v in volleys) == sorted(replies.values())
    for volley in volleys:
        parts = [u.text for u in volley.utterances.order_by("index")]
        assert parts == (segmentation.split_utterances(volley.text) or [volley.text])
    # Finishing again changes nothing and creates no second source.
    assert actions.finish_run_if_complete(run) is False
    assert TranscriptSource.objects.filter(generation_run_id=run.pk).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("returning", [True, False], ids=["update-returning", "update-then-select"])
def test_claim_takes_open_and_stale_items_and_its_own_but_not_live_foreign_claims(
    demo_study, demo_model, settings, returning, monkeypatch
):
    # Both SQL paths of claim_items: UPDATE ... RETURNING, and the fallback for databases without it.
    # The kernel lives in annotation.claims (inference.claims re-exports it): patch it where claim() looks.
    import annotation.claims

    monkeypatch.setattr(annotation.claims, "_can_update_returning", lambda: returning)
    settings.INFERENCE_CLAIM_STALE_SECONDS = 60
    run = actions.start_run(demo_study, demo_model, chunk_size=8)
    a, b, c, d, e, *_ = run.items.order_by("dialogue_id", "round_index")
    GenerationItem.objects.filter(pk=b.pk).update(
        status="claimed", claim_token="other", claimed_at=timezone.now()
    )
    GenerationItem.objects.filter(pk=c.pk).update(
        status="claimed", claim_token="dead", claimed_at=timezone.now() - timedelta(minutes=5)
    )
    GenerationItem.objects.filter(pk=d.pk).update(status="done")
    GenerationItem.objects.filter(pk=e.pk).update(
        status="claimed", claim_token="mine", claimed_at=timezone.now()
    )

    claimed = actions.claim_items(run, [e.pk, d.pk, c.pk, b.pk, a.pk], "mine")

    assert [item.pk for item in claimed] == [a.pk, c.pk, e.pk]  # pending, stale, our own; in round order
    assert all(item.status == "claimed" and item.claim_token == "mine" for item in claimed)
    assert claimed[0].messages == a.messages  # full rows come back, JSON decoded
    rows = {
        i.pk: (i.status, i.claim_token, i.attempts) for i in run.items.filter(pk__in=[a.pk, b.pk, c.pk, d.pk])
    }
    assert rows == {
        a.pk: ("claimed", "mine", 1),
        b.pk: ("claimed", "other", 0),
        c.pk: ("claimed", "mine", 1),
        d.pk: ("done", "", 0),
    }
    run.refresh_from_db()
    assert run.status == GenerationRun.Status.RUNNING and run.started_at is not None
    assert actions.claim_items(run, [b.pk, d.pk], "mine") == []


@pytest.mark.django_db(transaction=True)
def test_cancelled_run_does_no_work_and_resumes_to_done(demo_study, demo_model):
    run = actions.start_run(demo_study, demo_model, chunk_size=8)
    assert actions.cancel_run(run) is True
    assert run.status == GenerationRun.Status.CANCELLED
    ids = list(run.items.values_list("id", flat=True))
    assert execute.execute_chunk(None, run.pk, ids) == {"run": run.pk, "claimed": 0, "skipped": "cancelled"}
    assert run.items.filter(status="pending").count() == DEMO_TEST_ROUNDS
    assert actions.cancel_run(run) is False  # already finished

    assert actions.resume_run(run) == DEMO_TEST_ROUNDS
    run.refresh_from_db()
    assert run.status == GenerationRun.Status.QUEUED and run.finished_at is None
    run_in_process(run)
    assert run.status == GenerationRun.Status.DONE
    assert actions.resume_run(run) == 0  # a done run has nothing to resume


@pytest.mark.django_db(transaction=True)
def test_prompt_over_the_context_drops_the_fewest_oldest_pairs_and_records_them(demo_study, demo_model):
    from inference.backends import get_backend
    from inference.registry import spec_from_snapshot

    # Budget = context - max_new_tokens = 130: late rounds must lose some history.
    demo_model.context_length = 24 + 130
    demo_model.save()
    run = actions.start_run(demo_study, demo_model, chunk_size=16)
    run_in_process(run)
    assert run.status == GenerationRun.Status.DONE
    backend = get_backend(spec_from_snapshot(run.params))
    assert backend.prompt_budget() == 130
    dropped_any = False
    for item in run.items.all():
        assert item.prompt_tokens <= 130
        full = backend.count_prompt_tokens(item.messages)
        if item.dropped_pairs == 0:
            assert full <= 130
            continue
        dropped_any = True
        # The fewest pairs: keeping one more (the newest dropped) would not fit.
        head, keep_from = item.messages[:1], 1 + 2 * (item.dropped_pairs - 1)
        assert backend.count_prompt_tokens(head + item.messages[keep_from:]) > 130
        assert item.prompt_tokens == backend.count_prompt_tokens(head + item.messages[keep_from + 2 :])
    assert dropped_any
    assert run.items.get(dialogue__external_id="demo-zh-1", round_index=0).dropped_pairs == 0


@pytest.mark.django_db(transaction=True)
def test_prompt_that_cannot_fit_fails_its_item_and_keeps_the_client_turn(demo_study, demo_model):
    demo_model.context_length = 24 + 20  # not even the system prompt and one client turn fit
    demo_model.save()
    run = actions.start_run(demo_study, demo_model, chunk_size=16)
    run_in_process(run)
    assert run.status == GenerationRun.Status.FAILED
    item = run.items.get(dialogue__external_id="demo-zh-1", round_index=3)
    assert item.status == "failed" and item.dropped_pairs == 3
    assert item.error.startswith("prompt too long: ")
    assert "over the budget of 20" in item.error and "the current client turn is never cut" in item.error
    assert run.items.filter(status="failed").count() == DEMO_TEST_ROUNDS


@pytest.mark.django_db(transaction=True)
def test_failed_item_is_retried_alone_and_the_run_then_finishes(demo_study, demo_model, monkeypatch):
    from inference.backends import GenerationResult
    from inference.backends.transformers_backend import TransformersBackend

    real_generate = TransformersBackend.generate
    target = "那次坚持了两个星期，主要是那段时间每天晚上去跑步。"

    def flaky_generate(self, batch):
        results = real_generate(self, batch)
        return [
            GenerationResult(error="simulated CUDA error") if messages[-1]["content"] == target else result
            for messages, result in zip(batch, results, strict=True)
        ]

    monkeypatch.setattr(TransformersBackend, "generate", flaky_generate)
    run = actions.start_run(demo_study, demo_model, chunk_size=8)
    run_in_process(run)
    assert run.status == GenerationRun.Status.FAILED
    assert run.error == f"1 of {DEMO_TEST_ROUNDS} items failed; retry them from the run page."
    assert run.source_id is None
    failed = run.items.get(status="failed")
    assert (failed.dialogue.external_id, failed.round_index, failed.error) == (
        "demo-zh-1",
        3,
        "simulated CUDA error",
    )
    assert failed.response == ""

    monkeypatch.setattr(TransformersBackend, "generate", real_generate)
    done_before = [row for row in item_rows(run) if row[3] == "done"]
    actions.retry_item(failed)
    run.refresh_from_db()
    assert run.status == GenerationRun.Status.QUEUED
    with pytest.raises(actions.ActionError, match="is not failed"):
        actions.retry_item(run.items.get(pk=done_before[0][0]))
    execute.execute_chunk(None, run.pk, [failed.pk])
    run.refresh_from_db()
    assert run.status == GenerationRun.Status.DONE
    failed.refresh_from_db()
    assert (failed.status, failed.attempts, failed.error) == ("done", 2, "")
    assert [row for row in item_rows(run) if row[0] != failed.pk] == done_before
    assert Transcript.objects.filter(source_id=run.source_id).count() == 4
    # Every volley holds the item's reply, cut into utterances by the segmentation rules.
    replies = dict(run.items.values_list("id", "response"))
    volleys = Volley.objects.filter(transcript__source_id=run.source_id).prefetch_related("utterances")
    assert sorted(v.text for v in volleys) == sorted(replies.values())
    for volley in volleys:
        parts = [u.text for u in volley.utterances.order_by("index")]
        assert parts == (segmentation.split_utterances(volley.text) or [volley.text])


@pytest.mark.django_db(transaction=True)
def test_backend_that_cannot_start_fails_the_chunk_with_the_reason(demo_study, demo_model, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(demo_model.base_model, broken)
    (broken / "model.safetensors").write_bytes(b"not weights")
    demo_model.base_model = str(broken)
    demo_model.save()
    run = actions.start_run(demo_study, demo_model, chunk_size=DEMO_TEST_ROUNDS)
    run_in_process(run)
    assert run.status == GenerationRun.Status.FAILED
    errors = set(run.items.values_list("error", flat=True))
    assert len(errors) == 1
    assert next(iter(errors)).startswith("backend could not start: ")


@pytest.mark.django_db
def test_evaluation_task_is_sent_by_name_only_when_registered(monkeypatch):
    from celery import current_app

    sent = []
    monkeypatch.setattr(current_app, "send_task", lambda name, args: sent.append((name, args)))
    registered = actions.EVALUATION_TASK in current_app.tasks or (
        current_app.loader.import_default_modules() or actions.EVALUATION_TASK in current_app.tasks
    )
    actions._send_evaluation(7)
    assert sent == ([(actions.EVALUATION_TASK, [7])] if registered else [])

    monkeypatch.setitem(current_app.tasks, actions.EVALUATION_TASK, object())
    sent.clear()
    actions._send_evaluation(8)
    assert sent == [(actions.EVALUATION_TASK, [8])]


# --- pages ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_run_pages_are_for_the_study_coordinators_only(
    demo_study, demo_model, coordinator, coder, outsider, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks():
        run = actions.start_run(demo_study, demo_model, chunk_size=4)
    url = f"/studies/smoking/generation/runs/{run.pk}/"
    for user, expected in ((coordinator, 200), (coder, 403), (outsider, 404)):
        client.force_login(user)
        assert client.get(url).status_code == expected, user
        assert client.get("/studies/smoking/generation/").status_code == expected, user
        assert client.post(url + "cancel/").status_code == (302 if expected == 200 else expected), user
    client.logout()
    assert client.get(url).status_code == 302  # to the login page


@pytest.mark.django_db
def test_run_page_polls_while_open_and_buttons_act(
    demo_study, demo_model, coordinator, client_for, django_capture_on_commit_callbacks
):
    client = client_for(coordinator)
    with django_capture_on_commit_callbacks():
        response = client.post(
            "/studies/smoking/generation/", {"model": demo_model.pk, "split": "test", "chunk_size": 4}
        )
    run = GenerationRun.objects.get()
    assert (
        response.status_code == 302 and response["Location"] == f"/studies/smoking/generation/runs/{run.pk}/"
    )
    url = response["Location"]
    page = client.get(url).content.decode()
    assert f'hx-get="{url}" hx-trigger="every 2s"' in page
    assert f'<a href="{url}">Refresh</a>' in page
    assert f"0/{DEMO_TEST_ROUNDS} done, 0 failed" in page
    partial = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert partial.lstrip().startswith('<section id="run-progress"')
    assert "<html" not in partial

    with django_capture_on_commit_callbacks():
        assert client.post(url + "cancel/").status_code == 302
    run.refresh_from_db()
    assert run.status == GenerationRun.Status.CANCELLED
    partial = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "hx-trigger" not in partial  # finished: polling stops
    with django_capture_on_commit_callbacks() as callbacks:
        assert client.post(url + "resume/").status_code == 302
    assert len(callbacks) == 1
    run.refresh_from_db()
    assert run.status == GenerationRun.Status.QUEUED


@pytest.mark.django_db
def test_start_form_shows_the_refusal(demo_study, demo_model, coordinator, client_for):
    Dialogue.objects.filter(study=demo_study).update(split="train")
    response = client_for(coordinator).post(
        "/studies/smoking/generation/", {"model": demo_model.pk, "split": "test", "chunk_size": 4}
    )
    assert response.status_code == 200
    assert "has no dialogues in the &#x27;test&#x27; split" in response.content.decode()
    assert GenerationRun.objects.count() == 0


@pytest.mark.django_db
def test_generate_command_starts_a_run_and_refuses_bad_input(
    demo_study, demo_model, django_capture_on_commit_callbacks
):
    from django.core.management import CommandError, call_command

    with django_capture_on_commit_callbacks() as callbacks:
        call_command("generate", "--study", "smoking", "--model", "demo-tiny", "--chunk-size", "5")
    assert len(callbacks) == 1
    run = GenerationRun.objects.get()
    assert (run.items.count(), run.chunk_size) == (DEMO_TEST_ROUNDS, 5)
    with pytest.raises(CommandError, match="No registered model named 'nope'"):
        call_command("generate", "--study", "smoking", "--model", "nope")
    with pytest.raises(CommandError, match="Unknown split 'dev'"):
        call_command("generate", "--study", "smoking", "--model", "demo-tiny", "--split", "dev")
    assert GenerationRun.objects.count() == 1
    assert json.loads(json.dumps(run.params))["name"] == "demo-tiny"


def test_earlier_rounds_need_no_token_count_when_the_longest_round_of_their_dialogue_fits():
    class CountingBackend:
        def __init__(self) -> None:
            self.counted: list[int] = []

        def count_prompt_tokens(self, messages) -> int:
            self.counted.append(len(messages))
            return 10 * len(messages)

    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i}"} for i in range(7)]
    rounds = [GenerationItem(pk=i + 1, dialogue_id=1, messages=history[: 2 * i + 1]) for i in range(4)]
    other = GenerationItem(pk=9, dialogue_id=2, messages=[{"role": "user", "content": "hello"}])
    stranger = GenerationItem(pk=10, dialogue_id=1, messages=[{"role": "user", "content": "not a prefix"}])

    backend = CountingBackend()
    assert execute._prefixes_known_to_fit([*rounds, other, stranger], backend, budget=200) == {1, 2, 3, 4, 9}
    assert sorted(backend.counted) == [1, 7]  # one count per dialogue: its longest prompt
    # The longest round is within the margin of the budget: nothing is taken for granted.
    backend = CountingBackend()
    assert (
        execute._prefixes_known_to_fit(rounds, backend, budget=70 + execute.PREFIX_MARGIN_TOKENS - 1) == set()
    )

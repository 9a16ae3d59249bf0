"""Faults against a real Celery worker: a worker killed mid-run, a chunk delivered twice, a backend error.

Each must end with every item written exactly once: one row per round, one response, results never
changed by a late or repeated delivery.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from annotation import actions as annotation_actions
from annotation.models import Transcript, TranscriptSource
from inference import actions, claims, execute, tasks
from inference.models import GenerationItem, GenerationRun

from .conftest import DEMO_TEST_ROUNDS, item_rows, wait_for_run

# Slow chunks (so the kill lands mid-chunk; the hook is tests/inference/fault_worker_app.py), claims
# stale after 3 s, and Redis redelivering an unacknowledged message 4 s after it was handed out
# (production: 600 s and one hour).
KILL_ENV = {
    "INFERENCE_TEST_DELAY_SECONDS": "1.0",
    "INFERENCE_CLAIM_STALE_SECONDS": "3",
    "CELERY_VISIBILITY_TIMEOUT": "4",
}


def assert_each_round_once(run) -> None:
    rows = list(run.items.values_list("dialogue_id", "round_index", "status", "response"))
    assert len(rows) == DEMO_TEST_ROUNDS
    assert len({(d, r) for d, r, _, _ in rows}) == DEMO_TEST_ROUNDS
    assert all(status == "done" and response.strip() for _, _, status, response in rows)
    assert TranscriptSource.objects.filter(generation_run_id=run.pk).count() == 1
    assert Transcript.objects.filter(source__generation_run_id=run.pk).count() == 4


@pytest.mark.worker
@pytest.mark.parametrize("fault_worker", [KILL_ENV], indirect=True)
def test_worker_killed_mid_run_then_restarted_finishes_every_round_once(fault_worker, demo_study, demo_model):
    run = actions.start_run(demo_study, demo_model, chunk_size=1)

    def some_done_and_one_in_flight(r) -> bool:
        statuses = list(r.items.values_list("status", flat=True))
        return statuses.count("done") >= 2 and statuses.count("claimed") == 1

    wait_for_run(run, timeout=120, until=some_done_and_one_in_flight)
    fault_worker.kill()  # SIGKILL to the worker's process group: no cleanup, no ack
    in_flight = run.items.get(status=GenerationItem.Status.CLAIMED)
    done_before = {row[0]: row for row in item_rows(run) if row[3] == "done"}
    assert run.items.filter(status="pending").count() > 0

    # Let the killed delivery become overdue (visibility timeout 4 s), so the new worker's first
    # poll restores it at once instead of at a later periodic scan.
    time.sleep(5)
    fault_worker.start()
    run = wait_for_run(run, timeout=180)

    assert run.status == GenerationRun.Status.DONE, run.error
    assert_each_round_once(run)
    in_flight.refresh_from_db()
    # The killed chunk was redelivered by the broker and its stale claim taken over.
    assert in_flight.status == "done" and in_flight.attempts >= 2
    after = {row[0]: row for row in item_rows(run)}
    for pk, row in done_before.items():
        assert after[pk] == row  # finished rounds were not touched again


@pytest.mark.worker
def test_same_chunk_delivered_twice_changes_nothing(celery_worker_process, demo_study, demo_model):
    run = actions.start_run(demo_study, demo_model, chunk_size=5)
    chunks = _chunks(run, 5)
    # Every chunk delivered again: once more through the broker, and once run here in this process
    # at the same time as the worker works on the originals (a real race on the same rows).
    for ids in chunks:
        tasks.run_chunk.delay(run.pk, ids)
    for ids in chunks:
        execute.execute_chunk(None, run.pk, ids)
    run = wait_for_run(run, timeout=180)
    assert run.status == GenerationRun.Status.DONE
    assert_each_round_once(run)
    # Each round was claimed exactly once: every other delivery found it claimed or done.
    assert set(run.items.values_list("attempts", flat=True)) == {1}

    before = item_rows(run)
    finished_at = run.finished_at
    # Late duplicates: one through the worker, one applied here in this process.
    skipped = {"run": run.pk, "claimed": 0, "skipped": "done"}
    assert tasks.run_chunk.delay(run.pk, chunks[0]).get(timeout=60) == skipped
    assert tasks.run_chunk.apply(args=[run.pk, chunks[1]]).get() == skipped
    assert item_rows(run) == before
    run.refresh_from_db()
    assert run.finished_at == finished_at
    # Even with the run reopened, a chunk whose items are done claims nothing and writes nothing.
    GenerationRun.objects.filter(pk=run.pk).update(status=GenerationRun.Status.RUNNING)
    assert execute.execute_chunk(None, run.pk, chunks[2]) == {"run": run.pk, "claimed": 0}
    assert item_rows(run) == before
    run.refresh_from_db()
    assert run.status == GenerationRun.Status.DONE  # closed again, with the same single source
    assert_each_round_once(run)


@pytest.mark.django_db(transaction=True)
def test_late_writer_whose_stale_claim_was_taken_over_writes_nothing(demo_study, demo_model, settings):
    """In process: worker A claims and stalls; B takes the stale claim and finishes; A's write is void."""
    settings.INFERENCE_CLAIM_STALE_SECONDS = 1
    run = actions.start_run(demo_study, demo_model, chunk_size=DEMO_TEST_ROUNDS)
    ids = list(run.items.values_list("id", flat=True))
    stalled_token = claims.new_claim_token()
    claimed = actions.claim_items(run, ids, stalled_token)
    assert len(claimed) == DEMO_TEST_ROUNDS
    # B, too early: the claim is live, so B claims nothing.
    assert execute.execute_chunk(None, run.pk, ids) == {"run": run.pk, "claimed": 0}
    time.sleep(1.2)
    result = execute.execute_chunk(None, run.pk, ids)
    assert result == {"run": run.pk, "claimed": DEMO_TEST_ROUNDS, "written": DEMO_TEST_ROUNDS, "failed": 0}
    before = item_rows(run)
    stale = {pk: actions.ItemOutcome(text="late and stale") for pk in ids}
    assert actions.store_results(stalled_token, stale) == 0
    assert item_rows(run) == before
    assert set(run.items.values_list("attempts", flat=True)) == {2}


@pytest.mark.worker
def test_backend_error_on_one_item_fails_it_with_the_message_and_the_rest_complete(
    celery_worker_process, study, coordinator
):
    server = FakeChatServer()
    try:
        annotation_actions.import_dialogues(
            study,
            data=FAULT_DIALOGUES.encode(),
            filename="faults.jsonl",
            split="test",
            created_by=coordinator,
        )
        model = actions.register_model(
            name="served-baseline", backend="openai", base_model="baseline", server_url=server.url
        )
        run = wait_for_run(actions.start_run(study, model, chunk_size=3), timeout=120)

        assert run.status == GenerationRun.Status.FAILED
        assert run.error == "1 of 5 items failed; retry them from the run page."
        failed = run.items.get(status="failed")
        assert (failed.dialogue.external_id, failed.round_index) == ("f-1", 1)
        assert failed.error == "HTTP 400: marker refused: FAIL-ME"
        assert failed.response == ""
        done = run.items.filter(status="done")
        assert done.count() == 4
        assert set(done.values_list("response", flat=True)) == {"我听到你了。"}
        assert set(done.values_list("completion_tokens", flat=True)) == {5}
        assert TranscriptSource.objects.filter(generation_run_id=run.pk).count() == 0

        # The server stops refusing; retrying the failed round alone finishes the run.
        server.refuse = False
        actions.retry_item(failed)
        run = wait_for_run(run, timeout=60)
        assert run.status == GenerationRun.Status.DONE
        failed.refresh_from_db()
        assert (failed.status, failed.response, failed.attempts) == ("done", "我听到你了。", 2)
        assert Transcript.objects.filter(source__generation_run_id=run.pk).count() == 2
    finally:
        server.close()


def _chunks(run, size):
    ids = list(run.items.order_by("dialogue_id", "round_index").values_list("id", flat=True))
    return [ids[i : i + size] for i in range(0, len(ids), size)]


FAULT_DIALOGUES = "\n".join(
    json.dumps(
        {"external_id": ext, "turns": [{"speaker": s, "text": t} for s, t in turns]}, ensure_ascii=False
    )
    for ext, turns in (
        (
            "f-1",
            [
                ("client", "我最近睡不好。"),
                ("counselor", "睡不好让你很累。"),
                ("client", "是的 FAIL-ME 我想改变。"),
                ("counselor", "你想要改变。"),
                ("client", "对。"),
                ("counselor", "我们一起想想办法。"),
            ],
        ),
        (
            "f-2",
            [
                ("client", "I drink too much."),
                ("counselor", "You are worried."),
                ("client", "Yes."),
                ("counselor", "Tell me more."),
            ],
        ),
    )
)


class FakeChatServer:
    """A tiny OpenAI-compatible server: 400 for a current turn containing FAIL-ME, a fixed reply otherwise."""

    def __init__(self) -> None:
        self.refuse = True
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep the test output clean
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": "baseline"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path != "/v1/chat/completions":
                    self._send(404, {"error": {"message": "not found"}})
                    return
                if outer.refuse and "FAIL-ME" in body["messages"][-1]["content"]:
                    self._send(400, {"error": {"message": "marker refused: FAIL-ME"}})
                    return
                self._send(
                    200,
                    {
                        "choices": [
                            {
                                "message": {"role": "assistant", "content": "我听到你了。"},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 11, "completion_tokens": 5},
                    },
                )

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

"""Shared pieces of the recipe tests: the tiny demo model (built once per session), a small local
OpenAI-compatible server, eager Celery, and a study holding the demo dialogues."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO_DIALOGUES = REPO / "annotation" / "demo_data" / "demo_dialogues.jsonl"
_DEMO_MODEL: dict[str, Path] = {}

# What the fake server's "MI writer" says in each counselor turn, round by round.
MI_TURNS = [
    "听起来这件事让你很困扰。你自己是怎么看的？",
    "你已经在认真思考改变了，这很不容易。",
    "改不改、怎么改，由你来决定。你觉得第一步可以是什么？",
    "你愿意多说说，对你来说最重要的是什么吗？",
]
JUDGE_VERDICT = "Comprehensive and empathic.\n[2, 3, 3, 1]"


def demo_model_dir(tmp_path_factory) -> Path:
    """The tiny demo model, built on the demo dialogues once per test session (a few seconds)."""
    if "path" not in _DEMO_MODEL:
        import torch

        from inference.demo_model import build_demo_model

        torch.set_num_threads(1)
        corpus = [
            [(t["speaker"], t["text"]) for t in json.loads(line)["turns"]]
            for line in DEMO_DIALOGUES.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        out = tmp_path_factory.mktemp("recipe-demo-model")
        _DEMO_MODEL["path"] = build_demo_model(out, corpus, steps=60, seed=0, num_threads=1)
    return _DEMO_MODEL["path"]


@pytest.fixture
def eager_celery():
    """Tasks sent with apply_async run at once, in this process (the real task functions)."""
    from mi_platform.celery import app

    previous = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    try:
        yield app
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = previous
        # send_task ignores eager mode (e.g. a finished run asking evaluation to score it): drop what
        # reached the broker, so no later worker picks up a task about rows this test rolled back.
        if app.conf.broker_url.startswith("redis"):
            app.control.purge()


def import_demo_dialogues(study, split: str = "train"):
    from annotation import actions

    return actions.import_dialogues(study, path=str(DEMO_DIALOGUES), split=split)


class FakeOpenAIServer:
    """A tiny ``/v1/chat/completions`` server on 127.0.0.1 (a thread), for the openai backend.

    A rewrite request (the dialogue as a JSON list after ``Dialogue:``) is answered with the same
    client turns and :data:`MI_TURNS` as counselor turns; a judge request (``'''`` around the
    dialogue) with :data:`JUDGE_VERDICT`. ``change_client_when`` makes the writer alter the first
    client turn of dialogues containing that text (a rewrite that must be rejected).
    """

    def __init__(self, model_ids=("mi-writer", "mi-judge")) -> None:
        self.model_ids = list(model_ids)
        self.requests: list[dict] = []
        self.change_client_when: str | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body, ensure_ascii=False).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    self._send(
                        200,
                        {"object": "list", "data": [{"id": m, "object": "model"} for m in server.model_ids]},
                    )
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                server.requests.append(body)
                text = server.answer(body["messages"][-1]["content"])
                self._send(
                    200,
                    {
                        "id": "cmpl-1",
                        "object": "chat.completion",
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {
                            "prompt_tokens": len(body["messages"][-1]["content"]),
                            "completion_tokens": len(text),
                        },
                    },
                )

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def answer(self, prompt: str) -> str:
        if "'''" in prompt:
            return JUDGE_VERDICT
        match = re.search(r"Dialogue:\s*(\[.*\])", prompt, re.DOTALL) or re.search(
            r"(\[\s*\{.*\])", prompt, re.DOTALL
        )
        turns = json.loads(match.group(1))
        rewritten = []
        for i, turn in enumerate(turns):
            content = turn["content"] if turn["role"] == "client" else MI_TURNS[(i // 2) % len(MI_TURNS)]
            rewritten.append({"role": turn["role"], "content": content})
        if self.change_client_when and self.change_client_when in prompt:
            rewritten[0]["content"] = "（改写过的来访者发言）"
        return "```json\n" + json.dumps(rewritten, ensure_ascii=False, indent=1) + "\n```"

    def __enter__(self) -> FakeOpenAIServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

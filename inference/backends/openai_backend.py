"""Generation through an OpenAI-compatible ``/v1/chat/completions`` server (vLLM serve, TGI, ...)."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from inference.backends.base import (
    GenerationBackend,
    GenerationResult,
    Message,
    ModelSpec,
    encode_prompt,
    load_tokenizer,
    trusts_remote_code,
)


def api_root(server_url: str) -> str:
    """``http://host:8000`` or ``http://host:8000/v1`` → ``http://host:8000/v1``."""
    url = server_url.rstrip("/")
    return url if url.endswith("/v1") else f"{url}/v1"


def estimate_prompt_tokens(messages: Sequence[Message]) -> int:
    """A rough upper-leaning token count when no tokenizer is available.

    UTF-8 bytes / 3 is about one token per Chinese character and over-counts English (about 4
    bytes per token), so prompts fitted with it rarely overflow; plus a few tokens of template
    per message.
    """
    return sum(math.ceil(len(m.get("content", "").encode("utf-8")) / 3) + 5 for m in messages) + 3


class OpenAIBackend(GenerationBackend):
    """HTTP client for an OpenAI-compatible chat completions server.

    ``base_model`` is the model id sent in each request (for ``vllm serve --lora-modules NAME=PATH``
    the adapter's NAME); ``adapter_path`` is not used. Requests run in a thread pool of
    ``spec.max_concurrency``; each has ``spec.timeout`` seconds. Connection errors, 429 and 5xx are
    retried with exponential backoff (honouring ``Retry-After``) up to ``options["max_attempts"]``
    (default 4) attempts; other 4xx, malformed replies and read timeouts become that item's error
    (a timed-out generation may still be running on the server, so it is not re-sent).
    ``top_k`` and ``repetition_penalty`` are sent only when not neutral, and ``chat_template`` only
    when set: they are vLLM extensions a strict OpenAI server rejects. Options:
    ``max_attempts``, ``backoff_s`` (first delay, default 0.5), ``tokenizer`` (a local HF
    tokenizer path for exact prompt counts; otherwise the server's ``/tokenize`` is tried, then
    :func:`estimate_prompt_tokens`).
    """

    name = "openai"

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self._client: httpx.Client | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._tokenize_endpoint_works: bool | None = None

    # -- plumbing --------------------------------------------------------------------------
    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            headers = {"Authorization": f"Bearer {self.spec.api_key}"} if self.spec.api_key else {}
            timeout = httpx.Timeout(self.spec.timeout, connect=min(10.0, self.spec.timeout))
            limits = httpx.Limits(max_connections=max(1, self.spec.max_concurrency))
            self._client = httpx.Client(timeout=timeout, headers=headers, limits=limits)
        return self._client

    @property
    def pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=max(1, self.spec.max_concurrency), thread_name_prefix="openai"
            )
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def _payload(self, messages: Sequence[Message]) -> dict[str, Any]:
        params = self.spec.params
        payload: dict[str, Any] = {
            "model": self.spec.base_model,
            "messages": [dict(m) for m in messages],
            "max_tokens": params.max_new_tokens,
            "temperature": 0.0 if params.greedy else params.temperature,
            "top_p": 1.0 if params.greedy else params.top_p,
        }
        if params.seed is not None:
            payload["seed"] = params.seed
        if params.top_k > 0 and not params.greedy:
            payload["top_k"] = params.top_k
        if params.repetition_penalty != 1.0:
            payload["repetition_penalty"] = params.repetition_penalty
        if self.spec.chat_template is not None:
            payload["chat_template"] = self.spec.chat_template
        return payload

    # -- contract ----------------------------------------------------------------------------
    def generate(self, batch: Sequence[Sequence[Message]]) -> list[GenerationResult]:
        if not self.spec.server_url:
            return [GenerationResult(error="server_url is not set") for _ in batch]
        return list(self.pool.map(self._generate_one, batch))

    def _generate_one(self, messages: Sequence[Message]) -> GenerationResult:
        url = f"{api_root(self.spec.server_url or '')}/chat/completions"
        max_attempts = max(1, int(self.spec.options.get("max_attempts", 4)))
        backoff = float(self.spec.options.get("backoff_s", 0.5))
        started = time.perf_counter()
        last_problem = ""
        delay: float | None = None
        for attempt in range(max_attempts):
            if attempt:
                # Retry-After from the server wins; else exponential backoff with a little jitter
                # so concurrent items do not retry in lockstep.
                wait = (
                    delay if delay is not None else backoff * 2 ** (attempt - 1) * (1 + 0.1 * random.random())
                )
                time.sleep(min(wait, 30.0))
            delay = None
            try:
                response = self.client.post(url, json=self._payload(messages))
            except httpx.ConnectTimeout as error:
                last_problem = f"connection timed out: {error}"
                continue
            except httpx.TimeoutException:
                return GenerationResult(
                    error=f"request timed out after {self.spec.timeout:g}s",
                    latency_s=time.perf_counter() - started,
                )
            except (httpx.NetworkError, httpx.RemoteProtocolError) as error:
                last_problem = f"connection error: {type(error).__name__}: {error}"
                continue
            if response.status_code == 429 or response.status_code >= 500:
                last_problem = f"HTTP {response.status_code}: {_error_message(response)}"
                delay = _retry_after(response)
                continue
            if response.status_code >= 400:
                return GenerationResult(
                    error=f"HTTP {response.status_code}: {_error_message(response)}",
                    latency_s=time.perf_counter() - started,
                )
            return _parse_completion(response, time.perf_counter() - started)
        return GenerationResult(
            error=f"gave up after {max_attempts} attempts; last: {last_problem}",
            latency_s=time.perf_counter() - started,
        )

    def count_prompt_tokens(self, messages: Sequence[Message]) -> int:
        tokenizer_path = self.spec.options.get("tokenizer")
        if tokenizer_path:
            return len(encode_prompt(load_tokenizer(str(tokenizer_path), trusts_remote_code(self.spec)), messages, self.spec.chat_template))
        if self._tokenize_endpoint_works is not False and self.spec.server_url:
            # vLLM's server counts with the served model's own template at /tokenize (no /v1).
            root = api_root(self.spec.server_url).removesuffix("/v1")
            body = {
                "model": self.spec.base_model,
                "messages": [dict(m) for m in messages],
                "add_generation_prompt": True,
            }
            try:
                response = self.client.post(f"{root}/tokenize", json=body)
                if response.status_code == 200 and isinstance(response.json().get("count"), int):
                    self._tokenize_endpoint_works = True
                    return int(response.json()["count"])
            except (httpx.HTTPError, ValueError):
                pass
            self._tokenize_endpoint_works = False
        return estimate_prompt_tokens(messages)

    def check(self) -> list[str]:
        problems = []
        if self.spec.adapter_path:
            problems.append(
                "adapter_path is not used by the openai backend: serve the adapter "
                "(e.g. vllm serve BASE --enable-lora --lora-modules NAME=PATH) and set base_model to NAME"
            )
        if not self.spec.server_url:
            return [*problems, "server_url is not set"]
        url = f"{api_root(self.spec.server_url)}/models"
        try:
            response = self.client.get(url, timeout=min(10.0, self.spec.timeout))
        except httpx.HTTPError as error:
            return [
                *problems,
                f"server {self.spec.server_url} is unreachable: {type(error).__name__}: {error}",
            ]
        if response.status_code != 200:
            return [*problems, f"GET {url} answered HTTP {response.status_code}: {_error_message(response)}"]
        try:
            served = [model.get("id") for model in response.json().get("data", [])]
        except (ValueError, AttributeError):
            return [*problems, f"GET {url} did not return an OpenAI model list"]
        if self.spec.base_model not in served:
            problems.append(
                f"model {self.spec.base_model!r} is not served by {self.spec.server_url} (served: {served})"
            )
        return problems


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])[:300]
    if isinstance(error, str):
        return error[:300]
    return str(body)[:300]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _parse_completion(response: httpx.Response, latency: float) -> GenerationResult:
    try:
        body = response.json()
        choice = body["choices"][0]
        text = choice["message"]["content"] or ""
        usage = body.get("usage") or {}
        return GenerationResult(
            text=text.strip(),
            finish_reason=choice.get("finish_reason"),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            latency_s=latency,
        )
    except (ValueError, KeyError, IndexError, TypeError) as error:
        return GenerationResult(
            error=f"malformed completion response ({type(error).__name__}: {error}): {response.text[:200]}",
            latency_s=latency,
        )

"""The model registry's rules: a registered model as a backend :class:`ModelSpec`, and its problems.

``problems_for(model, deep=False)`` is cheap (file system only, no weights, no network) and is what
the system checks (``inference.E00x``) and registration run; ``deep=True`` also asks the backend
(loads the tokenizer, contacts an OpenAI-compatible server). A run never reads the live model row
after it starts: it builds its spec from the parameter snapshot taken at start
(:func:`params_snapshot`), so editing a model cannot change a run in flight.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.utils.translation import gettext, gettext_noop

from .backends import GenerationParams, ModelSpec, get_backend
from .backends.vllm_backend import engine_option_problems, model_context_limit
from .models import RegisteredModel
from .workers import worker_command

# Snapshot keys that describe the model (not decoding): what a run needs to rebuild its spec.
_MODEL_KEYS = (
    "name",
    "backend",
    "base_model",
    "adapter_path",
    "chat_template",
    "system_prompt",
    "server_url",
    "api_key_env",
    "context_length",
    "engine_options",
)
_PARAM_KEYS = ("temperature", "top_p", "top_k", "max_new_tokens", "repetition_penalty", "seed")


@dataclass(frozen=True)
class Problem:
    """One configuration problem: ``fatal`` problems stop registration and runs; others warn."""

    code: str
    message: str
    hint: str = ""
    fatal: bool = True
    # The message and hint as msgids with {placeholders} and the values filled in: pages show them in
    # their language (``shown_message``/``shown_hint``); ``message``/``hint`` stay English (CLI, API, checks).
    message_id: str = field(default="", compare=False)
    hint_id: str = field(default="", compare=False)
    params: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @classmethod
    def of(cls, code: str, message_id: str, hint_id: str = "", fatal: bool = True, **params: object) -> Problem:
        values = {key: str(value) for key, value in params.items()}
        return cls(code, message_id.format(**values), hint_id.format(**values), fatal, message_id, hint_id,
                   tuple(values.items()))

    def shown_message(self) -> str:
        """The message in the active language (the English text when it has no msgid)."""
        return gettext(self.message_id).format(**dict(self.params)) if self.message_id else self.message

    def shown_hint(self) -> str:
        return gettext(self.hint_id).format(**dict(self.params)) if self.hint_id else self.hint


def params_snapshot(model: RegisteredModel) -> dict[str, Any]:
    """Everything a run needs to reproduce its generation, as plain JSON (stored on the run).

    The API key itself is never stored: only the name of the environment variable holding it.
    """
    snapshot = {key: getattr(model, key) for key in _MODEL_KEYS + _PARAM_KEYS}
    snapshot["model_id"] = model.pk
    return snapshot


def spec_from_snapshot(snapshot: dict[str, Any], **overrides: Any) -> ModelSpec:
    """The backend spec for a parameter snapshot; ``overrides`` replace decoding parameters."""
    values = {key: snapshot.get(key) for key in _PARAM_KEYS} | overrides
    # The registry stores "no top-k" as -1 (vLLM's spelling); the backend contract uses 0.
    top_k = int(values["top_k"] if values["top_k"] is not None else 0)
    params = GenerationParams(
        temperature=float(values["temperature"] or 0.0),
        top_p=float(values["top_p"] if values["top_p"] is not None else 1.0),
        top_k=max(0, top_k),
        max_new_tokens=int(values["max_new_tokens"] or 256),
        repetition_penalty=float(values["repetition_penalty"] or 1.0),
        seed=None if values["seed"] is None else int(values["seed"]),
    )
    api_key_env = snapshot.get("api_key_env") or ""
    backend = str(snapshot.get("backend") or "")
    # The openai backend serves adapters by name (base_model); the path is only warned about (W002).
    adapter_path = None if backend == RegisteredModel.Backend.OPENAI else snapshot.get("adapter_path") or None
    return ModelSpec(
        name=str(snapshot.get("name") or ""),
        backend=backend,
        base_model=str(snapshot.get("base_model") or ""),
        adapter_path=adapter_path,
        chat_template=snapshot.get("chat_template") or None,
        system_prompt=snapshot.get("system_prompt") or None,
        params=params,
        context_length=snapshot.get("context_length") or None,
        server_url=snapshot.get("server_url") or None,
        api_key=os.environ.get(api_key_env) if api_key_env else None,
        options=dict(snapshot.get("engine_options") or {}),
    )


def spec_for(model: RegisteredModel, **overrides: Any) -> ModelSpec:
    """The backend spec of a registered model as it is now (runs use their snapshot instead)."""
    return spec_from_snapshot(params_snapshot(model), **overrides)


def looks_local(path: str) -> bool:
    """Whether ``path`` names a local folder rather than a hub id (``org/name``)."""
    return path.startswith(("/", "./", "../", "~")) or path.count("/") > 1 or Path(path).exists()


def folder_has_chat_template(folder: Path) -> bool:
    """Whether a saved Hugging Face tokenizer folder carries a chat template (read, not loaded)."""
    if (folder / "chat_template.jinja").exists() or (folder / "chat_template.json").exists():
        return True
    config = folder / "tokenizer_config.json"
    if not config.exists():
        return False
    try:
        template = json.loads(config.read_text(encoding="utf-8")).get("chat_template")
    except (ValueError, OSError, AttributeError):
        return False
    return bool(template)


def _local_problems(model: RegisteredModel) -> list[Problem]:
    problems: list[Problem] = []
    base = Path(model.base_model).expanduser()
    if looks_local(model.base_model):
        if not base.exists():
            problems.append(
                Problem.of(
                    "inference.E001",
                    gettext_noop("base_model path {path} does not exist"),
                    gettext_noop(
                        "Give the folder of a saved Hugging Face model (absolute path) or a hub id (org/name)."
                    ),
                    path=model.base_model,
                )
            )
        elif not (base / "config.json").exists():
            problems.append(
                Problem.of(
                    "inference.E001",
                    gettext_noop("base_model path {path} has no config.json (not a Hugging Face model)"),
                    gettext_noop("Point base_model at the folder that save_pretrained wrote."),
                    path=model.base_model,
                )
            )
        elif not model.chat_template.strip() and not folder_has_chat_template(base):
            problems.append(
                Problem.of(
                    "inference.E003",
                    gettext_noop("the tokenizer in {path} has no chat template and the model sets no "
                                 "chat_template override"),
                    gettext_noop("Paste the chat template the model was fine-tuned with into 'chat_template'."),
                    path=model.base_model,
                )
            )
    if model.adapter_path:
        adapter = Path(model.adapter_path).expanduser()
        if not adapter.exists():
            problems.append(
                Problem.of(
                    "inference.E002",
                    gettext_noop("adapter_path {path} does not exist"),
                    gettext_noop("Give a PEFT/LoRA adapter folder (with adapter_config.json), or leave it empty."),
                    path=model.adapter_path,
                )
            )
        elif not (adapter / "adapter_config.json").exists():
            problems.append(
                Problem.of(
                    "inference.E002",
                    gettext_noop("adapter_path {path} has no adapter_config.json (not a PEFT adapter)"),
                    gettext_noop("Point adapter_path at the folder that PeftModel.save_pretrained wrote."),
                    path=model.adapter_path,
                )
            )
    if not isinstance(model.engine_options, dict):
        problems.append(
            Problem("inference.E007", f"engine_options must be a JSON object, got {model.engine_options!r}")
        )
    elif not isinstance(model.engine_options.get("trust_remote_code", False), bool):
        problems.append(
            Problem(
                "inference.E007",
                "engine_options['trust_remote_code'] must be true or false, got "
                f"{model.engine_options['trust_remote_code']!r}",
            )
        )
    elif model.backend == RegisteredModel.Backend.VLLM:
        # What vLLM would refuse at engine start (LoRA rank, context length), found now.
        problems.extend(
            Problem("inference.E007", message)
            for message in engine_option_problems(
                model.base_model, model.adapter_path or None, model.context_length, model.engine_options
            )
        )
    if model.backend == RegisteredModel.Backend.VLLM and importlib.util.find_spec("vllm") is None:
        # Not fatal: the web process usually has no vLLM; GPU workers do (extra 'gpu').
        problems.append(
            Problem.of(
                "inference.W001",
                gettext_noop(
                    "vLLM is not installed in this process; runs of this model need a worker on the 'gpu' queue"
                ),
                gettext_noop(
                    "Start a GPU worker: {install} and {command} (vLLM needs the solo or threads pool; "
                    "{preflight} checks the machine)."
                ),
                fatal=False,
                install="pip install '.[gpu]'",
                command=worker_command("gpu"),
                preflight="python manage.py gpu_preflight",
            )
        )
    return problems


def _openai_problems(model: RegisteredModel) -> list[Problem]:
    problems: list[Problem] = []
    if not model.server_url.strip():
        problems.append(
            Problem.of(
                "inference.E004",
                gettext_noop("server_url is not set (the openai backend needs an OpenAI-compatible server)"),
                gettext_noop("e.g. {url} for `vllm serve`."),
                url="http://gpu-host:8000/v1",
            )
        )
    elif not model.server_url.startswith(("http://", "https://")):
        problems.append(
            Problem.of("inference.E004", gettext_noop("server_url {url} must start with http:// or https://"),
                       url=repr(model.server_url))
        )
    if model.adapter_path:
        problems.append(
            Problem.of(
                "inference.W002",
                gettext_noop("adapter_path is not used by the openai backend"),
                gettext_noop("Serve the adapter ({command}) and set base_model to NAME."),
                fatal=False,
                command="vllm serve BASE --enable-lora --lora-modules NAME=PATH",
            )
        )
    return problems


# The most new tokens a form or command proposes by itself: a quarter of the context, at most this.
MAX_NEW_TOKENS_CAP = 2048


def context_limit(model: RegisteredModel) -> int | None:
    """Prompt + completion token limit of ``model``: its ``context_length``, else the model's own (the
    ``config.json`` of a local folder or a cached hub model); None when unknown (an HTTP server)."""
    if model.context_length:
        return int(model.context_length)
    if model.backend == RegisteredModel.Backend.OPENAI or not model.base_model.strip():
        return None
    try:
        return model_context_limit(model.base_model)
    except (OSError, ValueError):  # an unreadable config: the folder checks report it
        return None


def fitting_max_new_tokens(model: RegisteredModel, cap: int = MAX_NEW_TOKENS_CAP) -> int:
    """A default ``max_new_tokens`` that fits ``model``: a quarter of its context, at most ``cap``
    (``cap`` when the context is unknown), so three quarters stay for the prompt."""
    limit = context_limit(model)
    return cap if limit is None else max(1, min(cap, limit // 4))


def max_new_tokens_problem(model: RegisteredModel, max_new_tokens: int) -> str | None:
    """Why ``max_new_tokens`` cannot work with ``model`` (below 1, or no room left for a prompt in its
    context), None when it can."""
    if max_new_tokens < 1:
        return f"max_new_tokens must be at least 1, got {max_new_tokens}"
    limit = context_limit(model)
    if limit is not None and max_new_tokens >= limit:
        return (
            f"max_new_tokens {max_new_tokens} leaves no room for the prompt: model '{model.name}' has a "
            f"context of {limit} tokens; use fewer (e.g. {fitting_max_new_tokens(model)})"
        )
    return None


def _parameter_problems(model: RegisteredModel) -> list[Problem]:
    """Decoding parameters out of range, each naming its field (the database refuses them too)."""
    checks = [
        ("temperature", model.temperature is not None and model.temperature >= 0, "must be 0 or more"),
        ("top_p", model.top_p is not None and 0 < model.top_p <= 1, "must be in (0, 1]"),
        (
            "max_new_tokens",
            model.max_new_tokens is not None and model.max_new_tokens >= 1,
            "must be 1 or more",
        ),
        (
            "repetition_penalty",
            model.repetition_penalty is not None and model.repetition_penalty > 0,
            "must be more than 0",
        ),
        (
            "context_length",
            model.context_length is None or model.context_length > (model.max_new_tokens or 0),
            "must be more than max_new_tokens (the prompt needs room)",
        ),
    ]
    problems = [
        Problem("inference.E006", f"{field} {rule}, got {getattr(model, field)!r}")
        for field, ok, rule in checks
        if not ok
    ]
    if not problems and model.context_length is None and model.max_new_tokens:
        # No context_length given: the model's own limit (config.json) must leave the prompt room too.
        own = context_limit(model)
        if own is not None and model.max_new_tokens >= own:
            problems.append(
                Problem(
                    "inference.E006",
                    f"max_new_tokens must be less than the model's own context of {own} tokens (the prompt "
                    f"needs room), got {model.max_new_tokens}",
                    f"e.g. {fitting_max_new_tokens(model)}",
                )
            )
    return problems


def problems_for(model: RegisteredModel, deep: bool = False) -> list[Problem]:
    """Configuration problems of a (possibly unsaved) registered model, most basic first.

    Shallow (``deep=False``): backend known, decoding parameters in range, base/adapter folders
    exist, the tokenizer folder has a chat template or the model overrides it, the openai backend
    has a server URL, the API key variable is set. Deep: when nothing shallow is fatal, the backend's own :meth:`check` as well
    (tokenizer loaded and the template rendered on a sample; the server's model list fetched).
    """
    if model.backend not in RegisteredModel.Backend.values:
        return [
            Problem(
                "inference.E000",
                f"backend {model.backend!r} is not one of {', '.join(RegisteredModel.Backend.values)}",
            )
        ]
    if not model.base_model.strip():
        return [
            Problem.of("inference.E001", gettext_noop("base_model is empty"),
                       gettext_noop("A local folder, a hub id or a served model id."))
        ]
    problems = _parameter_problems(model)
    if model.backend == RegisteredModel.Backend.OPENAI:
        problems += _openai_problems(model)
    else:
        problems += _local_problems(model)
    if model.api_key_env and model.api_key_env not in os.environ:
        problems.append(
            Problem.of(
                "inference.W003",
                gettext_noop("environment variable {name} (api_key_env) is not set in this process"),
                gettext_noop("Set it where the workers run."),
                fatal=False,
                name=model.api_key_env,
            )
        )
    if deep and not any(p.fatal for p in problems):
        try:
            messages = get_backend(spec_for(model)).check()
        except Exception as error:  # noqa: BLE001 - any failure to check is a problem to show
            messages = [f"{type(error).__name__}: {error}"]
        problems.extend(Problem("inference.E005", message) for message in messages)
    return problems


def fatal_messages(problems: list[Problem]) -> list[str]:
    return [p.message for p in problems if p.fatal]


def queue_for(backend: str) -> str:
    """The Celery queue a model's chunks go to: vLLM needs a GPU worker, the rest run on ``cpu``."""
    return "gpu" if backend == RegisteredModel.Backend.VLLM else "cpu"

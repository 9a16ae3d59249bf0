"""GPU worker preflight: everything a GPU worker needs, checked in order, each failure one sentence.

``python manage.py gpu_preflight`` runs :func:`run_checks` on the worker's machine (the compose
``gpu-worker`` runs it at start and records the result for the models page). Checks: CUDA visible,
driver and CUDA versions, a C compiler (Triton compiles a small C driver on first use), vLLM
importable at the pinned version, free GPU memory, the engine options of every registered vLLM
model, which weights are on this machine, and a one-prompt generation with the tiny demo model
through vLLM. On a machine without a GPU every check still reports; those that need one say
"no GPU". Pure of Django: the command passes the registered models and the demo model folder in.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from inference.backends.base import ModelSpec, release_engines
from inference.backends.vllm_backend import (
    VLLM_MISSING,
    VLLM_VERSION,
    VLLMBackend,
    engine_option_problems,
    model_config_file,
)

OK, FAILED, SKIPPED, NOTE = "ok", "failed", "skipped", "note"
NO_GPU = "no GPU"
DEFAULT_UTILIZATION = 0.85  # VLLMBackend's default gpu_memory_utilization
PROBE = [{"role": "user", "content": "最近工作压力很大，晚上总是睡不着。"}]


@dataclass(frozen=True)
class Check:
    """One line of the preflight: ``status`` is ok, failed, skipped (needs what failed before) or
    note (worth knowing, not a failure)."""

    name: str
    status: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        return None
    return torch


def check_cuda(torch: Any) -> Check:
    if torch is None:
        return Check("CUDA", FAILED, "torch is not installed: pip install '.[gpu]'")
    if not torch.cuda.is_available():
        built = torch.version.cuda or "none (a CPU-only build of torch)"
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        where = f"CUDA_VISIBLE_DEVICES={visible!r}" if visible is not None else "CUDA_VISIBLE_DEVICES unset"
        return Check(
            "CUDA",
            FAILED,
            f"{NO_GPU}: torch {torch.__version__} sees no CUDA device ({where}; torch's CUDA: {built}). "
            "Run the worker on a machine with an NVIDIA GPU, with the GPU passed to the container.",
        )
    names = [
        f"cuda:{i} {torch.cuda.get_device_name(i)} "
        f"(compute capability {'.'.join(map(str, torch.cuda.get_device_capability(i)))})"
        for i in range(torch.cuda.device_count())
    ]
    return Check("CUDA", OK, f"{len(names)} device(s): " + "; ".join(names))


def driver_version() -> str | None:
    """The NVIDIA driver version from ``nvidia-smi`` (None when it is not on PATH or fails)."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        output = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return output.strip().splitlines()[0] if output.strip() else None


def check_versions(torch: Any, has_gpu: bool, driver: Callable[[], str | None] = driver_version) -> Check:
    if not has_gpu:
        return Check("Driver and CUDA", SKIPPED, f"{NO_GPU}: no driver or CUDA runtime to report")
    version = driver()
    driver_text = f"driver {version}" if version else "driver version unknown (nvidia-smi is not on PATH)"
    return Check("Driver and CUDA", OK, f"{driver_text}; CUDA runtime {torch.version.cuda} (torch {torch.__version__})")


def check_compiler(which: Callable[[str], str | None] = shutil.which) -> Check:
    candidates = [os.environ["CC"]] if os.environ.get("CC") else ["cc", "gcc", "clang"]
    for name in candidates:
        path = which(name)
        if path:
            return Check("C compiler", OK, f"{name} at {path}")
    return Check(
        "C compiler",
        FAILED,
        f"no C compiler found ({', '.join(candidates)}): Triton compiles a small C driver on first use, so "
        "vLLM's LoRA kernels and torch.compile fail with 'Failed to find C compiler'. Install one "
        "(apt-get install build-essential; the GPU image of docker-compose.yml has it).",
    )


def check_vllm() -> tuple[Check, bool]:
    """The vLLM check, and whether vLLM can be used."""
    try:
        vllm = importlib.import_module("vllm")
    except ImportError as error:
        return Check("vLLM", FAILED, f"{VLLM_MISSING} ({error})"), False
    except Exception as error:  # noqa: BLE001 - e.g. a CUDA library that does not load
        return Check("vLLM", FAILED, f"vLLM is installed but fails to import: {type(error).__name__}: {error}"), False
    version = getattr(vllm, "__version__", "unknown")
    if version != VLLM_VERSION:
        return (
            Check(
                "vLLM",
                FAILED,
                f"vLLM {version} is installed; this platform is written and tested against {VLLM_VERSION}: "
                "pip install '.[gpu]' (it pins that release)",
            ),
            False,
        )
    return Check("vLLM", OK, f"vLLM {version} imports"), True


def check_memory(torch: Any, has_gpu: bool, utilization: float = DEFAULT_UTILIZATION) -> Check:
    if not has_gpu:
        return Check("GPU memory", SKIPPED, f"{NO_GPU}: no GPU memory to measure")
    lines, short = [], []
    gib = 1024**3
    for i in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(i)
        lines.append(f"cuda:{i} {free / gib:.1f} of {total / gib:.1f} GiB free")
        if free < utilization * total:
            short.append(
                f"cuda:{i} has {free / gib:.1f} GiB free, less than the {utilization * total / gib:.1f} GiB "
                f"a vLLM engine claims (gpu_memory_utilization {utilization}): another process holds the "
                "GPU (nvidia-smi shows which)"
            )
    if short:
        return Check("GPU memory", FAILED, "; ".join(short))
    return Check("GPU memory", OK, "; ".join(lines))


def check_engine_options(specs: Sequence[ModelSpec]) -> Check:
    vllm_specs = [spec for spec in specs if spec.backend == "vllm"]
    if not vllm_specs:
        return Check("Engine options", NOTE, "no vLLM model is registered")
    problems = [
        f"{spec.name}: {problem}"
        for spec in vllm_specs
        for problem in engine_option_problems(spec.base_model, spec.adapter_path, spec.context_length, spec.options)
    ]
    if problems:
        return Check("Engine options", FAILED, "; ".join(problems))
    return Check("Engine options", OK, f"the options of {len(vllm_specs)} vLLM model(s) are valid")


def _looks_local(path: str) -> bool:
    return path.startswith(("/", "./", "../", "~")) or path.count("/") != 1


def check_weights(specs: Sequence[ModelSpec]) -> list[Check]:
    """Per local-weights model: its base weights on this machine (a folder, or the Hugging Face cache),
    and its adapter folder."""
    checks = []
    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
    for spec in specs:
        if spec.backend not in ("vllm", "transformers"):
            continue
        name = f"Weights of {spec.name}"
        if _looks_local(spec.base_model):
            if not Path(spec.base_model).expanduser().exists():
                checks.append(Check(name, FAILED, f"the folder {spec.base_model} is not on this worker"))
                continue
            where = f"local folder {spec.base_model}"
        elif model_config_file(spec.base_model) is not None:
            where = f"{spec.base_model} is in the Hugging Face cache"
        elif offline:
            checks.append(
                Check(name, FAILED, f"{spec.base_model} is not in the Hugging Face cache and HF_HUB_OFFLINE is set")
            )
            continue
        else:
            checks.append(
                Check(
                    name,
                    NOTE,
                    f"{spec.base_model} is not in the Hugging Face cache: the engine downloads it on first use "
                    "(this worker needs network access to the hub, or pre-download it with `hf download`)",
                )
            )
            continue
        if spec.adapter_path and not (Path(spec.adapter_path).expanduser() / "adapter_config.json").exists():
            checks.append(Check(name, FAILED, f"{where}, but the adapter {spec.adapter_path} is not on this worker"))
            continue
        adapter = f", adapter {spec.adapter_path}" if spec.adapter_path else ""
        checks.append(Check(name, OK, where + adapter))
    return checks


def check_generation(
    ready: bool, no_gpu: bool, demo_model: Callable[[], Path], *, enforce_eager: bool = False
) -> Check:
    """One prompt through a vLLM engine on the demo model, then the engine is released again."""
    if no_gpu:
        return Check("Generation", SKIPPED, f"{NO_GPU}: the one-prompt generation through vLLM needs one")
    if not ready:
        return Check("Generation", SKIPPED, "vLLM is not usable here (see above)")
    started = time.perf_counter()
    try:
        folder = demo_model()
        spec = ModelSpec(
            name="preflight",
            backend="vllm",
            base_model=str(folder),
            options={"gpu_memory_utilization": 0.3, "enforce_eager": enforce_eager, "enable_lora": True},
        )
        [result] = VLLMBackend(spec).generate([PROBE])
    except Exception as error:  # noqa: BLE001 - any failure is the answer
        return Check("Generation", FAILED, f"the demo model did not generate through vLLM: {type(error).__name__}: {error}")
    finally:
        release_engines()
    seconds = time.perf_counter() - started
    if not result.ok:
        return Check("Generation", FAILED, f"the demo model's reply failed: {result.error}")
    return Check(
        "Generation",
        OK,
        f"the demo model replied through vLLM in {seconds:.1f} s (engine start included): "
        f"{result.completion_tokens} tokens, finish_reason {result.finish_reason}",
    )


def run_checks(
    specs: Sequence[ModelSpec],
    demo_model: Callable[[], Path],
    *,
    enforce_eager: bool = False,
    which: Callable[[str], str | None] = shutil.which,
    driver: Callable[[], str | None] = driver_version,
) -> list[Check]:
    """Every check, in order; a check that needs an earlier one to pass reports "skipped" with why."""
    torch = _torch()
    cuda = check_cuda(torch)
    has_gpu = cuda.status == OK
    vllm_check, vllm_ready = check_vllm()
    return [
        cuda,
        check_versions(torch, has_gpu, driver),
        check_compiler(which),
        vllm_check,
        check_memory(torch, has_gpu),
        check_engine_options(specs),
        *check_weights(specs),
        check_generation(vllm_ready, not has_gpu, demo_model, enforce_eager=enforce_eager),
    ]


def passed(checks: Sequence[Check]) -> bool:
    return not any(check.status == FAILED for check in checks)

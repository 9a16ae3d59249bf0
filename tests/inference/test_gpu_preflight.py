"""``gpu_preflight`` on CPU: every check reports, the CUDA ones say "no GPU"; with a simulated GPU
and the vLLM stand-in every check passes, and each failure is one clear sentence."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from inference import actions, preflight
from inference.backends import ModelSpec
from inference.models import RegisteredModel, WorkerPreflight

from .vllm_support import build_tokenizer_folder, write_adapter_config

GIB = 1024**3


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    pytest.importorskip("transformers", reason="the tokenizer needs transformers (pip install '.[cpu]')")
    return build_tokenizer_folder(tmp_path_factory.mktemp("preflight") / "tiny")


@pytest.fixture
def no_gpu(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return torch


@pytest.fixture
def one_gpu(monkeypatch):
    """torch as it looks on a worker with one 80 GiB GPU, 70 GiB of it free."""
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: "NVIDIA H200")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i: (9, 0))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i: (70 * GIB, 80 * GIB))
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    return torch


@pytest.mark.django_db
def test_preflight_on_a_cpu_machine_reports_every_check_and_records_it(
    no_gpu, model_dir, tmp_path, coordinator, study, client_for, monkeypatch
):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    adapter = write_adapter_config(tmp_path / "adapter", rank=8)
    actions.register_model(name="tuned", backend="vllm", base_model=str(model_dir), adapter_path=str(adapter))
    # Registered elsewhere (another machine's folders, a hub id never downloaded here): bulk rows.
    RegisteredModel.objects.bulk_create(
        [
            RegisteredModel(name="elsewhere", backend="vllm", base_model="/srv/models/absent"),
            RegisteredModel(name="glm4", backend="vllm", base_model="kulaxiku/MI-LLM-GLM4_after_sft"),
        ]
    )
    out = StringIO()
    with pytest.raises(CommandError, match=r"not ready as a GPU worker: CUDA, vLLM, Weights of elsewhere failed"):
        call_command("gpu_preflight", "--record", "--hostname", "gpu-box-1", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"[FAIL] CUDA: no GPU: torch {no_gpu.__version__} sees no CUDA device")
    assert lines[1] == "[skip] Driver and CUDA: no GPU: no driver or CUDA runtime to report"
    assert lines[2].startswith(("[ok  ] C compiler: ", "[FAIL] C compiler: no C compiler found"))
    assert lines[3].startswith("[FAIL] vLLM: vLLM is not installed: pip install '.[gpu]'")
    assert lines[4] == "[skip] GPU memory: no GPU: no GPU memory to measure"
    assert lines[5] == "[ok  ] Engine options: the options of 3 vLLM model(s) are valid"
    assert lines[6:9] == [
        "[FAIL] Weights of elsewhere: the folder /srv/models/absent is not on this worker",
        "[note] Weights of glm4: kulaxiku/MI-LLM-GLM4_after_sft is not in the Hugging Face cache: the engine "
        "downloads it on first use (this worker needs network access to the hub, or pre-download it with "
        "`hf download`)",
        f"[ok  ] Weights of tuned: local folder {model_dir}, adapter {adapter}",
    ]
    assert lines[9] == "[skip] Generation: no GPU: the one-prompt generation through vLLM needs one"

    row = WorkerPreflight.objects.get()
    assert (row.hostname, row.ok, len(row.checks)) == ("gpu-box-1", False, 10)
    assert row.checks[0]["status"] == "failed" and row.checks[0]["message"].startswith("no GPU")
    page = client_for(coordinator).get("/models/").content.decode()
    assert "gpu-box-1" in page and "not ready" in page
    assert "CUDA (failed): no GPU: torch" in page
    assert "celery -A mi_platform worker -Q gpu -c 1 --pool solo" in page


def test_preflight_with_a_gpu_and_vllm_passes_and_generates_once(one_gpu, fake_vllm, model_dir):
    specs = [ModelSpec(name="base", backend="vllm", base_model=str(model_dir))]
    checks = preflight.run_checks(
        specs, lambda: model_dir, which=lambda name: f"/usr/bin/{name}", driver=lambda: "580.82.07"
    )
    assert [(c.name, c.status) for c in checks] == [
        ("CUDA", "ok"),
        ("Driver and CUDA", "ok"),
        ("C compiler", "ok"),
        ("vLLM", "ok"),
        ("GPU memory", "ok"),
        ("Engine options", "ok"),
        ("Weights of base", "ok"),
        ("Generation", "ok"),
    ]
    assert checks[0].message == "1 device(s): cuda:0 NVIDIA H200 (compute capability 9.0)"
    assert checks[1].message == f"driver 580.82.07; CUDA runtime 13.0 (torch {one_gpu.__version__})"
    assert checks[3].message == "vLLM 0.32.0 imports"
    assert checks[4].message == "cuda:0 70.0 of 80.0 GiB free"
    assert checks[7].message.startswith("the demo model replied through vLLM in ")
    assert preflight.passed(checks)
    # One engine, started with the preflight's options and shut down again afterwards.
    [llm] = fake_vllm.CONTROL.engines
    assert llm.gpu_memory_utilization == 0.3 and llm.llm_engine.engine_core.is_shut_down


def test_each_preflight_failure_is_one_sentence(one_gpu, fake_vllm, model_dir, monkeypatch):
    monkeypatch.setattr(one_gpu.cuda, "mem_get_info", lambda i: (10 * GIB, 80 * GIB))
    assert preflight.check_memory(one_gpu, True).message == (
        "cuda:0 has 10.0 GiB free, less than the 68.0 GiB a vLLM engine claims (gpu_memory_utilization "
        "0.85): another process holds the GPU (nvidia-smi shows which)"
    )
    monkeypatch.delenv("CC", raising=False)
    missing = preflight.check_compiler(lambda name: None)
    assert missing.status == "failed" and missing.message.startswith(
        "no C compiler found (cc, gcc, clang): Triton compiles a small C driver on first use"
    )
    monkeypatch.setenv("CC", "clang-19")
    assert preflight.check_compiler(lambda name: f"/opt/{name}").message == "clang-19 at /opt/clang-19"
    monkeypatch.setattr(fake_vllm, "__version__", "0.31.0")
    check, ready = preflight.check_vllm()
    assert not ready and check.message.startswith("vLLM 0.31.0 is installed; this platform is written and tested")
    assert preflight.check_versions(one_gpu, True, lambda: None).message.startswith(
        "driver version unknown (nvidia-smi is not on PATH); CUDA runtime 13.0"
    )
    wide = ModelSpec(name="wide", backend="vllm", base_model=str(model_dir), options={"max_lora_rank": 48})
    assert preflight.check_engine_options([wide]).message.startswith("wide: options['max_lora_rank'] is 48")
    assert preflight.check_generation(False, False, lambda: model_dir).message == (
        "vLLM is not usable here (see above)"
    )

    def broken_demo():
        raise OSError("disk full")

    assert preflight.check_generation(True, False, broken_demo).message == (
        "the demo model did not generate through vLLM: OSError: disk full"
    )
    fake_vllm.CONTROL.abort_when = lambda ids: True
    assert preflight.check_generation(True, False, lambda: model_dir).message == (
        "the demo model's reply failed: vLLM ended the request with finish_reason 'abort'"
    )

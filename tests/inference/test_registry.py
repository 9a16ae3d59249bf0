"""The model registry: problems found at registration, at startup (system checks) and by "test this model"."""

from __future__ import annotations

import importlib.util
import json
import shutil
import socket

import pytest
from django.core.management import CommandError, call_command

from inference import actions, registry
from inference.checks import check_registered_models
from inference.models import RegisteredModel
from inference.registry import Problem


def local(path, **fields) -> RegisteredModel:
    return RegisteredModel(**({"name": "m", "backend": "transformers", "base_model": str(path)} | fields))


@pytest.fixture
def no_template_dir(demo_model_dir, tmp_path):
    """A copy of the demo model whose tokenizer has no chat template."""
    folder = tmp_path / "no-template"
    shutil.copytree(demo_model_dir, folder)
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    (folder / "chat_template.json").unlink(missing_ok=True)
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config.pop("chat_template", None)
    config_path.write_text(json.dumps(config), encoding="utf-8")
    return folder


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens there any more


# --- problems_for ---------------------------------------------------------------------------------


def test_a_good_local_model_has_no_problems_shallow_or_deep(demo_model_dir):
    model = local(demo_model_dir)
    assert registry.problems_for(model) == []
    assert registry.problems_for(model, deep=True) == []


def test_missing_base_path_is_fatal_and_named(tmp_path):
    missing = tmp_path / "nowhere"
    assert registry.problems_for(local(missing)) == [
        Problem(
            "inference.E001",
            f"base_model path {missing} does not exist",
            "Give the folder of a saved Hugging Face model (absolute path) or a hub id (org/name).",
        )
    ]
    assert [p.message for p in registry.problems_for(local(tmp_path))] == [
        f"base_model path {tmp_path} has no config.json (not a Hugging Face model)"
    ]


def test_trust_remote_code_must_be_a_boolean(demo_model_dir):
    assert registry.problems_for(local(demo_model_dir, engine_options={"trust_remote_code": True})) == []
    assert [p.message for p in registry.problems_for(local(demo_model_dir, engine_options={"trust_remote_code": "yes"}))] == [
        "engine_options['trust_remote_code'] must be true or false, got 'yes'"
    ]


def test_missing_chat_template_is_fatal_unless_overridden(no_template_dir, demo_model_dir):
    (problem,) = registry.problems_for(local(no_template_dir))
    assert (problem.code, problem.fatal) == ("inference.E003", True)
    assert problem.message == (
        f"the tokenizer in {no_template_dir} has no chat template and the model sets no chat_template override"
    )
    from inference.demo_model import CHAT_TEMPLATE

    overridden = local(no_template_dir, chat_template=CHAT_TEMPLATE)
    assert registry.problems_for(overridden) == []
    assert registry.problems_for(overridden, deep=True) == []


def test_adapter_path_must_be_a_peft_adapter(demo_model_dir, tmp_path):
    missing = tmp_path / "lora"
    assert [p.message for p in registry.problems_for(local(demo_model_dir, adapter_path=str(missing)))] == [
        f"adapter_path {missing} does not exist"
    ]
    missing.mkdir()
    (problem,) = registry.problems_for(local(demo_model_dir, adapter_path=str(missing)))
    assert (problem.code, problem.message) == (
        "inference.E002",
        f"adapter_path {missing} has no adapter_config.json (not a PEFT adapter)",
    )


def test_hub_ids_are_not_checked_on_disk_and_vllm_missing_only_warns(demo_model_dir):
    hub = RegisteredModel(name="h", backend="transformers", base_model="Qwen/Qwen2.5-0.5B-Instruct")
    assert registry.looks_local("Qwen/Qwen2.5-0.5B-Instruct") is False
    assert registry.problems_for(hub) == []
    problems = registry.problems_for(local(demo_model_dir, backend="vllm"))
    if importlib.util.find_spec("vllm") is None:
        assert [(p.code, p.fatal) for p in problems] == [("inference.W001", False)]
    else:
        assert problems == []


def test_decoding_parameters_out_of_range_name_their_field(demo_model_dir):
    model = local(demo_model_dir, top_p=0.0, temperature=-1.0, max_new_tokens=64, context_length=32)
    assert [p.message for p in registry.problems_for(model)] == [
        "temperature must be 0 or more, got -1.0",
        "top_p must be in (0, 1], got 0.0",
        "context_length must be more than max_new_tokens (the prompt needs room), got 32",
    ]


def test_openai_backend_needs_a_reachable_server(monkeypatch):
    served = RegisteredModel(name="o", backend="openai", base_model="baseline")
    assert [(p.code, p.message) for p in registry.problems_for(served)] == [
        ("inference.E004", "server_url is not set (the openai backend needs an OpenAI-compatible server)")
    ]
    served.server_url = "gpu-host:8000"
    assert [p.message for p in registry.problems_for(served)] == [
        "server_url 'gpu-host:8000' must start with http:// or https://"
    ]
    served.server_url = closed_port_url()
    served.adapter_path = "/some/lora"
    served.api_key_env = "MI_TEST_KEY_THAT_IS_NOT_SET"
    monkeypatch.delenv("MI_TEST_KEY_THAT_IS_NOT_SET", raising=False)
    shallow = registry.problems_for(served)
    assert [(p.code, p.fatal) for p in shallow] == [("inference.W002", False), ("inference.W003", False)]
    deep = registry.problems_for(served, deep=True)
    fatal = [p for p in deep if p.fatal]
    assert len(fatal) == 1 and fatal[0].code == "inference.E005"
    assert fatal[0].message.startswith(f"server {served.server_url} is unreachable: ConnectError")


def test_spec_from_snapshot_maps_the_registry_to_the_backend_contract(monkeypatch, demo_model_dir):
    monkeypatch.setenv("MI_TEST_KEY", "sk-123")
    model = local(demo_model_dir, top_k=-1, seed=None, temperature=0.7, api_key_env="MI_TEST_KEY")
    spec = registry.spec_for(model, max_new_tokens=8)
    assert (spec.params.top_k, spec.params.seed, spec.params.temperature) == (0, None, 0.7)
    assert spec.params.max_new_tokens == 8
    assert spec.api_key == "sk-123"
    assert spec.adapter_path is None and spec.chat_template is None and spec.system_prompt is None
    assert "sk-123" not in json.dumps(registry.params_snapshot(model))  # the key is never stored


# --- registration -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_registration_refuses_bad_models_and_creates_nothing(tmp_path, no_template_dir, demo_model_dir):
    missing = tmp_path / "nowhere"
    with pytest.raises(actions.ActionError) as error:
        actions.register_model(name="bad", backend="transformers", base_model=str(missing))
    assert str(error.value) == f"Model 'bad' cannot be registered: base_model path {missing} does not exist."
    with pytest.raises(actions.ActionError, match="has no chat template and the model sets no chat_template"):
        actions.register_model(name="bad", backend="transformers", base_model=str(no_template_dir))
    with pytest.raises(actions.ActionError, match=r"top_p must be in \(0, 1\], got 1.5"):
        actions.register_model(name="bad", backend="transformers", base_model=str(demo_model_dir), top_p=1.5)
    with pytest.raises(actions.ActionError, match="backend 'tgi' is not one of vllm, transformers, openai"):
        actions.register_model(name="bad", backend="tgi", base_model=str(demo_model_dir))
    with pytest.raises(actions.ActionError, match="Unknown model field"):
        actions.register_model(name="bad", backend="transformers", base_model=str(demo_model_dir), colour=1)
    assert RegisteredModel.objects.count() == 0

    good = actions.register_model(name="good", backend="transformers", base_model=f" {demo_model_dir} ")
    assert good.base_model == str(demo_model_dir)
    with pytest.raises(actions.ActionError, match="A model named 'good' is already registered"):
        actions.register_model(name="good", backend="transformers", base_model=str(demo_model_dir))
    assert RegisteredModel.objects.count() == 1


@pytest.mark.django_db
def test_system_check_reports_a_model_whose_folder_went_missing(demo_model_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(demo_model_dir, folder)
    actions.register_model(name="movable", backend="transformers", base_model=str(folder))
    assert check_registered_models(None, databases=["default"]) == []
    shutil.rmtree(folder)
    (error,) = check_registered_models(None, databases=["default"])
    assert error.id == "inference.E001"
    assert error.msg == f"Model 'movable': base_model path {folder} does not exist"
    assert check_registered_models(None) == []  # without database access: nothing to check


@pytest.mark.django_db
def test_test_model_generates_once_and_reports_a_broken_template(demo_model):
    assert actions.test_model(demo_model) == []
    call_command("test_model", "demo-tiny")
    demo_model.chat_template = "{% for message in messages %}{{ message['content'] }"  # unclosed
    demo_model.save()
    (problem,) = actions.test_model(demo_model)
    assert problem.startswith("the chat template of demo-tiny fails on a sample dialogue:")
    with pytest.raises(CommandError, match="Model 'demo-tiny' is not ready"):
        call_command("test_model", "demo-tiny")
    with pytest.raises(CommandError, match="No registered model named 'nope'"):
        call_command("test_model", "nope")


# --- pages ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_registry_pages_are_for_coordinators_and_staff(
    study, demo_model, admin_user, coordinator, coder, outsider, client
):
    urls = ["/models/", "/models/new/", f"/models/{demo_model.pk}/"]
    for user, expected in ((admin_user, 200), (coordinator, 200), (coder, 403), (outsider, 403)):
        client.force_login(user)
        for url in urls:
            assert client.get(url).status_code == expected, (user, url)
    client.force_login(coordinator)
    page = client.get("/models/").content.decode()
    assert f'<a href="/models/{demo_model.pk}/">demo-tiny</a>' in page
    detail = client.get(f"/models/{demo_model.pk}/").content.decode()
    assert "No problems found without loading the model." in detail
    assert f'action="/models/{demo_model.pk}/test/"' in detail


@pytest.mark.django_db
def test_register_form_shows_problems_on_their_fields_and_saves_good_models(
    study, coordinator, client_for, tmp_path, demo_model_dir
):
    client = client_for(coordinator)
    form = {
        "name": "ft-1", "backend": "transformers", "base_model": str(tmp_path / "nowhere"),
        "temperature": "0", "top_p": "1", "top_k": "-1", "max_new_tokens": "64",
        "repetition_penalty": "1", "seed": "0",
    }  # fmt: skip
    response = client.post("/models/new/", form)
    assert response.status_code == 200
    assert response.context["form"].errors["base_model"] == [
        f"base_model path {tmp_path / 'nowhere'} does not exist"
    ]
    assert RegisteredModel.objects.count() == 0

    response = client.post("/models/new/", form | {"base_model": str(demo_model_dir), "top_p": "0"})
    assert "top_p must be in (0, 1], got 0.0" in response.context["form"].errors["top_p"]
    assert RegisteredModel.objects.count() == 0

    response = client.post("/models/new/", form | {"base_model": str(demo_model_dir)})
    model = RegisteredModel.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/models/{model.pk}/"
    assert (model.name, model.created_by, model.base_model) == ("ft-1", coordinator, str(demo_model_dir))

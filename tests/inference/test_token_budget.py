"""max_new_tokens that fit the model: defaults read from its context, impossible budgets refused on the
form, in the action (API, command) and said plainly — never as a negative budget — at generation time."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from annotation.errors import ActionError
from inference import registry
from inference.backends import GenerationParams, ModelSpec
from inference.backends.base import GenerationBackend, GenerationResult
from inference.models import RegisteredModel
from inference.recipe import actions
from inference.recipe.forms import TransformationForm
from inference.recipe.models import TransformationJob

from .recipe_support import FakeOpenAIServer, import_demo_dialogues

pytestmark = pytest.mark.django_db


@pytest.fixture
def server():
    with FakeOpenAIServer() as fake:
        yield fake


@pytest.fixture
def small_model(server):
    """An HTTP model whose context (1024) is given on registration, as for a small served model."""
    return RegisteredModel.objects.create(
        name="small", backend="openai", base_model="small", server_url=server.url, context_length=1024
    )


def test_context_limit_and_the_fitting_default(tmp_path, small_model):
    assert registry.context_limit(small_model) == 1024
    assert registry.fitting_max_new_tokens(small_model) == 256  # a quarter of the context
    big = RegisteredModel(name="big", backend="openai", base_model="big", context_length=32768)
    assert registry.fitting_max_new_tokens(big) == registry.MAX_NEW_TOKENS_CAP == 2048
    unknown = RegisteredModel(name="http", backend="openai", base_model="x")
    assert registry.context_limit(unknown) is None and registry.fitting_max_new_tokens(unknown) == 2048
    # A local folder without context_length: the model's own limit from its config.json.
    (tmp_path / "config.json").write_text(json.dumps({"max_position_embeddings": 512}), encoding="utf-8")
    local = RegisteredModel(name="local", backend="transformers", base_model=str(tmp_path))
    assert registry.context_limit(local) == 512
    assert registry.fitting_max_new_tokens(local) == 128
    assert registry.max_new_tokens_problem(local, 511) is None
    assert "leaves no room for the prompt" in registry.max_new_tokens_problem(local, 512)
    assert registry.max_new_tokens_problem(local, 0) == "max_new_tokens must be at least 1, got 0"


def test_a_registered_model_may_not_give_its_whole_own_context_to_new_tokens(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"max_position_embeddings": 1024}), encoding="utf-8")
    model = RegisteredModel(
        name="m", backend="transformers", base_model=str(tmp_path), chat_template="{{ x }}", max_new_tokens=2048
    )
    messages = [p.message for p in registry.problems_for(model) if p.code == "inference.E006"]
    assert messages == [
        "max_new_tokens must be less than the model's own context of 1024 tokens (the prompt needs room), got 2048"
    ]
    model.max_new_tokens = 256
    assert not [p for p in registry.problems_for(model) if p.code == "inference.E006"]


def form_data(model, **extra):
    return {"model": model.pk, "split": "train", "output_split": "train", "chunk_size": 4, **extra}


def test_the_rewrite_form_defaults_to_a_quarter_of_the_context_and_refuses_what_cannot_fit(small_model):
    form = TransformationForm(form_data(small_model))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["max_new_tokens"] == 256

    form = TransformationForm(form_data(small_model, max_new_tokens=2048))
    assert not form.is_valid()
    assert form.errors["max_new_tokens"] == [
        "2048 new tokens leave no room for the prompt: the model small has a context of 1024 tokens. "
        "Use fewer, e.g. 256, or leave the field empty."
    ]

    form = TransformationForm(form_data(small_model, max_new_tokens=600))
    assert form.is_valid() and form.cleaned_data["max_new_tokens"] == 600


def test_the_form_page_shows_the_refusal(study, coordinator, client_for, small_model):
    import_demo_dialogues(study)
    response = client_for(coordinator).post(
        "/studies/smoking/recipe/transform/new/", form_data(small_model, max_new_tokens=1024)
    )
    assert response.status_code == 400
    assert "leave no room for the prompt" in response.content.decode()
    assert TransformationJob.objects.count() == 0


def test_the_action_and_the_command_default_and_refuse_alike(study, coordinator, small_model):
    import_demo_dialogues(study)
    with pytest.raises(ActionError, match="Max_new_tokens 2048 leaves no room for the prompt: model 'small' "
                                          "has a context of 1024 tokens; use fewer \\(e.g. 256\\)."):
        actions.start_transformation(study, small_model, split="train", max_new_tokens=2048)
    assert TransformationJob.objects.count() == 0
    with pytest.raises(CommandError, match="leaves no room for the prompt"):
        call_command(
            "transform_dialogues", study="smoking", model="small", split="train", max_new_tokens=1024,
            stdout=io.StringIO(),
        )
    job = actions.start_transformation(study, small_model, split="train")
    assert job.max_new_tokens == 256


class _Backend(GenerationBackend):
    """A backend with a known context and no engine: only the budget logic of the base class."""

    def __init__(self, spec: ModelSpec):
        self.spec = spec

    def generate(self, batch):  # pragma: no cover - never reached here
        raise AssertionError

    def count_prompt_tokens(self, messages):
        return 10

    def check(self):
        return []


def test_no_room_is_said_plainly_not_as_a_negative_budget():
    spec = ModelSpec(
        name="m", backend="transformers", base_model="m", context_length=1024,
        params=GenerationParams(max_new_tokens=2048),
    )
    backend = _Backend(spec)
    assert backend.prompt_budget() == -1024
    message = backend.budget_error()
    assert message == (
        "max_new_tokens 2048 leaves no room for the prompt in the model's context of 1024 tokens; "
        "lower max_new_tokens"
    )
    results, encoded = backend.encode_within_budget(None, [[{"role": "user", "content": "hi"}]] * 2)
    assert encoded == [] and results == [GenerationResult(error=message)] * 2
    assert "-1024" not in message
    fitting = _Backend(
        ModelSpec(name="m", backend="transformers", base_model="m", context_length=1024,
                  params=GenerationParams(max_new_tokens=256))
    )
    assert fitting.budget_error() is None

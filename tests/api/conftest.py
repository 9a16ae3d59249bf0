"""API fixtures: a token per persona, clients that send it, and a study with transcripts from three sources.

The study is built through the real actions: the demo dialogues imported, the reference transcripts,
two generated sources with tell-tale model names (so blinding tests have something to look for) and
a fully double-coded round for ``coder`` and ``coder2``.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

PERSONAS = ("admin", "coordinator", "coder", "coder2", "outsider", "anonymous")

# Names that must never reach a coder: model names, run labels, checkpoint paths.
MODEL_A = "Qwen2-MI-secret-alpha"
MODEL_B = "Llama3-MI-secret-beta"
CHECKPOINT_A = "/checkpoints/secret-alpha/adapter"
CHECKPOINT_B = "/checkpoints/secret-beta/adapter"


# Which object each path's {id} names (the last collection segment before it decides).
ID_FOR_SEGMENT = {
    "tokens": "token", "dialogues": "dialogue", "rounds": "round", "assignments": "assignment", "models": "model",
    "runs": "run", "exports": "export", "imports": "import", "machine-coders": "machine_coder",
    "gold-sets": "gold_set",
}


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Personas are created with passwords in every test; PBKDF2's deliberate slowness buys nothing here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def personas(admin_user, coordinator, coder, coder2, outsider):
    return {"admin": admin_user, "coordinator": coordinator, "coder": coder, "coder2": coder2, "outsider": outsider}


@pytest.fixture
def tokens(personas):
    """A raw personal token for every persona (anonymous has none)."""
    from annotation import actions

    return {name: actions.create_token(user, "tests")[1] for name, user in personas.items()}


@pytest.fixture
def api(tokens):
    """``api("coder")`` is a DRF client sending the coder's token; ``api("anonymous")`` sends none."""

    def make(persona: str) -> APIClient:
        client = APIClient()
        if persona != "anonymous":
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens[persona]}")
        return client

    return make


def make_generated_responses(study) -> dict[int, list[str]]:
    """A reply per round for every test dialogue of the study (what a finished run would hand over)."""
    from annotation.actions import dialogue_rounds
    from annotation.models import Dialogue

    responses = {}
    for dialogue in Dialogue.objects.filter(study=study, split="test").order_by("id"):
        rounds = dialogue_rounds(dialogue.turns.order_by("index"))
        responses[dialogue.pk] = [f"生成的回应 {i}。你觉得呢？" for i in range(len(rounds))]
    return responses


@pytest.fixture
def world(study, coordinator, coder, coder2, demo_dialogues_file):
    """The study with reference + two generated sources and an open, fully double-coded round."""
    from annotation import actions

    actions.import_dialogues(study, path=str(demo_dialogues_file), created_by=coordinator)
    reference = actions.ensure_reference_source(study)
    runs = make_runs(study, coordinator)
    responses = make_generated_responses(study)
    generated = [
        actions.create_generated_source(study, run_id=run.pk, label=f"{run.model.name} · run {run.pk}", responses=responses)
        for run in runs
    ]
    coding_round = actions.create_coding_round(
        study, name="Round 1", sources=[reference, *generated], coders=[coder, coder2], overlap=1.0, seed=7,
        created_by=coordinator,
    )
    return {"study": study, "reference": reference, "generated": generated, "runs": runs, "round": coding_round}


def make_runs(study, user):
    """Two registered models (with checkpoint paths) and a generation run of each, straight in the tables.

    The runs are not executed: the tests need their names and ids to exist, not their output.
    """
    from inference.models import GenerationRun, RegisteredModel

    runs = []
    for name, adapter in ((MODEL_A, CHECKPOINT_A), (MODEL_B, CHECKPOINT_B)):
        model = RegisteredModel.objects.create(
            name=name, backend="transformers", base_model="/models/base-secret", adapter_path=adapter, is_finetuned=True,
            created_by=user,
        )
        runs.append(GenerationRun.objects.create(study=study, model=model, split="test", created_by=user))
    return runs


@pytest.fixture
def matrix_ids(world, coder, tokens, settings, tmp_path):
    """The objects the matrix's paths name, made through the actions where there is one."""
    from annotation.models import ApiToken, Assignment, Dialogue, GoldSet
    from evaluation.models import ExportJob
    from inference.models import GenerationItem, RegisteredModel

    study = world["study"]
    assignment = Assignment.objects.filter(coder=coder).order_by("position").first()
    run = world["runs"][0]
    dialogue = Dialogue.objects.filter(study=study, split="test").order_by("id").first()
    failed = GenerationItem.objects.create(run=run, dialogue=dialogue, round_index=0, status="failed", error="boom")
    GenerationItem.objects.create(run=run, dialogue=dialogue, round_index=1, status="done", response="好的。",
                                  reference="好。")
    served = RegisteredModel.objects.create(name="served", backend="openai", base_model="m",
                                            server_url="http://127.0.0.1:9/v1")
    settings.MI_EXPORT_DIR = str(tmp_path)
    export_file = tmp_path / "job-1" / "smoking-summaries.csv"
    export_file.parent.mkdir()
    export_file.write_text("assignment,coder\n")
    export = ExportJob.objects.create(study=study, kind="summaries", format="csv", status="done", progress=1.0,
                                      file_path=str(export_file))
    from inference.coders import actions as coder_actions

    machine = coder_actions.register_llm_coder(study, name="served coder", model=served)
    return {
        "machine_coder": machine.pk,
        "slug": study.slug, "username": "coder2", "token": ApiToken.objects.filter(user=coder).get().pk,
        "dialogue": dialogue.pk, "round": world["round"].pk, "assignment": assignment.pk,
        "utterance": 1,  # the first utterance: coders name utterances by their number (docs/blinding.md)
        "model": run.model_id, "served_model": served.pk, "run": run.pk, "item_id": failed.pk, "export": export.pk,
        "reference": world["reference"].pk, "import": study.imports.order_by("id").first().pk,
        "gold_set": GoldSet.objects.create(study=study, name="Matrix gold").pk,
    }

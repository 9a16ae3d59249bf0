"""``manage.py demo`` and ``build_demo_model``: the embedded demo set up in one re-runnable command."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from annotation.models import Dialogue, Membership, Study, Transcript, TranscriptSource
from inference.models import GenerationItem, GenerationRun, RegisteredModel

from .conftest import DEMO_TEST_ROUNDS


def run_demo(django_capture_on_commit_callbacks, **options) -> tuple[str, int]:
    out = io.StringIO()
    with django_capture_on_commit_callbacks() as callbacks:  # the run is enqueued, not sent, here
        call_command("demo", stdout=out, url="http://demo.test:8000/", **options)
    return out.getvalue(), len(callbacks)


def counts() -> dict[str, int]:
    return {
        "users": Membership.objects.filter(study__slug="mi-demo").count(),
        "studies": Study.objects.count(),
        "dialogues": Dialogue.objects.count(),
        "sources": TranscriptSource.objects.count(),
        "transcripts": Transcript.objects.count(),
        "models": RegisteredModel.objects.count(),
        "runs": GenerationRun.objects.count(),
        "items": GenerationItem.objects.count(),
    }


@pytest.mark.django_db
def test_demo_sets_everything_up_once_and_is_rerunnable(demo_model_dir, django_capture_on_commit_callbacks):
    output, sent = run_demo(
        django_capture_on_commit_callbacks, password="demo-pass-42", model_dir=demo_model_dir
    )
    assert sent == 1

    study = Study.objects.get(slug="mi-demo")
    assert (study.name, study.language) == ("MI demo", "zh")
    roles = dict(Membership.objects.filter(study=study).values_list("user__username", "role"))
    assert roles == {"demo-coordinator": "coordinator", "demo-coder1": "coder", "demo-coder2": "coder"}
    for username in roles:
        assert authenticate(username=username, password="demo-pass-42") is not None
    splits = sorted(Dialogue.objects.filter(study=study).values_list("split", flat=True))
    assert splits == ["test"] * 4 + ["train"] * 4
    reference = TranscriptSource.objects.get(study=study, kind="reference")
    assert reference.transcripts.count() == 4

    model = RegisteredModel.objects.get(name="demo-tiny")
    assert (model.backend, model.base_model, model.temperature, model.seed) == (
        "transformers",
        str(demo_model_dir),
        0.0,
        0,
    )
    run = GenerationRun.objects.get()
    assert (run.study, run.model, run.split, run.status) == (study, model, "test", "queued")
    assert run.items.count() == DEMO_TEST_ROUNDS
    assert run.created_by.username == "demo-coordinator"

    assert f"Run:    http://demo.test:8000/studies/mi-demo/generation/runs/{run.pk}/  (queued)" in output
    assert "Study:  http://demo.test:8000/studies/mi-demo/" in output
    assert re.search(r"demo-coordinator\s+demo-pass-42", output)
    assert f"Tiny model found in {demo_model_dir}." in output

    before = counts()
    output, sent = run_demo(django_capture_on_commit_callbacks, model_dir=demo_model_dir)
    assert sent == 0
    assert counts() == before
    assert re.search(r"demo-coder1\s+\(existing user; password unchanged\)", output)
    assert f"/generation/runs/{run.pk}/" in output


@pytest.mark.django_db
def test_demo_generates_passwords_for_new_users(demo_model_dir, django_capture_on_commit_callbacks):
    output, _ = run_demo(django_capture_on_commit_callbacks, model_dir=demo_model_dir, no_run=True)
    passwords = dict(re.findall(r"^\s+(demo-[a-z0-9-]+)\s+(\S+)$", output, flags=re.M))
    assert sorted(passwords) == ["demo-coder1", "demo-coder2", "demo-coordinator"]
    assert len(set(passwords.values())) == 3
    for username, password in passwords.items():
        assert len(password) >= 12
        assert authenticate(username=username, password=password) is not None
    assert GenerationRun.objects.count() == 0


def test_build_demo_model_skips_a_built_folder_and_builds_a_new_one(demo_model_dir, tmp_path):
    out = io.StringIO()
    call_command("build_demo_model", out=demo_model_dir, stdout=out)
    assert (
        out.getvalue().strip() == f"The demo model is already in {demo_model_dir} (use --force to rebuild)."
    )
    target = tmp_path / "fresh"
    out = io.StringIO()
    call_command("build_demo_model", out=target, steps=2, stdout=out)
    assert out.getvalue().startswith(f"Built the demo model in {target}: ")
    assert {"config.json", "model.safetensors", "tokenizer_config.json"} <= {p.name for p in target.iterdir()}

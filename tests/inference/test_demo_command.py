"""``manage.py demo`` and ``build_demo_model``: the embedded demo set up in one re-runnable command."""

from __future__ import annotations

import io
import re
from collections import Counter

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command

from annotation.models import (
    Assignment,
    CodingRound,
    Dialogue,
    Membership,
    Study,
    Transcript,
    TranscriptSource,
)
from inference.models import GenerationItem, GenerationRun, RegisteredModel

from .conftest import DEMO_TEST_ROUNDS

DEMO_CODING_ROUNDS = 12  # demo_dialogues_coding.jsonl: 4 test dialogues of 3 rounds


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
    output, _ = run_demo(
        django_capture_on_commit_callbacks, password="demo-pass-42", model_dir=demo_model_dir, inline=True
    )

    study = Study.objects.get(slug="mi-demo")
    assert (study.name, study.language) == ("MI demo", "zh")
    roles = dict(Membership.objects.filter(study=study).values_list("user__username", "role"))
    assert roles == {"demo-coordinator": "coordinator", "demo-coder1": "coder", "demo-coder2": "coder"}
    for username in [*roles, "demo-admin"]:
        assert authenticate(username=username, password="demo-pass-42") is not None
    admin = get_user_model().objects.get(username="demo-admin")
    assert admin.is_staff and admin.is_superuser
    splits = sorted(Dialogue.objects.filter(study=study).values_list("split", flat=True))
    assert splits == ["test"] * 8 + ["train"] * 4
    reference = TranscriptSource.objects.get(study=study, kind="reference")
    assert reference.transcripts.count() == 8

    model = RegisteredModel.objects.get(name="demo-tiny")
    assert (model.backend, model.base_model, model.temperature, model.seed) == (
        "transformers",
        str(demo_model_dir),
        0.0,
        0,
    )
    run = GenerationRun.objects.get()
    assert (run.study, run.model, run.split, run.status) == (study, model, "test", "done")
    assert run.items.count() == DEMO_TEST_ROUNDS + DEMO_CODING_ROUNDS
    assert run.created_by.username == "demo-coordinator"
    # Progress of the run, item by item, up to the total.
    total = run.items.count()
    assert f"Generating replies: 0/{total}" in output and f"Generating replies: {total}/{total}" in output

    assert f"Run:    http://demo.test:8000/studies/mi-demo/generation/runs/{run.pk}/  (done)" in output
    assert "Study:  http://demo.test:8000/studies/mi-demo/" in output
    for username in ("demo-admin", "demo-coordinator", "demo-coder1", "demo-coder2"):
        assert re.search(rf"{username}\s+demo-pass-42", output)
    assert f"Tiny model found in {demo_model_dir} (same inputs: reused)." in output
    assert "Training the tiny model" not in output
    check_round(output)

    before = counts()
    output, sent = run_demo(django_capture_on_commit_callbacks, model_dir=demo_model_dir, inline=True)
    assert sent == 0
    assert counts() == before
    assert re.search(r"demo-coder1\s+\(existing user; password unchanged\)", output)
    assert f"/generation/runs/{run.pk}/" in output
    assert "Round 'Demo round' is there already." in output


def check_round(output: str) -> None:
    """The round covers reference and generated transcripts with both coders; each coder has work
    waiting; at least MIN_TARGETS transcripts are coded and submitted by both; and every reliability
    figure the results pages show (computed by the same code) is estimable."""
    from evaluation import reliability
    from evaluation.results import build_results

    study = Study.objects.get(slug="mi-demo")
    coding_round = CodingRound.objects.get(study=study, name="Demo round")
    assert set(coding_round.sources.values_list("kind", flat=True)) == {"reference", "generated"}
    assert sorted(coding_round.coders.values_list("username", flat=True)) == ["demo-coder1", "demo-coder2"]
    assert f"Round:  http://demo.test:8000/studies/mi-demo/rounds/{coding_round.pk}/" in output

    assignments = Assignment.objects.filter(coding_round=coding_round)
    for coder in ("demo-coder1", "demo-coder2"):
        mine = assignments.filter(coder__username=coder)
        assert mine.filter(status="pending").exists(), coder
        assert mine.filter(status="submitted").count() >= reliability.MIN_TARGETS
    submitted_by_both = [
        t for t, n in Counter(assignments.filter(status="submitted").values_list("transcript_id", flat=True)).items()
        if n == 2
    ]
    assert len(submitted_by_both) >= reliability.MIN_TARGETS
    transcripts = Transcript.objects.filter(pk__in=submitted_by_both)
    assert set(transcripts.values_list("source__kind", flat=True)) == {"reference", "generated"}

    for scope in (None, coding_round):
        rel = build_results(study, scope, per_code=True).reliability
        assert rel.n_transcripts >= reliability.MIN_TARGETS
        assert rel.withheld() == []  # no statistic (nor interval) without a number
        assert all(s.icc.status == "ok" for s in rel.scores)
        assert all(s.alpha.status in ("ok", "not_applicable") for s in rel.scores)
        assert rel.utterances.alpha.status == rel.utterances.fleiss.status == "ok"
        assert [p.kappa.status for p in rel.utterances.pairs] == ["ok"]
        assert len(rel.utterances.per_code) >= 8
        # Not degenerate: coders agree mostly, not perfectly; transcripts and codes differ.
        assert 0.4 < rel.utterances.alpha.alpha < 0.99
        values = [s.icc.single.value for s in rel.scores]
        assert len(set(values)) > 10 and sum(v < 1 for v in values) > 10


@pytest.mark.django_db
def test_demo_generates_passwords_for_new_users(demo_model_dir, django_capture_on_commit_callbacks):
    output, _ = run_demo(django_capture_on_commit_callbacks, model_dir=demo_model_dir, no_run=True)
    passwords = dict(re.findall(r"^\s+(demo-[a-z0-9-]+)\s+(\S+)$", output, flags=re.M))
    assert sorted(passwords) == ["demo-admin", "demo-coder1", "demo-coder2", "demo-coordinator"]
    assert len(set(passwords.values())) == 4
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
    # Its inputs' fingerprint is stored beside it: the same inputs reuse it, changed ones rebuild it.
    fingerprint = (target / "demo_inputs.sha256").read_text(encoding="utf-8").strip()
    out = io.StringIO()
    call_command("build_demo_model", out=target, steps=2, stdout=out)
    assert out.getvalue().startswith("The demo model is already in")
    out = io.StringIO()
    call_command("build_demo_model", out=target, steps=3, stdout=out)
    assert out.getvalue().startswith(f"Built the demo model in {target}: ")
    assert (target / "demo_inputs.sha256").read_text(encoding="utf-8").strip() != fingerprint


def test_the_fingerprint_follows_the_corpus(tmp_path):
    from inference.management.commands.build_demo_model import DEMO_DIALOGUES, inputs_fingerprint

    copy = tmp_path / "corpus.jsonl"
    copy.write_bytes(DEMO_DIALOGUES.read_bytes())
    same = inputs_fingerprint(steps=5, seed=0, corpus_path=copy)
    assert same == inputs_fingerprint(steps=5, seed=0)
    copy.write_bytes(DEMO_DIALOGUES.read_bytes() + b"\n")
    assert inputs_fingerprint(steps=5, seed=0, corpus_path=copy) != same
    assert inputs_fingerprint(steps=5, seed=1) != same

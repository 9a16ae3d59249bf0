"""Machine coders: registered with provenance, trained as a job, coding a round like a coder, measured
against the coders (evaluation), suggestions in assisted rounds — and kept from coders throughout."""

from __future__ import annotations

from pathlib import Path

import pytest

from annotation import actions as annotation_actions
from annotation import miti
from annotation import queries as annotation_queries
from annotation.models import Assignment, CodingRound, UtteranceCode
from evaluation import machine_agreement
from evaluation.reliability_data import study_reliability
from evaluation.summaries import load_summaries
from inference.coders import actions, execute
from inference.models import MachineCoder, MachineCodingItem, MachineCodingRun
from tests.conftest import PASSWORD
from tests.evaluation.db_helpers import coded_demo_study

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _model_store(settings, tmp_path):
    settings.MI_MODEL_STORE = tmp_path / "models"


@pytest.fixture
def coded(study, coordinator, coder, coder2, demo_dialogues_file):
    return coded_demo_study(study, coordinator, [coder, coder2], demo_dialogues_file, overlap=1.0)


def run_in_process(run: MachineCodingRun) -> MachineCodingRun:
    ids = list(run.items.order_by("id").values_list("id", flat=True))
    for start in range(0, len(ids), run.chunk_size):
        execute.execute_chunk(None, run.pk, ids[start : start + run.chunk_size])
    run.refresh_from_db()
    return run


def trained_classifier(coded, coordinator, django_capture_on_commit_callbacks) -> MachineCoder:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        coder = actions.register_classifier(
            coded.study, name="tfidf", training_round=coded.coding_round, seed=3, folds=3, created_by=coordinator
        )
    assert len(callbacks) == 1 and coder.status == MachineCoder.Status.QUEUED
    result = execute.train_classifier(coder.pk)
    assert result["status"] == "ready"
    assert execute.train_classifier(coder.pk) == {"coder": coder.pk, "skipped": "not queued"}  # redelivery
    coder.refresh_from_db()
    return coder


def test_classifier_trains_as_a_job_with_transcript_cross_validation_and_provenance(
    coded, coordinator, django_capture_on_commit_callbacks
):
    coder = trained_classifier(coded, coordinator, django_capture_on_commit_callbacks)
    n_transcripts = Assignment.objects.filter(coding_round=coded.coding_round).values("transcript").distinct().count()
    assert coder.status == MachineCoder.Status.READY and coder.progress == 1.0
    assert coder.trained_with["transcripts"] == n_transcripts
    assert coder.trained_with["utterances"] == UtteranceCode.objects.filter(
        assignment__coding_round=coded.coding_round, assignment__coder__username="coder"
    ).count()  # the first coding per transcript (no consensus in this round)
    assert len(coder.validation["folds"]) == 3
    assert sum(f["n"] for f in coder.validation["folds"]) == coder.trained_with["utterances"]
    confusion = coder.validation["confusion"]
    assert sum(map(sum, confusion)) == coder.trained_with["utterances"]
    assert len(confusion) == len(coder.validation["labels"])
    assert Path(coder.artefact_path).is_file() and str(coder.artefact_path).startswith(str(Path(coder.artefact_path).parent))
    # The service user cannot sign in and belongs to no study.
    user = coder.service_user
    assert not user.is_active and not user.has_usable_password()
    assert not user.memberships.exists()


def test_training_without_two_codes_fails_visibly(study, coordinator, django_capture_on_commit_callbacks):
    empty = CodingRound.objects.create(study=study, name="empty", seed=1)
    with django_capture_on_commit_callbacks(execute=False):
        coder = actions.register_classifier(study, name="nothing", training_round=empty)
    assert execute.train_classifier(coder.pk)["status"] == "failed"
    coder.refresh_from_db()
    assert coder.status == MachineCoder.Status.FAILED and "fewer than 2 distinct codes" in coder.error


def test_classifier_codes_every_transcript_of_the_round_and_stays_out_of_human_results(
    coded, coordinator, coder, client, django_capture_on_commit_callbacks
):
    machine = trained_classifier(coded, coordinator, django_capture_on_commit_callbacks)
    before = load_summaries(coded.study, coded.coding_round)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = actions.start_coding_run(machine, coded.coding_round, created_by=coordinator)
    assert callbacks, "chunks are sent after commit"
    transcripts = set(Assignment.objects.filter(coding_round=coded.coding_round, kind="coding")
                      .values_list("transcript_id", flat=True))
    mine = Assignment.objects.filter(coding_round=coded.coding_round, coder=machine.service_user)
    assert set(mine.values_list("transcript_id", flat=True)) == transcripts
    assert set(mine.values_list("kind", flat=True)) == {"machine"}
    run = run_in_process(run)
    assert run.status == MachineCodingRun.Status.DONE
    assert set(mine.values_list("status", flat=True)) == {"submitted"}
    n_utterances = UtteranceCode.objects.filter(assignment__coding_round=coded.coding_round,
                                                assignment__coder=coder).count()
    assert UtteranceCode.objects.filter(assignment__in=mine).count() == n_utterances
    # Human results are unchanged; asked for, the machine codings are there, summarised like a human's.
    after = load_summaries(coded.study, coded.coding_round)
    assert [s.assignment_id for s in after.codings] == [s.assignment_id for s in before.codings]
    assert after.machine == [] and after.consensus == []
    with_machine = load_summaries(coded.study, coded.coding_round, with_machine=True)
    assert {s.transcript_id for s in with_machine.machine} == transcripts
    assert all(s.scores for s in with_machine.machine)
    # Never reaches a coder: not in a queue, the service user cannot sign in.
    assert not annotation_queries.assignments_for(coder).filter(kind="machine").exists()
    assert not client.login(username=machine.service_user.username, password=PASSWORD)
    # A second run finds nothing left to code.
    with django_capture_on_commit_callbacks(execute=False):
        again = actions.start_coding_run(machine, coded.coding_round)
    assert again.status == MachineCodingRun.Status.DONE and not again.items.exists()


def _machine_copying(coded, name: str, source_coder) -> MachineCoder:
    """A machine coder whose codings are exactly ``source_coder``'s (written through the machine action)."""
    machine = MachineCoder.objects.create(
        study=coded.study, name=name, kind=MachineCoder.Kind.CLASSIFIER, status=MachineCoder.Status.READY,
        service_user=actions._service_user(coded.study, name),
    )
    annotation_actions.add_machine_coding(coded.coding_round, machine.service_user)
    for assignment in Assignment.objects.filter(coding_round=coded.coding_round, coder=machine.service_user):
        codes = dict(UtteranceCode.objects.filter(
            assignment__coding_round=coded.coding_round, assignment__coder=source_coder,
            assignment__transcript_id=assignment.transcript_id,
        ).values_list("utterance_id", "code"))
        assert annotation_actions.record_machine_codes(assignment, codes)
    return machine


def test_machine_vs_human_reuses_the_reliability_statistics(coded, coder, coder2):
    machine = _machine_copying(coded, "copy of coder", coder)
    agreement = machine_agreement.machine_agreement(machine, coded.coding_round)
    by = {c.against: c for c in agreement.comparisons}
    assert by["coder"].overall.kappa == pytest.approx(1.0)
    human = study_reliability(load_summaries(coded.study, coded.coding_round))
    pair = {(p.coder_a, p.coder_b): p.kappa for p in human.utterances.pairs}[("coder", "coder2")]
    assert by["coder2"].overall.kappa == pytest.approx(pair.kappa)
    assert by["coder2"].overall.n_units == pair.n_units
    # Summary scores only: the machine rated no globals, so they are not compared.
    assert [s.key for s in agreement.scores] == list(miti.SUMMARY_KEYS)
    assert agreement.globals_rated is False  # the machine rated no globals
    # Confusion (coders × machine): its diagonal for coder 1 alone is every utterance of coder 1.
    total = sum(map(sum, agreement.confusion))
    assert total == 2 * agreement.n_utterances


def test_machine_vs_human_page_for_coordinators_only(coded, coder, coordinator, client_for, client):
    machine = _machine_copying(coded, "copy", coder)
    url = f"/studies/{coded.study.slug}/results/machine/?round={coded.coding_round.pk}"
    page = client_for(coordinator).get(url)
    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="machine-vs-human"' in body and machine.name in body and 'data-against="coder2"' in body
    client.logout()
    assert client_for(coder).get(url).status_code == 403


def test_machine_coder_pages_register_and_add_to_round(coded, coordinator, coder, client_for,
                                                       django_capture_on_commit_callbacks):
    client = client_for(coordinator)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(f"/studies/{coded.study.slug}/machine-coders/", {
            "name": "svm", "kind": "classifier", "training_round": coded.coding_round.pk, "seed": 0, "folds": 3,
        })
    machine = MachineCoder.objects.get(name="svm")
    assert response.status_code == 302 and response["Location"].endswith(f"/machine-coders/{machine.pk}/")
    execute.train_classifier(machine.pk)
    page = client.get(f"/studies/{coded.study.slug}/machine-coders/{machine.pk}/").content.decode()
    assert 'id="validation"' in page and "tfidf" not in page
    with django_capture_on_commit_callbacks(execute=False):
        added = client.post(f"/studies/{coded.study.slug}/machine-coders/{machine.pk}/add/",
                            {"coding_round": coded.coding_round.pk})
    assert added.status_code == 302
    assert MachineCodingRun.objects.filter(coder=machine).count() == 1
    assert MachineCodingItem.objects.filter(run__coder=machine).exists()
    assert client_for(coder).get(f"/studies/{coded.study.slug}/machine-coders/").status_code == 403


def test_api_and_command(coded, coordinator, coder, django_capture_on_commit_callbacks, capsys):
    from django.core.management import call_command
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(coordinator)
    base = f"/api/studies/{coded.study.slug}/machine-coders/"
    with django_capture_on_commit_callbacks(execute=False):
        created = api.post(base, {"name": "api-clf", "kind": "classifier", "training_round": coded.coding_round.pk,
                                  "folds": 3}, format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert created.json()["status"] == "queued"
    execute.train_classifier(pk)
    detail = api.get(f"{base}{pk}/").json()
    assert detail["status"] == "ready" and len(detail["validation"]["folds"]) == 3
    with django_capture_on_commit_callbacks(execute=False):
        started = api.post(f"{base}{pk}/runs/", {"round": coded.coding_round.pk}, format="json")
    assert started.status_code == 201 and started.json()["round"] == coded.coding_round.pk
    outsider_view = APIClient()
    outsider_view.force_authenticate(coder)
    assert outsider_view.get(base).status_code == 403

    call_command("machine_coder", "train", "--study", coded.study.slug, "--name", "cmd", "--round",
                 coded.coding_round.name, "--folds", "2", "--here")
    call_command("machine_coder", "code", "--study", coded.study.slug, "--name", "cmd", "--round",
                 coded.coding_round.name, "--here")
    out = capsys.readouterr().out
    assert "ready: kappa" in out and " done: " in out and ", 0 failed" in out

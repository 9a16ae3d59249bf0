"""Results that keep up: stored summaries follow submit/reopen/adjudicate; the cache follows the fingerprint."""

from __future__ import annotations

import pytest

from annotation import actions
from annotation.models import Assignment, AssignmentSummary, Utterance
from evaluation import results as results_module
from evaluation.results import build_results
from evaluation.summaries import load_summaries, study_aggregates

from .db_helpers import code_and_submit, coded_demo_study

pytestmark = pytest.mark.django_db


def _fresh_numbers(study):
    """Aggregates recomputed from the codes themselves (no stored rows, no cache)."""
    saved = list(AssignmentSummary.objects.values_list("assignment_id", flat=True))
    data = load_summaries(study)
    assert all(s.assignment_id in saved for s in [*data.codings, *data.consensus])
    stored = {s.assignment_id: s.scores for s in [*data.codings, *data.consensus]}
    AssignmentSummary.objects.all().delete()
    tallied = load_summaries(study)
    assert {s.assignment_id: s.scores for s in [*tallied.codings, *tallied.consensus]} == stored
    actions_store(saved)
    return study_aggregates(tallied)


def actions_store(ids) -> None:
    from annotation.actions.summaries import store_summaries

    store_summaries(ids)


def test_submit_reopen_and_adjudicate_refresh_stored_summaries_and_cached_results(
    study, coordinator, coder, coder2, demo_dialogues_file, monkeypatch
) -> None:
    coded = coded_demo_study(study, coordinator, [coder, coder2], demo_dialogues_file)
    computed = {"aggregates": 0, "reliability": 0}
    real_aggregates, real_reliability = results_module.study_aggregates, results_module.study_reliability

    def counting_aggregates(*args, **kwargs):
        computed["aggregates"] += 1
        return real_aggregates(*args, **kwargs)

    def counting_reliability(*args, **kwargs):
        computed["reliability"] += 1
        return real_reliability(*args, **kwargs)

    monkeypatch.setattr(results_module, "study_aggregates", counting_aggregates)
    monkeypatch.setattr(results_module, "study_reliability", counting_reliability)

    first = build_results(study, per_code=False)
    assert first.n_codings == 16 and first.reliability.n_transcripts == 8
    again = build_results(study, per_code=False)
    assert again.fingerprint == first.fingerprint
    assert again.n_codings == 16 and again.reliability.n_transcripts == 8
    assert computed == {"aggregates": 1, "reliability": 1}  # the second view read the cache

    # Reopen: the stored row goes, the scope changes, the next view recomputes without that coding.
    target = Assignment.objects.filter(coding_round=coded.coding_round, coder=coder).order_by("id").first()
    reopened = actions.reopen_assignment(target, actor=coordinator)
    assert not AssignmentSummary.objects.filter(assignment=target).exists()
    after_reopen = build_results(study, per_code=False)
    assert after_reopen.fingerprint != first.fingerprint
    assert after_reopen.n_codings == 15 and after_reopen.reliability.n_transcripts == 7
    assert computed == {"aggregates": 2, "reliability": 2}

    # Change every code of the reopened coding to Q and submit: a new stored row at the new version.
    version = reopened.version
    for utterance in Utterance.objects.filter(volley__transcript_id=target.transcript_id):
        version = actions.save_code(reopened, utterance_id=utterance.pk, code="Q", version=version, actor=coder).version
    actions.submit_assignment(reopened, version=version, actor=coder)
    row = AssignmentSummary.objects.get(assignment=target)
    target.refresh_from_db()
    assert row.version == target.version and row.counts["Q"] > 0 and row.counts["SR"] == row.counts["CR"] == 0
    resubmitted = build_results(study, per_code=False)
    assert resubmitted.n_codings == 16
    fresh = _fresh_numbers(study)
    source = target.transcript.source_id
    assert resubmitted.aggregates.per_source[source]["r_to_q"] == fresh.per_source[source]["r_to_q"]
    assert resubmitted.aggregates.per_source[source] != first.aggregates.per_source[source]

    # Adjudicate: a submitted consensus joins the scope and becomes the transcript's value.
    transcript = Assignment.objects.filter(coding_round=coded.coding_round, coder=coder2).first().transcript
    consensus = actions.start_consensus(coded.coding_round, transcript, actor=coordinator)
    code_and_submit(consensus, 0)
    assert AssignmentSummary.objects.filter(assignment=consensus).exists()
    adjudicated = build_results(study, per_code=False)
    assert adjudicated.fingerprint != resubmitted.fingerprint
    assert adjudicated.aggregates.consensus_per_source == {transcript.source_id: 1}
    assert adjudicated.aggregates.per_source == _fresh_numbers(study).per_source

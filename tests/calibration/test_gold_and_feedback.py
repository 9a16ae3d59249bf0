"""Gold transcripts and calibration feedback (docs/calibration.md), with named personas.

A coordinator marks adjudicated consensus codings as gold; gold rows never change (the database
refuses an UPDATE); a revision is a new version. A coder codes a calibration round and, once submitted,
sees their codes beside the gold; in a study round nothing of the kind appears.
"""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from annotation import actions
from annotation.models import Assignment, CodingRound, GoldCode, GoldRating, GoldTranscript
from tests.calibration.helpers import GLOBALS, code_assignment, gold_codes, gold_globals, make_gold_set, noisy

pytestmark = pytest.mark.django_db


def test_marked_gold_copies_codes_and_globals(study, coordinator, coder, coder2):
    golds = make_gold_set(study, coordinator, [coder, coder2], n=2)
    for gold in golds:
        codes = dict(GoldCode.objects.filter(gold=gold, additional=False).values_list("utterance_id", "code"))
        assert codes == gold_codes(gold.transcript)
        expected = gold_globals(gold.transcript)
        assert dict(GoldRating.objects.filter(gold=gold).values_list("scale", "value")) == expected
        assert gold.version == 1 and gold.origin == "consensus" and gold.marked_by == "coordinator"
        assert gold.scores["technical"] == (expected["CULTIVATING_CHANGE_TALK"] + expected["SOFTENING_SUSTAIN_TALK"]) / 2


def test_only_consensus_or_imported_codings_become_gold(study, coordinator, coder, coder2):
    golds = make_gold_set(study, coordinator, [coder, coder2], n=1)
    one_coder = Assignment.objects.filter(kind="coding", coding_round__name="Gold base").first()
    with pytest.raises(actions.ActionError, match="consensus or from imported"):
        actions.mark_gold(golds[0].gold_set, one_coder, actor=coordinator)
    with pytest.raises(actions.ActionError, match="site staff"):
        actions.create_gold_set(None, name="Shared", actor=coordinator)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
def test_gold_rows_are_immutable_in_the_database(study, coordinator, coder, coder2):
    (gold,) = make_gold_set(study, coordinator, [coder, coder2], n=1)
    for query in (GoldCode.objects.filter(gold=gold), GoldRating.objects.filter(gold=gold),
                  GoldTranscript.objects.filter(pk=gold.pk)):
        with pytest.raises(IntegrityError, match="immutable"), transaction.atomic():
            if query.model is GoldTranscript:
                query.update(note="changed")
            elif query.model is GoldRating:
                query.update(value=1)
            else:
                query.update(code="CONFRONT")
    assert GoldCode.objects.filter(gold=gold, code="CONFRONT").count() == 0


def test_revision_is_a_new_version_and_the_old_one_stays(study, coordinator, coder, coder2):
    (gold,) = make_gold_set(study, coordinator, [coder, coder2], n=1)
    before = dict(GoldCode.objects.filter(gold=gold).values_list("utterance_id", "code"))
    revised = actions.revise_gold(gold, actor=coordinator, codes={1: "CONFRONT"}, ratings={"EMPATHY": 2})
    assert revised.version == 2 and revised.origin == "revision"
    assert dict(GoldCode.objects.filter(gold=gold).values_list("utterance_id", "code")) == before
    first = min(before)
    assert GoldCode.objects.get(gold=revised, utterance_id=first).code == "CONFRONT"
    assert GoldRating.objects.get(gold=revised, scale="EMPATHY").value == 2
    assert actions.current_golds(gold.gold_set) == [revised]
    with pytest.raises(IntegrityError), transaction.atomic():
        GoldTranscript.objects.create(gold_set=gold.gold_set, transcript=gold.transcript, version=2, origin="revision")


def test_coder_sees_feedback_only_after_submitting_a_calibration_coding(client_for, study, coordinator, coder, coder2):
    golds = make_gold_set(study, coordinator, [coder, coder2], n=2)
    calibration = actions.create_calibration_round(study, name="Calibration 1", golds=golds, coders=[coder],
                                                   created_by=coordinator)
    assert calibration.purpose == CodingRound.Purpose.CALIBRATION
    first = Assignment.objects.filter(coding_round=calibration, coder=coder).order_by("position").first()
    assert first.in_results is False
    client = client_for(coder)
    page = client.get(f"/code/{first.pk}/").content.decode()
    assert "calibration-feedback" not in page  # not before submitting
    truth = gold_codes(first.transcript)
    code_assignment(first, noisy(truth, 4), {**GLOBALS, "EMPATHY": 2}, coder)
    page = client.get(f"/code/{first.pk}/").content.decode()
    assert 'id="calibration-feedback"' in page
    assert "You agree with the gold code on 9 of 12 utterances (75 percent)." in page
    assert page.count('class="fb-differ"') == 3 and page.count('class="fb-agree"') == 9
    assert "Cohen&#x27;s kappa with gold:" in page or "Cohen's kappa with gold:" in page
    assert 'data-feedback-global="EMPATHY"' in page and "Complex Reflection" in page


def test_no_feedback_in_a_study_round_even_for_a_gold_transcript(client_for, study, coordinator, coder, coder2):
    golds = make_gold_set(study, coordinator, [coder, coder2], n=2)
    from tests.calibration.helpers import make_transcripts

    extra = make_transcripts(study, 4, label="Model run", kind="generated", prefix="g")
    round_ = actions.create_coding_round(study, name="Study", sources=[extra[0].source], coders=[coder], overlap=0,
                                         seed=3, gold_set=golds[0].gold_set, gold_rate=0.5)
    client = client_for(coder)
    for a in Assignment.objects.filter(coding_round=round_, coder=coder):
        code_assignment(a, gold_codes(a.transcript), GLOBALS, coder)
        page = client.get(f"/code/{a.pk}/").content.decode()
        assert "calibration-feedback" not in page and "gold" not in page.lower()
        body = client.get(f"/api/assignments/{a.pk}/").content.decode().lower()
        assert "gold" not in body and "feedback" not in body

"""Gold codings stay out of the study's adjudication and results (docs/calibration.md).

A seeded gold transcript given to two coders of a study round, both submitted, is never offered for
consensus: its truth is the gold. Nor is a calibration round's. And a calibration round, whose codings
are training against gold, is no choice of the results' round selector.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from annotation import actions
from annotation.models import Assignment, GoldAssignment
from annotation.queries import adjudication as adjudication_queries
from tests.calibration.helpers import (
    code_assignment,
    gold_codes,
    gold_globals,
    make_gold_set,
    make_transcripts,
    noisy,
)

pytestmark = pytest.mark.django_db


def _seeded_round_all_submitted(study, coordinator, coders):
    # 2 gold, 4 study transcripts at rate 0.5: each coder gets round(0.5 × 4) = 2 gold, i.e. both.
    golds = make_gold_set(study, coordinator, list(coders), n=2)
    study_transcripts = make_transcripts(study, 4, label="Model run", kind="generated", prefix="g")
    round_ = actions.create_coding_round(study, name="Spring round", sources=[study_transcripts[0].source],
                                         coders=coders, overlap=1.0, seed=11, gold_set=golds[0].gold_set,
                                         gold_rate=0.5)
    for a in Assignment.objects.filter(coding_round=round_).select_related("transcript", "coder"):
        # The two coders differ on every other utterance: every transcript has disagreements to adjudicate.
        codes = noisy(gold_codes(a.transcript), 2 if a.coder == coders[1] else 0)
        code_assignment(a, codes, gold_globals(a.transcript), a.coder)
    gold_tids = {g.transcript_id for g in golds}
    seeded = GoldAssignment.objects.filter(seeded=True, assignment__coding_round=round_)
    # The defect's premise: each gold transcript was seeded to both coders, and both submitted it.
    assert sorted(seeded.values_list("assignment__transcript_id", flat=True)) == sorted([*gold_tids, *gold_tids])
    assert not seeded.exclude(assignment__status=Assignment.Status.SUBMITTED).exists()
    return round_, gold_tids, {t.pk for t in study_transcripts}


def test_seeded_gold_is_never_offered_for_consensus(client_for, study, coordinator, coder, coder2):
    round_, gold_tids, study_tids = _seeded_round_all_submitted(study, coordinator, [coder, coder2])

    items = adjudication_queries.adjudication_items(round_)
    assert {i.transcript.pk for i in items} == study_tids  # the study transcripts still are
    assert all(i.submitted == 2 and i.utterance_disagreements > 0 for i in items)

    # "Next" walks every study transcript waiting for consensus and never lands on gold.
    seen, current = [], None
    for _ in range(10):
        current = adjudication_queries.next_for_consensus(round_, current)
        if current is None or current.pk in {t.pk for t in seen}:
            break
        seen.append(current)
    assert {t.pk for t in seen} == study_tids

    with pytest.raises(actions.ActionError):
        adjudication_queries.compare(round_, next(iter(Assignment.objects.filter(transcript_id__in=gold_tids)))
                                     .transcript)

    page = client_for(coordinator)
    listing = page.get(reverse("round-adjudication", args=[study.slug, round_.pk])).content.decode()
    gold_codes_shown = {a.transcript.blind_code for a in Assignment.objects.filter(transcript_id__in=gold_tids,
                                                                                   coding_round=round_)}
    assert not {code for code in gold_codes_shown if re.search(re.escape(code), listing)}
    gold_tid = sorted(gold_tids)[0]
    # Neither the page nor a forged POST starts a consensus on it.
    detail = page.get(reverse("round-adjudicate", args=[study.slug, round_.pk, gold_tid]))
    assert detail.status_code == 302
    page.post(reverse("round-consensus-start", args=[study.slug, round_.pk, gold_tid]))
    assert not Assignment.objects.filter(coding_round=round_, kind=Assignment.Kind.CONSENSUS,
                                         transcript_id__in=gold_tids).exists()


def test_a_machine_coder_added_to_the_round_never_codes_seeded_gold(study, coordinator, coder, coder2):
    """Seeded gold comes from outside the round's sources; a machine codes only those sources."""
    round_, gold_tids, study_tids = _seeded_round_all_submitted(study, coordinator, [coder, coder2])
    machine = actions.create_service_user("machine-test")
    assert actions.add_machine_coding(round_, machine) == len(study_tids)
    assert set(Assignment.objects.filter(coding_round=round_, kind=Assignment.Kind.MACHINE)
               .values_list("transcript_id", flat=True)) == study_tids


def test_calibration_round_is_not_adjudicated(study, coordinator, coder, coder2):
    golds = make_gold_set(study, coordinator, [coder, coder2], n=2)
    round_ = actions.create_calibration_round(study, name="Training", golds=golds, coders=[coder, coder2], seed=3)
    for a in Assignment.objects.filter(coding_round=round_).select_related("transcript", "coder"):
        code_assignment(a, noisy(gold_codes(a.transcript), 3 if a.coder == coder2 else 0),
                        gold_globals(a.transcript), a.coder)
    assert Assignment.objects.filter(coding_round=round_, status=Assignment.Status.SUBMITTED).count() == 4
    assert adjudication_queries.adjudication_items(round_) == []
    assert adjudication_queries.next_for_consensus(round_) is None


def test_reassigned_work_still_counts_in_adjudication(study, coordinator, coder, coder2):
    """Reassigned work is also out of results, but it is a study coding: it stays comparable."""
    transcripts = make_transcripts(study, 2, label="Model run", kind="generated", prefix="r")
    round_ = actions.create_coding_round(study, name="R", sources=[transcripts[0].source], coders=[coder, coder2],
                                         overlap=1.0, seed=5)
    for a in Assignment.objects.filter(coding_round=round_).select_related("transcript", "coder"):
        code_assignment(a, gold_codes(a.transcript), gold_globals(a.transcript), a.coder)
    Assignment.objects.filter(coding_round=round_, coder=coder2).update(in_results=False)
    items = adjudication_queries.adjudication_items(round_)
    assert {i.transcript.pk for i in items} == {t.pk for t in transcripts}
    assert all(i.submitted == 2 for i in items)


def _round_options(html: str) -> list[str]:
    select = re.search(r'<select id="round-select" name="round">(.*?)</select>', html, re.S)
    assert select is not None
    return re.findall(r'<option value="(\d+)"', select.group(1))


def test_calibration_rounds_are_not_in_the_results_round_selector(client_for, study, coordinator, coder, coder2):
    golds = make_gold_set(study, coordinator, [coder, coder2], n=2)  # makes the study round "Gold base"
    calibration = actions.create_calibration_round(study, name="Training", golds=golds, coders=[coder, coder2],
                                                   seed=3)
    study_round = Assignment.objects.filter(kind=Assignment.Kind.CONSENSUS).first().coding_round
    page = client_for(coordinator)
    for name in ("eval-dashboard", "eval-reliability", "eval-exports"):
        html = page.get(reverse(name, args=[study.slug])).content.decode()
        if name == "eval-exports":
            options = re.findall(r'<option value="(\d+)"', html.split('id="export-round"')[1].split("</select>")[0])
        else:
            options = _round_options(html)
        assert str(study_round.pk) in options, name
        assert str(calibration.pk) not in options, name
    # Reached by its address, a calibration round's (empty) results say why and where to look.
    html = page.get(reverse("eval-dashboard", args=[study.slug]) + f"?round={calibration.pk}").content.decode()
    assert 'id="calibration-round-note"' in html and "calibration round" in html
    assert f'<option value="{calibration.pk}" selected>Training (calibration)</option>' in html
    assert reverse("eval-calibration", args=[study.slug]) in html

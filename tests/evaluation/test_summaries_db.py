"""MITI summaries, aggregates and reliability read from the database (evaluation.summaries/reliability_data)."""

from __future__ import annotations

import statistics

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation import actions, miti
from annotation.models import Assignment, AssignmentSummary, Utterance, UtteranceCode
from evaluation import reliability as irr
from evaluation.reliability_data import study_reliability
from evaluation.summaries import load_summaries, study_aggregates, tally_codes

from .db_helpers import code_and_submit, coded_demo_study

pytestmark = pytest.mark.django_db


def _slow_tally(assignment: Assignment) -> dict[str, int]:
    """Reference: the codes per volley straight from the ORM, through miti.tally_transcript."""
    volleys: dict[int, list[str | None]] = {}
    for utt in Utterance.objects.filter(volley__transcript_id=assignment.transcript_id).order_by(
        "volley__index", "index"
    ):
        code = UtteranceCode.objects.filter(assignment=assignment, utterance=utt).values_list("code", flat=True).first()
        volleys.setdefault(utt.volley_id, []).append(code)
    return miti.tally_transcript(list(volleys.values()))


def test_tally_codes_equals_miti_tally_transcript_on_literal_volleys() -> None:
    volleys = [["SR", "CR", "Q"], ["Q", "Q"], ["PERSUADE", "PERSUADE_WITH"], ["AF", "EMPHASIZE", "AF"], ["SR"]]
    expected = miti.tally_transcript(volleys)
    assert tally_codes([set(v) for v in volleys]) == expected
    assert expected["CR"] == 1 and expected["SR"] == 1 and expected["Q"] == 2
    assert expected["PERSUADE_WITH"] == 1 and expected["PERSUADE"] == 0
    assert expected["AF"] == 1 and expected["EMPHASIZE"] == 1


def test_summary_per_submitted_assignment_matches_a_direct_computation(
    study, coordinator, coder, coder2, demo_dialogues_file
) -> None:
    coded = coded_demo_study(study, coordinator, [coder, coder2], demo_dialogues_file)
    # Submitting stored every coding's summary: assignments with their summaries, sources.
    assert AssignmentSummary.objects.filter(assignment__coding_round=coded.coding_round).count() == 16
    with CaptureQueriesContext(connection) as ctx:
        stored = load_summaries(study, coded.coding_round)
    assert len(ctx.captured_queries) == 2
    # Without stored rows (data from before they existed) the same numbers are tallied from the codes:
    # assignments, codes, globals, sources — a fixed number of queries whatever the study size.
    AssignmentSummary.objects.all().delete()
    with CaptureQueriesContext(connection) as ctx:
        data = load_summaries(study, coded.coding_round)
    assert len(ctx.captured_queries) == 4
    assert [(s.assignment_id, s.counts, s.globals, s.scores, s.n_coded) for s in stored.codings] == [
        (s.assignment_id, s.counts, s.globals, s.scores, s.n_coded) for s in data.codings
    ]
    assignments = Assignment.objects.filter(coding_round=coded.coding_round)
    assert len(data.codings) == assignments.count() == 16  # 8 transcripts × 2 coders
    assert data.consensus == []
    for summary in data.codings:
        assignment = assignments.get(pk=summary.assignment_id)
        counts = _slow_tally(assignment)
        assert summary.counts == counts
        ratings = dict(assignment.global_ratings.values_list("scale", "value"))
        assert summary.globals == ratings
        assert summary.scores == miti.summary_scores(counts, ratings).as_dict()
        assert summary.n_coded == Utterance.objects.filter(volley__transcript_id=assignment.transcript_id).count()
    # the stored codes give the reliability code rows, one per code
    assert len(data.code_rows) == UtteranceCode.objects.filter(assignment__coding_round=coded.coding_round).count()


def test_unsubmitted_work_is_left_out(study, coordinator, coder, coder2, demo_dialogues_file) -> None:
    coded = coded_demo_study(study, coordinator, [coder, coder2], demo_dialogues_file, submit=False)
    assert load_summaries(study).codings == []
    first = Assignment.objects.filter(coding_round=coded.coding_round, coder=coder).order_by("id").first()
    first.refresh_from_db()
    actions.submit_assignment(first, version=first.version, actor=coder)
    data = load_summaries(study)
    assert [s.assignment_id for s in data.codings] == [first.pk]


def test_aggregates_use_the_mean_of_coders_per_transcript(
    study, coordinator, coder, coder2, demo_dialogues_file
) -> None:
    coded = coded_demo_study(study, coordinator, [coder, coder2], demo_dialogues_file)
    data = load_summaries(study)
    aggs = study_aggregates(data)
    for source in (coded.reference, coded.generated):
        per_transcript: dict[int, list[float]] = {}
        for s in data.codings:
            if s.source_id == source.pk and s.scores["relational"] is not None:
                per_transcript.setdefault(s.transcript_id, []).append(s.scores["relational"])
        means = [statistics.fmean(v) for v in per_transcript.values()]
        stats = aggs.per_source[source.pk]["relational"]
        assert stats.n == len(means) == 4
        assert stats.mean == pytest.approx(statistics.fmean(means))
        assert stats.sd == pytest.approx(statistics.stdev(means))
        assert stats.share_fair == pytest.approx(sum(m >= 3.5 for m in means) / 4)
        assert stats.share_good == pytest.approx(sum(m >= 4.0 for m in means) / 4)
    # per coder: own codings, 8 each
    assert aggs.codings_per_coder == {coder.pk: 8, coder2.pk: 8}
    own = [s.scores["technical"] for s in data.codings if s.coder_id == coder.pk]
    assert aggs.per_coder[coder.pk]["technical"].mean == pytest.approx(statistics.fmean(own))


def test_consensus_is_the_final_value_where_present(study, coordinator, coder, coder2, demo_dialogues_file) -> None:
    coded = coded_demo_study(study, coordinator, [coder, coder2], demo_dialogues_file)
    transcript = coded.reference.transcripts.order_by("id").first()
    consensus = actions.start_consensus(coded.coding_round, transcript, actor=coordinator)
    version = consensus.version
    for utt in Utterance.objects.filter(volley__transcript=transcript):
        version = actions.record_consensus_code(
            consensus, utterance_id=utt.pk, code="CR", version=version, actor=coordinator
        ).version
    for scale in miti.GLOBAL_KEYS:
        version = actions.record_consensus_global(
            consensus, scale=scale, value=5, version=version, actor=coordinator
        ).version
    actions.submit_consensus(consensus, version=version, actor=coordinator)

    data = load_summaries(study)
    assert len(data.consensus) == 1
    final = [s for s in data.final_rows() if s.transcript_id == transcript.pk]
    assert [s.kind for s in final] == ["consensus"]
    assert final[0].scores["technical"] == 5.0 and final[0].scores["pct_cr"] == 1.0
    aggs = study_aggregates(data)
    others = [
        statistics.fmean(s.scores["technical"] for s in data.codings if s.transcript_id == t)
        for t in {s.transcript_id for s in data.codings if s.source_id == coded.reference.pk}
        if t != transcript.pk
    ]
    assert aggs.per_source[coded.reference.pk]["technical"].mean == pytest.approx(statistics.fmean([5.0, *others]))
    assert aggs.consensus_per_source == {coded.reference.pk: 1}
    # the consensus never counts as a coder
    assert set(aggs.per_coder) == {coder.pk, coder2.pk}


def test_reliability_matrices_from_the_database(study, coordinator, coder, coder2, demo_dialogues_file) -> None:
    coded_demo_study(study, coordinator, [coder, coder2], demo_dialogues_file)
    data = load_summaries(study)
    rel = study_reliability(data)
    assert rel.n_transcripts == 8 and rel.raters == "coders" and rel.k == 2
    by_transcript = data.by_transcript()
    order = sorted(by_transcript)
    for score in rel.scores:
        matrix = [
            [next(s.value(score.key) for s in by_transcript[t] if s.coder_id == c) for c in (coder.pk, coder2.pk)]
            for t in order
        ]
        expected = irr.icc(matrix)
        assert score.icc.status == expected.status
        if expected.status == "ok":
            assert score.icc.icc2_1 == pytest.approx(expected.icc2_1, abs=1e-12)
            assert score.icc.icc2_k == pytest.approx(expected.icc2_k, abs=1e-12)
    # interval alpha for globals and counts; the ratios %CR and R:Q get ICC only
    alpha = {score.key: score.alpha for score in rel.scores}
    assert alpha["pct_cr"].status == alpha["r_to_q"].status == "not_applicable"
    assert alpha["pct_cr"].alpha is None
    sr_rows = [
        [next(s.value("SR") for s in by_transcript[t] if s.coder_id == c) for t in order] for c in (coder.pk, coder2.pk)
    ]
    assert alpha["SR"].alpha == pytest.approx(irr.krippendorff_alpha(sr_rows, level="interval").alpha)
    # utterance level: every utterance of the 8 transcripts is a unit coded by both coders
    codes = {
        c.pk: dict(
            UtteranceCode.objects.filter(assignment__coder=c).values_list("utterance_id", "code")
        )
        for c in (coder, coder2)
    }
    units = sorted(codes[coder.pk])
    rows = [[codes[c.pk].get(u) for u in units] for c in (coder, coder2)]
    assert rel.utterances.n_units == len(units)
    assert rel.utterances.alpha.alpha == pytest.approx(irr.krippendorff_alpha(rows, level="nominal").alpha)
    assert rel.utterances.pairs[0].kappa.kappa == pytest.approx(irr.cohen_kappa(rows[0], rows[1]).kappa)
    assert rel.utterances.fleiss.kappa == pytest.approx(irr.fleiss_kappa(rows).kappa)
    # default_code makes the coders disagree on some reflections, so kappa is high but below 1
    assert 0.5 < rel.utterances.pairs[0].kappa.kappa < 1.0
    assert {c.code for c in rel.utterances.per_code} >= {"Q", "SR", "CR", "GI", "AF", "NONE"}


def test_reliability_edge_cases_not_enough_data(study, coordinator, coder, coder2, demo_dialogues_file) -> None:
    # no overlap: every transcript coded once -> no double-coded transcripts
    coded_demo_study(study, coordinator, [coder, coder2], demo_dialogues_file, overlap=0.0)
    rel = study_reliability(load_summaries(study))
    assert rel.n_transcripts == 0
    assert {s.icc.status for s in rel.scores} == {"not_enough_data"}
    assert rel.utterances.alpha.status == "not_enough_data"
    assert rel.utterances.pairs == []


def test_identical_coders_give_alpha_one_and_zero_variance_icc_na(
    study, coordinator, coder, coder2, demo_dialogues_file
) -> None:
    coded_demo_study(
        study, coordinator, [coder, coder2], demo_dialogues_file,
        code_for=lambda _coder, volley, utt: ["Q", "SR"][(volley + utt) % 2],
    )
    rel = study_reliability(load_summaries(study))
    assert rel.utterances.alpha.alpha == pytest.approx(1.0)
    assert rel.utterances.pairs[0].kappa.kappa == pytest.approx(1.0)
    # nobody ever codes GI: the GI tally is 0 everywhere -> ICC undefined, shown "n/a"
    gi = next(s for s in rel.scores if s.key == "GI")
    assert gi.icc.status == "undefined" and gi.icc.icc2_1 is None


def test_a_coder_recoding_in_a_later_round_counts_once(study, coordinator, coder, coder2, demo_dialogues_file) -> None:
    coded = coded_demo_study(study, coordinator, [coder, coder2], demo_dialogues_file)
    round2 = actions.create_coding_round(
        study, name="Round 2", sources=[coded.reference], coders=[coder], overlap=0.0, seed=3,
        created_by=coordinator,
    )
    for assignment in Assignment.objects.filter(coding_round=round2).select_related("coding_round"):
        code_and_submit(assignment, 0, code_for=lambda *_: "CR")
    everything = load_summaries(study)
    # 16 codings of round 1; coder's 4 reference codings replaced by round 2's
    assert len(everything.codings) == 16
    latest = [s for s in everything.codings if s.coder_id == coder.pk and s.source_id == coded.reference.pk]
    assert {s.round_name for s in latest} == {"Round 2"}
    assert all(s.scores["pct_cr"] == 1.0 for s in latest)
    only_round2 = load_summaries(study, round2)
    assert len(only_round2.codings) == 4

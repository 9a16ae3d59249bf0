"""AnnoMI expert labels as a coding round: mapping, structure, on a small fixture and the real file."""

from __future__ import annotations

import time

import pytest

from annotation import actions, miti, parsers
from annotation.actions.annomi import codes_for, miti_code_for
from annotation.models import (
    AdditionalCode,
    Assignment,
    CodingRound,
    Dialogue,
    GlobalRating,
    Membership,
    Transcript,
    Utterance,
    UtteranceCode,
    Volley,
)
from annotation.queries import adjudication as adjudication_queries
from tests.conftest import shared_data

HEADER = (
    "mi_quality,transcript_id,video_title,video_url,topic,utterance_id,interlocutor,timestamp,utterance_text,"
    "annotator_id,therapist_input_exists,therapist_input_subtype,reflection_exists,reflection_subtype,"
    "question_exists,question_subtype,main_therapist_behaviour,client_talk_type\n"
)


def _row(tid, uid, who, text, annotator, behaviour="n/a", refl="n/a", tin="n/a", question="n/a"):
    return (
        f"high,{tid},Video {tid},http://example.org/{tid},smoking,{uid},{who},00:00:0{uid % 10},\"{text}\","
        f"{annotator},n/a,{tin},n/a,{refl},n/a,{question},{behaviour},n/a\n"
    )


def _fixture_csv() -> bytes:
    """Transcript 1 coded by annotators 0 and 3; transcript 2 by annotator 3 only."""
    rows = []
    for annotator, labels in ((0, ("question", "reflection/simple", "therapist_input/information", "other")),
                              (3, ("question", "reflection/complex", "therapist_input/advice", "other"))):
        b = [label.split("/") for label in labels]
        rows += [
            _row(1, 0, "therapist", "Hi, how are you?", annotator, b[0][0]),
            _row(1, 1, "client", "I smoke too much.", annotator),
            _row(1, 2, "therapist", "You smoke a lot, right?", annotator, b[1][0], refl=b[1][1],
                 question="closed" if annotator == 3 else "n/a"),
            _row(1, 3, "therapist", "Smoking raises blood pressure.", annotator, b[2][0], tin=b[2][1]),
            _row(1, 4, "client", "I know.", annotator),
            _row(1, 5, "therapist", "Okay.", annotator, b[3][0]),
        ]
    rows += [
        _row(2, 0, "client", "<script>alert(1)</script> I want to quit.", 3),
        _row(2, 1, "therapist", "What would help?", 3, "question"),
    ]
    return (HEADER + "".join(rows)).encode()


def _label(behaviour, refl=None, tin=None, question=None):
    return parsers.AnnoMILabel(0, 0, "x", behaviour, refl, question, tin)


def test_mapping_follows_the_data_readme():
    assert miti_code_for(_label("reflection", refl="simple")) == "SR"
    assert miti_code_for(_label("reflection", refl="complex")) == "CR"
    assert miti_code_for(_label("reflection")) == "SR"  # a reflection without a subtype: simple
    assert miti_code_for(_label("question")) == "Q"
    assert miti_code_for(_label("therapist_input", tin="information")) == "GI"
    assert miti_code_for(_label("therapist_input", tin="advice")) == miti.NO_CODE
    assert miti_code_for(_label("other")) == miti.NO_CODE


def test_every_flagged_behaviour_is_kept():
    # docs/miti.md, "Labels imported from AnnoMI": the main behaviour is the code, the others additional
    assert codes_for(_label("question", refl="complex", question="open")) == ("Q", ["CR"])
    assert codes_for(_label("reflection", refl="simple", question="closed")) == ("SR", ["Q"])
    assert codes_for(_label("therapist_input", refl="simple", tin="information", question="closed")) == (
        "GI", ["Q", "SR"]
    )
    assert codes_for(_label("therapist_input", tin="advice", question="closed")) == (miti.NO_CODE, ["Q"])
    assert codes_for(_label("reflection", question="open")) == ("SR", ["Q"])  # subtype n/a
    assert codes_for(_label("other")) == (miti.NO_CODE, [])
    assert codes_for(_label("question", question="open")) == ("Q", [])


@pytest.mark.django_db
def test_fixture_round_structure(study, coordinator):
    result = actions.import_annomi_round(
        study, data=_fixture_csv(), filename="mini-full.csv", round_name="AnnoMI labels", created_by=coordinator
    )
    r = result.coding_round
    assert (result.dialogues_imported, result.transcripts, result.coders, result.assignments) == (2, 2, 2, 3)
    assert result.multi_coded == 1
    assert r.globals_rated is False and r.overlap == pytest.approx(0.5)
    assert result.source.kind == "imported" and result.source.label == "AnnoMI"
    assert sorted(r.coders.values_list("username", flat=True)) == ["annomi-annotator-0", "annomi-annotator-3"]
    assert not r.coders.get(username="annomi-annotator-0").has_usable_password()
    assert Membership.objects.filter(study=study, user__username="annomi-annotator-3", role="coder").exists()

    t1 = Transcript.objects.get(source=result.source, dialogue__external_id="annomi_1")
    assert t1.segmentation_locked
    volleys = list(Volley.objects.filter(transcript=t1).order_by("index"))
    # Rows 2 and 3 are one counselor turn: one volley, two utterances (one per row, not re-segmented).
    assert [v.client_context for v in volleys] == ["", "I smoke too much.", "I know."]
    assert [list(v.utterances.order_by("index").values_list("text", flat=True)) for v in volleys] == [
        ["Hi, how are you?"], ["You smoke a lot, right?", "Smoking raises blood pressure."], ["Okay."]
    ]
    codes = {
        a.coder.username: list(
            UtteranceCode.objects.filter(assignment=a)
            .order_by("utterance__volley__index", "utterance__index")
            .values_list("code", flat=True)
        )
        for a in Assignment.objects.filter(coding_round=r, transcript=t1).select_related("coder")
    }
    assert codes == {
        "annomi-annotator-0": ["Q", "SR", "GI", "NONE"],
        "annomi-annotator-3": ["Q", "CR", "NONE", "NONE"],
    }
    # annotator 3 flagged row 2 as a complex reflection *and* a question: Q is an additional code there
    assert list(AdditionalCode.objects.values_list("assignment__coder__username", "utterance__text", "code")) == [
        ("annomi-annotator-3", "You smoke a lot, right?", "Q")
    ]
    assert result.additional_codes == 1
    assert set(Assignment.objects.filter(coding_round=r).values_list("status", flat=True)) == {"submitted"}
    assert GlobalRating.objects.filter(assignment__coding_round=r).count() == 0
    # Adjudication sees the double-coded transcript with its two disagreements.
    items = adjudication_queries.adjudication_items(r)
    assert [(i.transcript.pk, i.submitted, i.utterance_disagreements, i.global_disagreements) for i in items] == [
        (t1.pk, 2, 2, 0)
    ]


@pytest.mark.django_db
def test_second_round_reuses_dialogues_and_transcripts(study, coordinator):
    first = actions.import_annomi_round(study, data=_fixture_csv(), filename="f.csv", round_name="A")
    second = actions.import_annomi_round(study, data=_fixture_csv(), filename="f.csv", round_name="B")
    assert second.dialogues_imported == 0
    assert Dialogue.objects.filter(study=study).count() == 2
    assert Transcript.objects.filter(source=first.source).count() == 2
    assert UtteranceCode.objects.filter(assignment__coding_round=second.coding_round).count() == 9
    with pytest.raises(actions.ActionError, match="already exists"):
        actions.import_annomi_round(study, data=_fixture_csv(), filename="f.csv", round_name="A")


@pytest.mark.django_db
def test_bad_file_changes_nothing(study):
    bad = _fixture_csv().replace(b",therapist,", b",doctor,", 1)
    with pytest.raises(parsers.ImportFormatError, match=r"bad\.csv, line 2, field 'interlocutor'"):
        actions.import_annomi_round(study, data=bad, filename="bad.csv", round_name="X")
    assert (Dialogue.objects.count(), CodingRound.objects.count(), Transcript.objects.count()) == (0, 0, 0)


@pytest.mark.django_db
def test_real_annomi_full(study, coordinator):
    path = shared_data("AnnoMI", "AnnoMI-full.csv")
    started = time.perf_counter()
    result = actions.import_annomi_round(study, path, round_name="AnnoMI experts", created_by=coordinator)
    print(f"AnnoMI-full labels round: {time.perf_counter() - started:.2f} s")
    r = result.coding_round
    assert (result.dialogues_imported, result.transcripts, result.coders, result.multi_coded) == (133, 133, 10, 7)
    assert result.assignments == 126 + 7 * 10
    assert r.overlap == pytest.approx(7 / 133)
    counts = {}
    for a in Assignment.objects.filter(coding_round=r).values_list("transcript_id", flat=True):
        counts[a] = counts.get(a, 0) + 1
    multi = sorted(t for t, n in counts.items() if n > 1)
    assert len(multi) == 7 and all(counts[t] == 10 for t in multi)
    assert sorted(
        Transcript.objects.filter(pk__in=multi).values_list("dialogue__metadata__transcript_id", flat=True)
    ) == [7, 27, 55, 56, 66, 109, 130]
    # One utterance per therapist row: every submitted coding codes every utterance of its transcript.
    n_units = Utterance.objects.filter(volley__transcript__source=result.source).count()
    assert result.codes == UtteranceCode.objects.filter(assignment__coding_round=r).count()
    single_units = Utterance.objects.filter(volley__transcript__source=result.source).exclude(
        volley__transcript__in=multi
    ).count()
    multi_units = n_units - single_units
    assert result.codes == single_units + 10 * multi_units
    by_code = dict.fromkeys(["SR", "CR", "Q", "GI", "NONE"], 0)
    for code in UtteranceCode.objects.filter(assignment__coding_round=r).values_list("code", flat=True):
        by_code[code] += 1
    # Totals straight from the CSV's therapist rows (all annotators), by main behaviour: reflection
    # simple 842 + 1 without a subtype (simple), complex 874, question 1954, therapist_input information
    # 612, the rest none.
    assert by_code == {"SR": 843, "CR": 874, "Q": 1954, "GI": 612, "NONE": 6826 - 843 - 874 - 1954 - 612}
    # and every other behaviour a row flags, counted from the CSV's flags (reflection_exists,
    # question_exists, therapist_input_subtype information) minus the main one
    additional = dict.fromkeys(["SR", "CR", "Q", "GI"], 0)
    for code in AdditionalCode.objects.filter(assignment__coding_round=r).values_list("code", flat=True):
        additional[code] += 1
    assert additional == {"SR": 228, "CR": 77, "Q": 359, "GI": 78} and result.additional_codes == 742

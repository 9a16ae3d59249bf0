"""Coding actions: save/clear a code, rate globals, undo, submit, version conflicts, audit events.

Data comes through the real actions: the demo dialogues are imported, the reference source built,
and a coding round created. ``build_round`` is shared with the view and blinding tests.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from django.db import connection

from annotation import actions, miti
from annotation.actions import coding
from annotation.models import Assignment, AuditEvent, CodingRound, GlobalRating, Utterance, UtteranceCode
from annotation.queries import coding as coding_queries

DEMO = Path(__file__).resolve().parents[2] / "annotation" / "demo_data" / "demo_dialogues.jsonl"

# Labels a coder must never see (used by the blinding tests too).
MODEL_SOURCES = ((17, "Qwen2-7B-MI run 17"), (23, "GLM4-9B-MI ckpt /models/glm"))


def fake_reply(dialogue_external_id: str, round_no: int, run_id: int) -> str:
    """A plausible counselor reply of two or three sentences that names no model."""
    if dialogue_external_id.startswith("demo-zh"):
        return f"听起来这件事让你很为难。你最在意的是什么？我们可以一起想一想第{round_no + 1}步。"
    return f"It sounds like this has been hard for you. What matters most to you here? Step {round_no + 1} is yours."


def build_round(study, coordinator, coders, *, overlap: float = 0.0, with_models: bool = False,
                name: str = "Round 1", globals_rated: bool = True) -> CodingRound:
    """Import the demo dialogues, build the reference (and optionally two model) sources, open a round."""
    from annotation.actions.transcripts import dialogue_rounds
    from annotation.models import Dialogue

    if not study.dialogues.exists():
        actions.import_dialogues(study, path=str(DEMO), created_by=coordinator)
    sources = [actions.ensure_reference_source(study)]
    if with_models:
        test_dialogues = Dialogue.objects.filter(study=study, split=Dialogue.Split.TEST)
        for run_id, label in MODEL_SOURCES:
            responses = {
                d.pk: [fake_reply(d.external_id, i, run_id) for i, _ in enumerate(dialogue_rounds(d.turns.order_by("index")))]
                for d in test_dialogues
            }
            sources.append(actions.create_generated_source(study, run_id=run_id, label=label, responses=responses))
    return actions.create_coding_round(
        study, name=name, sources=sources, coders=coders, overlap=overlap, seed=7, created_by=coordinator,
        globals_rated=globals_rated,
    )


def utterances_of(assignment: Assignment) -> list[Utterance]:
    return list(
        Utterance.objects.filter(volley__transcript=assignment.transcript).order_by("volley__index", "index")
    )


def number(utterance: Utterance) -> int:
    """The utterance's coder-facing id: its number in the transcript's reading order (docs/blinding.md)."""
    order = Utterance.objects.filter(volley__transcript_id=utterance.volley.transcript_id).order_by("volley__index", "index")
    return list(order.values_list("pk", flat=True)).index(utterance.pk) + 1


def code_everything(assignment: Assignment, actor, code: str = "NONE") -> None:
    for utterance in utterances_of(assignment):
        coding.save_code(assignment, utterance_id=utterance.pk, code=code, version=assignment.version, actor=actor)


def rate_globals(assignment: Assignment, actor, value: int = 4) -> None:
    for key in miti.GLOBAL_KEYS:
        coding.set_global(assignment, scale=key, value=value, version=assignment.version, actor=actor)


@pytest.fixture
def assignment(study, coordinator, coder) -> Assignment:
    build_round(study, coordinator, [coder])
    return Assignment.objects.filter(coder=coder).order_by("position").first()


def fresh(assignment: Assignment) -> Assignment:
    return Assignment.objects.select_related("transcript", "coding_round").get(pk=assignment.pk)


# --------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_round_setup_gives_the_coder_every_reference_transcript(study, coordinator, coder, assignment):
    queue = Assignment.objects.filter(coder=coder)
    assert queue.count() == 4  # demo-zh-1, demo-zh-2, demo-en-1, demo-en-2 are the test split
    assert assignment.version == 0 and assignment.status == "pending"
    assert len(utterances_of(assignment)) >= 4


@pytest.mark.django_db
def test_save_code_stores_code_bumps_version_and_writes_audit_event(coder, assignment):
    first = utterances_of(assignment)[0]
    result = coding.save_code(assignment, utterance_id=first.pk, code="CR", version=0, actor=coder)

    assert result.version == 1
    assert result.volley_id == first.volley_id and result.utterance_id == first.pk
    assert UtteranceCode.objects.get(assignment=assignment, utterance=first).code == "CR"
    row = Assignment.objects.get(pk=assignment.pk)
    assert (row.version, row.status) == (1, "in_progress")
    assert row.started_at is not None
    event = AuditEvent.objects.get(assignment=assignment)
    assert (event.actor, event.action, event.target, event.old, event.new, event.version) == (
        coder, "code", f"utterance:{first.pk}", "", "CR", 1)

    coding.save_code(assignment, utterance_id=first.pk, code="SR", version=1, actor=coder)
    last = AuditEvent.objects.filter(assignment=assignment).last()
    assert (last.old, last.new, last.version) == ("CR", "SR", 2)
    assert UtteranceCode.objects.filter(assignment=assignment).count() == 1


@pytest.mark.django_db
def test_no_code_is_a_code_and_unknown_codes_are_refused(coder, assignment):
    first, second = utterances_of(assignment)[:2]
    coding.save_code(assignment, utterance_id=first.pk, code="NONE", version=0, actor=coder)
    assert UtteranceCode.objects.get(utterance=first, assignment=assignment).code == "NONE"

    with pytest.raises(actions.ActionError, match=r"unknown MITI behaviour code 'cr' \(did you mean 'CR'\?\)"):
        coding.save_code(assignment, utterance_id=second.pk, code="cr", version=1, actor=coder)
    with pytest.raises(actions.ActionError, match="unknown MITI behaviour code 'OPEN_Q'"):
        coding.save_code(assignment, utterance_id=second.pk, code="OPEN_Q", version=1, actor=coder)
    # Refusals change nothing: same version, no code, no event.
    assert Assignment.objects.get(pk=assignment.pk).version == 1
    assert not UtteranceCode.objects.filter(utterance=second).exists()
    assert AuditEvent.objects.filter(assignment=assignment).count() == 1


@pytest.mark.django_db
def test_utterance_of_another_transcript_is_refused(study, coordinator, coder):
    build_round(study, coordinator, [coder])
    mine, other = Assignment.objects.filter(coder=coder).order_by("position")[:2]
    foreign = utterances_of(other)[0]
    with pytest.raises(actions.ActionError, match=f"Utterance {foreign.pk} is not part of transcript {mine.transcript.blind_code}"):
        coding.save_code(mine, utterance_id=foreign.pk, code="GI", version=0, actor=coder)
    with pytest.raises(actions.ActionError, match="Utterance 999999999 is not part"):
        coding.save_code(mine, utterance_id=999999999, code="GI", version=0, actor=coder)
    assert Assignment.objects.get(pk=mine.pk).version == 0


@pytest.mark.django_db
def test_stale_version_is_refused_and_the_first_value_kept(coder, assignment):
    first = utterances_of(assignment)[0]
    tab_a, tab_b = fresh(assignment), fresh(assignment)  # two tabs, both loaded at version 0
    coding.save_code(tab_a, utterance_id=first.pk, code="SR", version=0, actor=coder)

    with pytest.raises(coding.StaleVersion) as info:
        coding.save_code(tab_b, utterance_id=first.pk, code="CR", version=0, actor=coder)
    assert info.value.current_version == 1
    assert "changed in another tab or device" in str(info.value)
    assert UtteranceCode.objects.get(assignment=assignment, utterance=first).code == "SR"
    assert Assignment.objects.get(pk=assignment.pk).version == 1
    assert AuditEvent.objects.filter(assignment=assignment).count() == 1
    with pytest.raises(coding.StaleVersion):
        coding.set_global(tab_b, scale="EMPATHY", value=3, version=0, actor=coder)
    with pytest.raises(coding.StaleVersion):
        coding.submit_assignment(tab_b, version=0, actor=coder)


@pytest.mark.django_db
def test_save_returns_the_volley_tally_with_merge_explanations(coder, assignment):
    # Find a volley with at least two utterances, code two reflections and a question in it.
    volley_utterances: dict[int, list[Utterance]] = {}
    for u in utterances_of(assignment):
        volley_utterances.setdefault(u.volley_id, []).append(u)
    volley = next(us for us in volley_utterances.values() if len(us) >= 2)
    result = coding.save_code(assignment, utterance_id=volley[0].pk, code="SR", version=0, actor=coder)
    assert result.tally.counts["SR"] == 1 and result.tally.merges == []
    result = coding.save_code(assignment, utterance_id=volley[1].pk, code="CR", version=1, actor=coder)
    assert result.tally.counts["CR"] == 1 and result.tally.counts["SR"] == 0
    assert result.tally.merges == ["2 reflections in one volley count once: CR because at least one is complex"]

    rows = {row.pk: row for row in coding_queries.volley_rows(assignment)}
    row = rows[volley[0].volley_id]
    assert [u.code for u in row.utterances[:2]] == ["SR", "CR"]
    assert row.counted == ["CR"]


@pytest.mark.django_db
def test_clear_code_puts_an_utterance_back_to_uncoded(coder, assignment):
    first = utterances_of(assignment)[0]
    coding.save_code(assignment, utterance_id=first.pk, code="AF", version=0, actor=coder)
    result = coding.clear_code(assignment, utterance_id=first.pk, version=1, actor=coder)
    assert (result.version, result.old, result.new) == (2, "AF", "")
    assert not UtteranceCode.objects.filter(assignment=assignment).exists()
    event = AuditEvent.objects.filter(assignment=assignment).last()
    assert (event.action, event.old, event.new) == ("code", "AF", "")


@pytest.mark.django_db
def test_set_global_validates_stores_and_clears(coder, assignment):
    result = coding.set_global(assignment, scale="EMPATHY", value=5, version=0, actor=coder)
    assert result.version == 1 and result.scale == "EMPATHY"
    assert GlobalRating.objects.get(assignment=assignment, scale="EMPATHY").value == 5
    coding.set_global(assignment, scale="EMPATHY", value=2, version=1, actor=coder)
    assert GlobalRating.objects.get(assignment=assignment, scale="EMPATHY").value == 2

    for bad, pattern in ((0, "between 1 and 5, got 0"), (6, "between 1 and 5, got 6"), (True, "whole number")):
        with pytest.raises(actions.ActionError, match=pattern):
            coding.set_global(assignment, scale="EMPATHY", value=bad, version=2, actor=coder)
    with pytest.raises(actions.ActionError, match="unknown MITI global scale 'WARMTH'"):
        coding.set_global(assignment, scale="WARMTH", value=3, version=2, actor=coder)

    coding.set_global(assignment, scale="EMPATHY", value=None, version=2, actor=coder)
    assert not GlobalRating.objects.filter(assignment=assignment).exists()
    trail = list(AuditEvent.objects.filter(assignment=assignment).values_list("action", "target", "old", "new"))
    assert trail == [
        ("global", "global:EMPATHY", "", "5"), ("global", "global:EMPATHY", "5", "2"),
        ("global", "global:EMPATHY", "2", ""),
    ]


@pytest.mark.django_db
def test_globals_start_unset(coder, assignment):
    assert coding_queries.global_values(assignment) == dict.fromkeys(miti.GLOBAL_KEYS)
    assert not GlobalRating.objects.exists()


@pytest.mark.django_db
def test_undo_steps_back_through_the_actors_trail(coder, assignment):
    first, second = utterances_of(assignment)[:2]
    coding.save_code(assignment, utterance_id=first.pk, code="Q", version=0, actor=coder)
    coding.save_code(assignment, utterance_id=first.pk, code="CR", version=1, actor=coder)
    coding.save_code(assignment, utterance_id=second.pk, code="GI", version=2, actor=coder)
    coding.set_global(assignment, scale="PARTNERSHIP", value=4, version=3, actor=coder)

    def codes():
        return dict(UtteranceCode.objects.filter(assignment=assignment).values_list("utterance_id", "code"))

    result = coding.undo_last(assignment, version=4, actor=coder)
    assert (result.scale, result.old, result.new, result.version) == ("PARTNERSHIP", "4", "", 5)
    assert not GlobalRating.objects.filter(assignment=assignment).exists()
    result = coding.undo_last(assignment, version=5, actor=coder)
    assert result.utterance_id == second.pk and codes() == {first.pk: "CR"}
    result = coding.undo_last(assignment, version=6, actor=coder)
    assert (result.old, result.new) == ("CR", "Q") and codes() == {first.pk: "Q"}
    # A new change after undos is undone first; then the undo continues further back.
    coding.save_code(assignment, utterance_id=second.pk, code="SEEK", version=7, actor=coder)
    coding.undo_last(assignment, version=8, actor=coder)
    assert codes() == {first.pk: "Q"}
    coding.undo_last(assignment, version=9, actor=coder)
    assert codes() == {}
    with pytest.raises(actions.ActionError, match="Nothing to undo"):
        coding.undo_last(assignment, version=10, actor=coder)
    assert Assignment.objects.get(pk=assignment.pk).version == 10  # the refused undo rolled back

    undo_events = AuditEvent.objects.filter(assignment=assignment, action="undo")
    assert list(undo_events.values_list("target", "old", "new")) == [
        ("global:PARTNERSHIP", "4", ""), (f"utterance:{second.pk}", "GI", ""), (f"utterance:{first.pk}", "CR", "Q"),
        (f"utterance:{second.pk}", "SEEK", ""), (f"utterance:{first.pk}", "Q", ""),
    ]


@pytest.mark.django_db
def test_undo_does_not_revert_another_actors_change(coder, coordinator, assignment):
    first = utterances_of(assignment)[0]
    coding.save_code(assignment, utterance_id=first.pk, code="GI", version=0, actor=coordinator)
    with pytest.raises(actions.ActionError, match="Nothing to undo"):
        coding.undo_last(assignment, version=1, actor=coder)
    assert UtteranceCode.objects.get(utterance=first, assignment=assignment).code == "GI"


@pytest.mark.django_db
def test_saving_the_same_value_bumps_the_version_but_writes_no_event(coder, assignment):
    first = utterances_of(assignment)[0]
    coding.save_code(assignment, utterance_id=first.pk, code="Q", version=0, actor=coder)
    result = coding.save_code(assignment, utterance_id=first.pk, code="Q", version=1, actor=coder)
    assert result.version == 2
    assert AuditEvent.objects.filter(assignment=assignment).count() == 1


@pytest.mark.django_db
def test_submit_is_refused_with_what_is_missing(coder, assignment):
    utterances = utterances_of(assignment)
    for u in utterances[1:]:
        coding.save_code(assignment, utterance_id=u.pk, code="NONE", version=assignment.version, actor=coder)
    coding.set_global(assignment, scale="CULTIVATING_CHANGE_TALK", value=3, version=assignment.version, actor=coder)
    coding.set_global(assignment, scale="SOFTENING_SUSTAIN_TALK", value=3, version=assignment.version, actor=coder)
    version = assignment.version

    with pytest.raises(actions.ActionError) as info:
        coding.submit_assignment(assignment, version=version, actor=coder)
    assert str(info.value) == (
        f"Cannot submit yet: 1 of {len(utterances)} utterances have no code yet (volley 1: utterance 1) — "
        "give each a code or \"No code\"; 2 global ratings are missing (Partnership, Empathy)."
    )
    row = Assignment.objects.get(pk=assignment.pk)
    assert (row.status, row.version, row.submitted_at) == ("in_progress", version, None)
    assert (assignment.status, assignment.version) == ("in_progress", version)
    assert not AuditEvent.objects.filter(action="submit").exists()


@pytest.mark.django_db
def test_submit_then_read_only_then_reopen_then_edit_again(coder, coordinator, assignment):
    code_everything(assignment, coder)
    rate_globals(assignment, coder)
    version = assignment.version
    submitted = coding.submit_assignment(assignment, version=version, actor=coder)
    row = Assignment.objects.get(pk=assignment.pk)
    assert (row.status, row.version) == ("submitted", version + 1)
    assert row.submitted_at is not None and submitted.status == "submitted"
    event = AuditEvent.objects.filter(assignment=assignment).last()
    assert (event.action, event.old, event.new, event.version) == ("submit", "in_progress", "submitted", version + 1)

    first = utterances_of(assignment)[0]
    with pytest.raises(coding.AssignmentReadOnly, match="read-only until a coordinator reopens it"):
        coding.save_code(assignment, utterance_id=first.pk, code="CR", version=version + 1, actor=coder)
    with pytest.raises(coding.AssignmentReadOnly):
        coding.set_global(assignment, scale="EMPATHY", value=1, version=version + 1, actor=coder)
    with pytest.raises(coding.AssignmentReadOnly):
        coding.undo_last(assignment, version=version + 1, actor=coder)
    with pytest.raises(coding.AssignmentReadOnly):
        coding.submit_assignment(assignment, version=version + 1, actor=coder)
    assert UtteranceCode.objects.get(assignment=assignment, utterance=first).code == "NONE"
    assert not coding_queries.is_editable(fresh(assignment))

    reopened = actions.reopen_assignment(fresh(assignment), actor=coordinator)
    assert (reopened.status, reopened.version) == ("in_progress", version + 2)
    assert coding_queries.is_editable(reopened)
    with pytest.raises(coding.StaleVersion):  # a tab still showing the submitted version
        coding.save_code(reopened, utterance_id=first.pk, code="CR", version=version + 1, actor=coder)
    coding.save_code(reopened, utterance_id=first.pk, code="CR", version=version + 2, actor=coder)
    assert UtteranceCode.objects.get(assignment=assignment, utterance=first).code == "CR"
    actions_trail = list(AuditEvent.objects.filter(assignment=assignment).values_list("action", flat=True))
    assert actions_trail[-3:] == ["submit", "reopen", "code"]


@pytest.mark.django_db
def test_round_without_globals_submits_on_codes_alone(study, coordinator, coder):
    build_round(study, coordinator, [coder], globals_rated=False, name="AnnoMI-like")
    assignment = Assignment.objects.filter(coder=coder).select_related("transcript", "coding_round").first()
    with pytest.raises(actions.ActionError, match="not rated in this round"):
        coding.set_global(assignment, scale="EMPATHY", value=3, version=0, actor=coder)
    code_everything(assignment, coder, code="Q")
    coding.submit_assignment(assignment, version=assignment.version, actor=coder)
    assert Assignment.objects.get(pk=assignment.pk).status == "submitted"
    assert coding_queries.assignment_progress(assignment).globals_total == 0


@pytest.mark.django_db
def test_closed_round_is_read_only(coder, assignment):
    CodingRound.objects.filter(pk=assignment.coding_round_id).update(status="closed")
    first = utterances_of(assignment)[0]
    with pytest.raises(coding.AssignmentReadOnly, match="round is closed"):
        coding.save_code(fresh(assignment), utterance_id=first.pk, code="CR", version=0, actor=coder)
    assert not coding_queries.is_editable(fresh(assignment))


@pytest.mark.django_db
def test_progress_and_sheet(coder, assignment):
    utterances = utterances_of(assignment)
    coding.save_code(assignment, utterance_id=utterances[0].pk, code="GI", version=0, actor=coder)
    coding.save_code(assignment, utterance_id=utterances[1].pk, code="NONE", version=1, actor=coder)
    coding.set_global(assignment, scale="EMPATHY", value=4, version=2, actor=coder)

    progress = coding_queries.assignment_progress(assignment)
    assert (progress.coded, progress.total, progress.globals_set, progress.globals_total) == (2, len(utterances), 1, 4)
    assert progress.percent == round(100 * 3 / (len(utterances) + 4))
    assert not progress.complete
    sheet = coding_queries.coding_sheet(assignment)
    assert sheet.progress == progress
    assert sheet.globals == {"CULTIVATING_CHANGE_TALK": None, "SOFTENING_SUSTAIN_TALK": None, "PARTNERSHIP": None,
                             "EMPATHY": 4}
    assert sheet.codes == {utterances[0].pk: "GI", utterances[1].pk: "NONE"}
    assert [v.number for v in sheet.volleys] == list(range(1, len(sheet.volleys) + 1))
    assert sheet.volleys[0].client_context  # the client turn is shown as context

    others = Assignment.objects.filter(coder=coder).exclude(pk=assignment.pk)
    all_progress = coding_queries.progress_for(Assignment.objects.filter(coder=coder))
    assert all_progress[assignment.pk] == progress
    assert all(all_progress[a.pk].coded == 0 for a in others)


@pytest.mark.django_db
def test_missing_for_submit_lists_volley_and_utterance_numbers(coder, assignment):
    missing = coding_queries.missing_for_submit(assignment)
    utterances = utterances_of(assignment)
    assert missing.total_utterances == len(utterances)
    assert missing.uncoded[0] == (1, 1)
    assert len(missing.uncoded) == len(utterances)
    assert missing.globals_missing == list(miti.GLOBAL_KEYS)
    assert not missing.complete


@pytest.mark.django_db(transaction=True)
def test_concurrent_saves_with_one_version_let_exactly_one_win(study, coordinator, coder):
    """Two requests racing on version 0: the row lock serialises them; the loser gets StaleVersion."""
    build_round(study, coordinator, [coder])
    assignment = Assignment.objects.filter(coder=coder).first()
    first = utterances_of(assignment)[0]
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def save(code: str) -> None:
        try:
            mine = Assignment.objects.select_related("transcript", "coding_round").get(pk=assignment.pk)
            barrier.wait()
            coding.save_code(mine, utterance_id=first.pk, code=code, version=0, actor=coder)
            outcomes[code] = "saved"
        except coding.StaleVersion:
            outcomes[code] = "stale"
        finally:
            connection.close()

    threads = [threading.Thread(target=save, args=(code,)) for code in ("SR", "CR")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes.values()) == ["saved", "stale"]
    winner = next(code for code, outcome in outcomes.items() if outcome == "saved")
    assert UtteranceCode.objects.get(assignment=assignment, utterance=first).code == winner
    assert Assignment.objects.get(pk=assignment.pk).version == 1
    assert AuditEvent.objects.filter(assignment=assignment).count() == 1

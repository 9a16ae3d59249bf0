"""Adjudication: side-by-side comparison, consensus pre-filled where coders agree, recorded and
submitted under the coders' version rule, used by nobody's queue; pages and personas."""

from __future__ import annotations

import pytest

from annotation import actions, queries
from annotation.models import Assignment, AuditEvent, GlobalRating, Utterance, UtteranceCode
from annotation.queries import adjudication as adjudication_queries

pytestmark = pytest.mark.django_db

SCALES = ("CULTIVATING_CHANGE_TALK", "SOFTENING_SUSTAIN_TALK", "PARTNERSHIP", "EMPATHY")


@pytest.fixture
def coding_round(study, demo_dialogues_file, coder, coder2, coordinator):
    actions.import_dialogues(study, path=str(demo_dialogues_file))
    source = actions.ensure_reference_source(study)
    return actions.create_coding_round(
        study, name="Pilot", sources=[source], coders=[coder, coder2], overlap=1.0, seed=7, created_by=coordinator
    )


@pytest.fixture
def transcript(coding_round):
    """The double-coded transcript with the most utterances (at least 3, for a mixed comparison)."""
    candidates = {a.transcript for a in coding_round.assignments.all()}
    best = max(candidates, key=lambda t: Utterance.objects.filter(volley__transcript=t).count())
    assert Utterance.objects.filter(volley__transcript=best).count() >= 3
    return best


def _units(transcript) -> list[int]:
    return list(
        Utterance.objects.filter(volley__transcript=transcript)
        .order_by("volley__index", "index")
        .values_list("id", flat=True)
    )


def _code(assignment: Assignment, codes: list[str], globals_: tuple[int, ...], submit: bool = True) -> None:
    actor = assignment.coder
    for uid, code in zip(_units(assignment.transcript), codes, strict=True):
        actions.save_code(assignment, utterance_id=uid, code=code, version=assignment.version, actor=actor)
    for scale, value in zip(SCALES, globals_, strict=True):
        actions.set_global(assignment, scale=scale, value=value, version=assignment.version, actor=actor)
    if submit:
        actions.submit_assignment(assignment, version=assignment.version, actor=actor)


@pytest.fixture
def both_submitted(coding_round, transcript, coder, coder2):
    """coder: all Q except utterance 2 = SR; coder2: all Q except utterance 2 = CR and the last = NONE."""
    n = len(_units(transcript))
    first = ["Q"] * n
    first[1] = "SR"
    second = ["Q"] * n
    second[1] = "CR"
    second[-1] = "NONE"
    _code(coding_round.assignments.get(transcript=transcript, coder=coder), first, (3, 4, 4, 2))
    _code(coding_round.assignments.get(transcript=transcript, coder=coder2), second, (3, 5, 4, 3))
    return n


def test_items_need_two_submitted_codings(coding_round, transcript, coder, coder2):
    items = {i.transcript.pk: i for i in adjudication_queries.adjudication_items(coding_round)}
    assert len(items) == 4 and all(not i.ready for i in items.values())
    n = len(_units(transcript))
    _code(coding_round.assignments.get(transcript=transcript, coder=coder), ["Q"] * n, (3, 3, 3, 3))
    assert not {i.transcript.pk: i for i in adjudication_queries.adjudication_items(coding_round)}[transcript.pk].ready
    with pytest.raises(actions.ActionError, match="at least two submitted codings"):
        actions.start_consensus(coding_round, transcript, actor=coder)
    assert not Assignment.objects.filter(kind="consensus").exists()
    _code(coding_round.assignments.get(transcript=transcript, coder=coder2), ["Q"] * n, (3, 3, 3, 4))
    item = {i.transcript.pk: i for i in adjudication_queries.adjudication_items(coding_round)}[transcript.pk]
    assert (item.ready, item.submitted, item.utterances, item.utterance_disagreements, item.global_disagreements) == (
        True, 2, n, 0, 1
    )


def test_compare_side_by_side(coding_round, transcript, both_submitted):
    cmp = adjudication_queries.compare(coding_round, transcript)
    assert [a.coder.username for a in cmp.codings] == ["coder", "coder2"]
    rows = [u for v in cmp.volleys for u in v.utterances]
    assert len(rows) == both_submitted
    assert rows[1].codes == ["SR", "CR"] and not rows[1].agreed
    assert rows[-1].codes == ["Q", "NONE"] and not rows[-1].agreed
    assert rows[0].codes == ["Q", "Q"] and rows[0].agreed
    assert cmp.utterance_disagreements == 2
    assert [(g.scale.key, g.values, g.agreed) for g in cmp.globals] == [
        ("CULTIVATING_CHANGE_TALK", [3, 3], True),
        ("SOFTENING_SUSTAIN_TALK", [4, 5], False),
        ("PARTNERSHIP", [4, 4], True),
        ("EMPATHY", [2, 3], False),
    ]
    assert cmp.global_disagreements == 2


def test_start_consensus_prefills_agreement_and_is_idempotent(coding_round, transcript, both_submitted, coordinator):
    consensus = actions.start_consensus(coding_round, transcript, actor=coordinator)
    assert (consensus.kind, consensus.coder, consensus.status) == ("consensus", coordinator, "in_progress")
    prefilled = dict(UtteranceCode.objects.filter(assignment=consensus).values_list("utterance_id", "code"))
    units = _units(transcript)
    assert prefilled == {uid: "Q" for uid in units[:1] + units[2:-1]}
    assert dict(GlobalRating.objects.filter(assignment=consensus).values_list("scale", "value")) == {
        "CULTIVATING_CHANGE_TALK": 3, "PARTNERSHIP": 4
    }
    again = actions.start_consensus(coding_round, transcript, actor=coordinator)
    assert again.pk == consensus.pk
    assert Assignment.objects.filter(kind="consensus").count() == 1
    assert UtteranceCode.objects.filter(assignment=consensus).count() == both_submitted - 2
    # The consensus is nobody's coding queue, not even the coordinator's.
    assert not queries.assignments_for(coordinator).exists()
    # Adjudicating does not touch the coders' work.
    assert set(
        UtteranceCode.objects.filter(assignment__kind="coding", utterance_id=units[1]).values_list("code", flat=True)
    ) == {"SR", "CR"}


def test_record_and_submit_consensus(coding_round, transcript, both_submitted, coordinator, coder):
    consensus = actions.start_consensus(coding_round, transcript, actor=coordinator)
    units = _units(transcript)
    actions.record_consensus_code(consensus, utterance_id=units[1], code="CR", version=0, actor=coordinator)
    with pytest.raises(actions.ActionError, match="Cannot submit yet"):
        actions.submit_consensus(consensus, version=consensus.version, actor=coordinator)
    actions.record_consensus_code(
        consensus, utterance_id=units[-1], code="Q", version=consensus.version, actor=coordinator
    )
    actions.record_consensus_global(
        consensus, scale="SOFTENING_SUSTAIN_TALK", value=4, version=consensus.version, actor=coordinator
    )
    with pytest.raises(actions.ActionError, match="Empathy"):
        actions.submit_consensus(consensus, version=consensus.version, actor=coordinator)
    actions.record_consensus_global(consensus, scale="EMPATHY", value=3, version=consensus.version, actor=coordinator)
    # A stale version is refused and the stored value stays.
    with pytest.raises(actions.StaleVersion):
        actions.record_consensus_code(consensus, utterance_id=units[1], code="SR", version=1, actor=coordinator)
    assert UtteranceCode.objects.get(assignment=consensus, utterance_id=units[1]).code == "CR"
    actions.submit_consensus(consensus, version=consensus.version, actor=coordinator)
    consensus.refresh_from_db()
    assert consensus.status == "submitted"
    with pytest.raises(actions.AssignmentReadOnly):
        actions.record_consensus_code(
            consensus, utterance_id=units[1], code="SR", version=consensus.version, actor=coordinator
        )
    # Only consensus assignments go through these actions.
    coding = coding_round.assignments.get(transcript=transcript, coder=coder)
    with pytest.raises(actions.ActionError, match="Only a consensus"):
        actions.record_consensus_code(coding, utterance_id=units[0], code="SR", version=coding.version, actor=coder)
    trail = list(AuditEvent.objects.filter(assignment=consensus).values_list("action", "target", "old", "new"))
    assert trail[0][:2] == ("consensus", "start")
    assert trail[1] == ("code", f"utterance:{units[1]}", "", "CR")
    assert trail[-1][0] == "submit"


# --- pages -----------------------------------------------------------------------------------------


def _url(coding_round, transcript, tail: str = "") -> str:
    return f"/studies/smoking/rounds/{coding_round.pk}/adjudication/{transcript.pk}/{tail}"


def test_adjudication_pages(client_for, coordinator, coding_round, transcript, both_submitted):
    client = client_for(coordinator)
    listing = client.get(f"/studies/smoking/rounds/{coding_round.pk}/adjudication/")
    assert listing.status_code == 200
    assert _url(coding_round, transcript) in listing.content.decode()
    page = client.get(_url(coding_round, transcript))
    body = page.content.decode()
    assert page.status_code == 200
    assert "2 utterances with disagreement" in body and "2 globals with disagreement" in body
    assert body.count('class="disagree"') == 4  # 2 utterances + 2 globals highlighted
    assert "Start consensus coding" in body

    response = client.post(_url(coding_round, transcript, "start/"))
    assert response.status_code == 302
    consensus = Assignment.objects.get(kind="consensus", transcript=transcript)
    units = _units(transcript)
    body = client.get(_url(coding_round, transcript)).content.decode()
    assert 'name="version" value="0"' in body and "Submit consensus" in body

    # One POST per utterance; HTMX gets the board partial back.
    response = client.post(
        _url(coding_round, transcript, "save/"), {"version": 0, "utterance": units[1], "code": "SR"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<div id="board">')
    assert 'name="version" value="1"' in response.content.decode()
    # A second tab still on version 0: 409, the message, and the first value kept.
    response = client.post(_url(coding_round, transcript, "save/"), {"version": 0, "utterance": units[1], "code": "CR"})
    assert response.status_code == 409
    assert "changed in another tab or device" in response.content.decode()
    assert UtteranceCode.objects.get(assignment=consensus, utterance_id=units[1]).code == "SR"

    client.post(_url(coding_round, transcript, "save/"), {"version": 1, "utterance": units[-1], "code": "NONE"})
    client.post(_url(coding_round, transcript, "save/"), {"version": 2, "scale": "SOFTENING_SUSTAIN_TALK", "value": 5})
    response = client.post(_url(coding_round, transcript, "save/"), {"version": 3, "submit": "1"}, follow=True)
    assert "Cannot submit yet" in response.content.decode() and "Empathy" in response.content.decode()
    client.post(_url(coding_round, transcript, "save/"), {"version": 3, "scale": "EMPATHY", "value": 2})
    response = client.post(_url(coding_round, transcript, "save/"), {"version": 4, "submit": "1"}, follow=True)
    assert "Consensus submitted." in response.content.decode()
    consensus.refresh_from_db()
    assert consensus.status == "submitted"
    final = dict(UtteranceCode.objects.filter(assignment=consensus).values_list("utterance_id", "code"))
    assert final[units[1]] == "SR" and final[units[-1]] == "NONE" and len(final) == both_submitted
    # Submitted: read-only, the page offers to view/reopen instead of forms.
    body = client.get(_url(coding_round, transcript)).content.decode()
    assert "Submit consensus" not in body and f"/assignments/{consensus.pk}/" in body
    response = client.post(_url(coding_round, transcript, "save/"), {"version": 5, "utterance": units[1], "code": "Q"})
    assert response.status_code == 302
    assert UtteranceCode.objects.get(assignment=consensus, utterance_id=units[1]).code == "SR"


def test_adjudication_personas(client_for, coder, outsider, coding_round, transcript, both_submitted):
    for user, status in ((coder, 403), (outsider, 404)):
        client = client_for(user)
        assert client.get(_url(coding_round, transcript)).status_code == status
        assert client.post(_url(coding_round, transcript, "start/")).status_code == status
    assert not Assignment.objects.filter(kind="consensus").exists()


def test_transcript_outside_the_round_is_404(client_for, coordinator, coding_round, study):
    response = client_for(coordinator).get(f"/studies/smoking/rounds/{coding_round.pk}/adjudication/999999/")
    assert response.status_code == 404

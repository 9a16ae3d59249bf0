"""Assisted rounds: a coder sees the machine's suggested code, accepts it with one key (or picks
another), and the code records whether it was an accepted suggestion. A study round never shows one,
and a suggestion never reveals the transcript's source (docs/blinding.md)."""

from __future__ import annotations

import re

import pytest

from annotation import actions
from annotation.models import Assignment, Utterance, UtteranceCode
from evaluation import machine_agreement
from inference.coders import actions as coder_actions
from inference.coders.actions import CODES
from inference.models import MachineCoder, RegisteredModel
from tests.annotation.test_blinding_side_channels import _Attributes, best_split_accuracy
from tests.evaluation.db_helpers import coded_demo_study

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
MODEL_NAME = "secret-llm-7b"
CODER_NAME = "gpt-coder-visible-only-to-coordinators"


def machine_suggesting(study, coding_round, code_of) -> MachineCoder:
    """An LLM machine coder whose codings (``code_of(utterance)``) are written through the machine action."""
    model = RegisteredModel.objects.create(name=MODEL_NAME, backend="openai", base_model="m", server_url="http://x/v1")
    machine = MachineCoder.objects.create(
        study=study, name=CODER_NAME, kind=MachineCoder.Kind.LLM, model=model, status=MachineCoder.Status.READY,
        service_user=coder_actions._service_user(study, CODER_NAME),
    )
    actions.add_machine_coding(coding_round, machine.service_user)
    for assignment in Assignment.objects.filter(coding_round=coding_round, coder=machine.service_user):
        utterances = Utterance.objects.filter(volley__transcript_id=assignment.transcript_id)
        actions.record_machine_codes(assignment, {u.pk: code_of(u) for u in utterances})
    return machine


@pytest.fixture
def assisted(study, coordinator, coder, coder2, demo_dialogues_file):
    coded = coded_demo_study(study, coordinator, [coder, coder2], demo_dialogues_file, overlap=1.0)
    sources = list(coded.coding_round.sources.all())
    round_ = actions.create_coding_round(
        study, name="Assisted", sources=sources, coders=[coder, coder2], overlap=1.0, seed=3,
        created_by=coordinator, purpose="assisted",
    )
    machine = machine_suggesting(study, round_, lambda u: "SR" if u.index == 0 else "Q")
    return coded, round_, machine


def test_coder_sees_suggestions_accepts_one_and_the_code_records_it(assisted, coder, client_for):
    coded, round_, machine = assisted
    assignment = Assignment.objects.filter(coding_round=round_, coder=coder).order_by("position").first()
    client = client_for(coder)
    page = client.get(f"/code/{assignment.pk}/").content.decode()
    assert 'data-suggestion="SR"' in page and "Suggested code" in page and 'data-accept="1"' in page
    # Accept on utterance 1 (its suggestion), choose another on utterance 2, "accept" a code that is not
    # the suggestion on utterance 3: only the first is recorded as an accepted suggestion.
    url = f"/code/{assignment.pk}/code/"
    version = assignment.version
    for number, code, accept in ((1, "SR", "1"), (2, "CR", ""), (3, "GI", "1")):
        response = client.post(url, {"utterance": number, "code": code, "version": version, "accept": accept}, **HX)
        assert response.status_code == 200, response.content
        version = int(response["X-Assignment-Version"])
    rows = list(
        UtteranceCode.objects.filter(assignment=assignment).order_by("utterance__volley__index", "utterance__index")
        .values_list("code", "suggestion_accepted")
    )
    assert rows[:3] == [("SR", True), ("CR", False), ("GI", False)]
    page = client.get(f"/code/{assignment.pk}/").content.decode()
    assert page.count('data-accepted="1"') == 1
    # Results compare assisted and unassisted coders, with the share of accepted suggestions: once the
    # coder accepts every other suggestion and submits, the assisted group is there.
    groups = {g.group: g for g in machine_agreement.assisted_groups(machine, round_)}
    assert set(groups) == {"unassisted"}  # the assisted coding is not submitted yet
    assignment.refresh_from_db()
    utterances = Utterance.objects.filter(volley__transcript=assignment.transcript).order_by("volley__index", "index")
    for u in list(utterances)[3:]:
        version = actions.save_code(assignment, utterance_id=u.pk, code="SR" if u.index == 0 else "Q",
                                    version=version, actor=coder, accept_suggestion=True).version
    for scale in ("CULTIVATING_CHANGE_TALK", "SOFTENING_SUSTAIN_TALK", "PARTNERSHIP", "EMPATHY"):
        version = actions.set_global(assignment, scale=scale, value=3, version=version, actor=coder).version
    actions.submit_assignment(assignment, version=version, actor=coder)
    groups = {g.group: g for g in machine_agreement.assisted_groups(machine, round_)}
    n = utterances.count()
    assert groups["assisted"].codes == n and groups["assisted"].accepted == n - 2
    assert groups["unassisted"].codes == 2 * UtteranceCode.objects.filter(
        assignment__coding_round=coded.coding_round, assignment__coder=coder).count()


def test_a_study_round_never_shows_suggestions(assisted, coder, client_for):
    coded, _round, machine = assisted
    actions.add_machine_coding(coded.coding_round, machine.service_user)
    for a in Assignment.objects.filter(coding_round=coded.coding_round, coder=machine.service_user):
        actions.record_machine_codes(a, {u.pk: "SR" for u in Utterance.objects.filter(volley__transcript=a.transcript)})
    assignment = Assignment.objects.filter(coding_round=coded.coding_round, coder=coder).first()
    actions.reopen_assignment(assignment, actor=None)
    page = client_for(coder).get(f"/code/{assignment.pk}/").content.decode()
    assert "data-suggestion" not in page and "Suggested code" not in page
    # "accept" in a study round records nothing.
    assignment.refresh_from_db()
    utterance = Utterance.objects.filter(volley__transcript=assignment.transcript).order_by("volley__index", "index")[0]
    actions.save_code(assignment, utterance_id=utterance.pk, code="SR", version=assignment.version, actor=coder,
                      accept_suggestion=True)
    assert not UtteranceCode.objects.get(assignment=assignment, utterance=utterance).suggestion_accepted


def test_suggestions_never_reveal_the_source(assisted, coder, coder2, client_for):
    """No machine, model or source name reaches a coder; suggestion markup carries a code key only; and,
    as in the side-channel test, no number in the page's attributes tells reference from generated."""
    coded, round_, machine = assisted
    forbidden = [MODEL_NAME, CODER_NAME, machine.service_user.username, coded.generated.label, "machine"]
    samples: dict[str, list[tuple[float, str]]] = {}
    for person in (coder, coder2):
        client = client_for(person)
        queue = client.get("/code/").content.decode()
        assert not [f for f in forbidden if f in queue]
        for assignment in Assignment.objects.filter(coding_round=round_, coder=person).select_related("transcript__source"):
            page = client.get(f"/code/{assignment.pk}/").content.decode()
            leaked = [f for f in forbidden if f in page]
            assert not leaked, leaked
            machine_pk = Assignment.objects.get(coding_round=round_, coder=machine.service_user,
                                                transcript=assignment.transcript).pk
            assert f"/code/{machine_pk}/" not in page
            parser = _Attributes()
            parser.feed(page)
            for field, value in parser.fields:
                samples.setdefault(field, []).append((value, assignment.transcript.source.kind))
                if "suggestion" in field or "accept" in field:
                    # The accept control names only the coder's own assignment and constants.
                    assert value in (1, assignment.pk), (field, value)
            suggested = set(re.findall(r'data-suggestion="([^"]*)"', page))
            assert suggested and suggested <= set(CODES)
    # So the suggestion markup adds no number of its own: the coder's own assignment id is in every form
    # of the page already (its source-independence is test_blinding_side_channels' on 80 transcripts),
    # and the constants carry nothing.
    constants = [values for field, values in samples.items()
                 if ("suggestion" in field or "accept" in field) and "formaction" not in field]
    assert constants and all(best_split_accuracy(values) == 0.5 for values in constants)
    # A machine coder's service user cannot open a page at all.
    assert not client_for(coder).get("/code/").content.decode().count(machine.service_user.username)

"""Studies, memberships and splits: actions and pages, with personas."""

from __future__ import annotations

import pytest

from annotation import actions
from annotation.models import Dialogue, Membership, Study

pytestmark = pytest.mark.django_db


@pytest.fixture
def imported(study, demo_dialogues_file):
    return actions.import_dialogues(study, path=str(demo_dialogues_file))


def test_creator_becomes_coordinator(coordinator):
    study = actions.create_study(name="Diet", change_goal="eat less sugar", created_by=coordinator)
    assert study.slug == "diet"
    assert study.instrument_version == "MITI 4.2.1"
    assert Membership.objects.get(study=study, user=coordinator).role == "coordinator"


def test_change_goal_is_required(coordinator):
    with pytest.raises(actions.ActionError, match="change goal"):
        actions.create_study(name="X", change_goal="  ", created_by=coordinator)
    assert not Study.objects.filter(name="X").exists()


def test_last_coordinator_cannot_be_removed(study):
    with pytest.raises(actions.ActionError, match="at least one coordinator"):
        actions.remove_membership(study, "coordinator")
    assert study.memberships.filter(role="coordinator").count() == 1


def test_demo_import_counts(study, imported):
    assert imported.dialogue_count == 8
    assert Dialogue.objects.filter(study=study, split="test").count() == 4
    assert imported.round_count == sum(d.round_count for d in Dialogue.objects.filter(study=study))


def test_random_split_is_seeded_and_recorded(study, imported):
    counts = actions.split_randomly(study, n_test=3, n_train=4, seed=7)
    assert counts == {"test": 3, "train": 4, "unused": 1}
    first = sorted(Dialogue.objects.filter(study=study, split="test").values_list("external_id", flat=True))
    actions.split_randomly(study, n_test=3, n_train=4, seed=7)
    again = sorted(Dialogue.objects.filter(study=study, split="test").values_list("external_id", flat=True))
    assert first == again
    study.refresh_from_db()
    assert study.split_info["seed"] == 7 and study.split_info["method"] == "random"


def test_split_by_unknown_ids_changes_nothing(study, imported):
    before = dict(Dialogue.objects.filter(study=study).values_list("external_id", "split"))
    with pytest.raises(actions.ActionError, match="Unknown dialogue ids: nope"):
        actions.split_by_ids(study, split="test", external_ids=["demo-zh-3", "nope"])
    assert dict(Dialogue.objects.filter(study=study).values_list("external_id", "split")) == before


def test_study_list_shows_only_own_studies(client_for, coder, study, other_study):
    response = client_for(coder).get("/studies/")
    assert response.status_code == 200
    assert b"Smoking cessation" in response.content
    assert b"Other" not in response.content


def test_study_detail_counts_for_coordinator(client_for, coordinator, study, imported):
    response = client_for(coordinator).get("/studies/smoking/")
    assert response.status_code == 200
    assert response.context["counts"]["dialogues"] == 8
    assert response.context["counts"]["test"] == 4


@pytest.mark.parametrize("url", ["/studies/smoking/", "/studies/smoking/members/", "/studies/smoking/import/",
                                 "/studies/smoking/split/", "/studies/smoking/dialogues/"])
def test_outsider_gets_404(client_for, outsider, study, url):
    assert client_for(outsider).get(url).status_code == 404


@pytest.mark.parametrize("url", ["/studies/smoking/members/", "/studies/smoking/import/",
                                 "/studies/smoking/split/", "/studies/smoking/dialogues/"])
def test_coder_cannot_manage(client_for, coder, study, url):
    assert client_for(coder).get(url).status_code == 403


def test_coder_cannot_add_members(client_for, coder, study, outsider):
    response = client_for(coder).post("/studies/smoking/members/", {"username": "outsider", "role": "coder"})
    assert response.status_code == 403
    assert not Membership.objects.filter(study=study, user=outsider).exists()


def test_coordinator_adds_member(client_for, coordinator, study, outsider):
    response = client_for(coordinator).post("/studies/smoking/members/", {"username": "outsider", "role": "coder"})
    assert response.status_code == 302
    assert Membership.objects.get(study=study, user=outsider).role == "coder"


def test_anonymous_is_sent_to_login(client, study):
    response = client.get("/studies/smoking/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_html_in_dialogue_text_is_escaped(client_for, coordinator, study, tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(
        '{"external_id": "xss", "turns": [{"speaker": "client", "text": "<script>alert(1)</script>"},'
        ' {"speaker": "counselor", "text": "<b>hi</b>"}]}\n',
        encoding="utf-8",
    )
    actions.import_dialogues(study, path=str(path))
    dialogue = Dialogue.objects.get(study=study, external_id="xss")
    assert dialogue.turns.first().text == "<script>alert(1)</script>"
    body = client_for(coordinator).get(f"/studies/smoking/dialogues/{dialogue.pk}/").content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body

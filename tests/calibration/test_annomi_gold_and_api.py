"""AnnoMI-full as a gold set, a calibration round of three of its transcripts end to end, and the API.

The real file is read from the shared data folder (``tests.conftest.shared_data``: skipped without it).
AnnoMI has no globals and only part of the MITI codes: those figures are "not estimable" and the
proficiency says which codes it covers.
"""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from annotation import actions
from annotation.models import Assignment, CodingRound, GoldCode, GoldSet, GoldTranscript
from tests.calibration.helpers import code_assignment, gold_codes, gold_globals, make_gold_set
from tests.conftest import shared_data

pytestmark = pytest.mark.django_db


def test_annomi_full_as_gold_and_a_calibration_round_of_three(client_for, study, coordinator, coder):
    path = shared_data("AnnoMI", "AnnoMI-full.csv")
    call_command("import_annomi_labels", study.slug, str(path), "--gold-set", "AnnoMI gold", "--gold-limit", "3",
                 "--user", "coordinator")
    gold_set = GoldSet.objects.get(study=study, name="AnnoMI gold")
    golds = actions.current_golds(gold_set)
    assert len(golds) == 3 and all(g.origin == "imported" and not g.globals_rated for g in golds)
    calibration = actions.create_calibration_round(study, name="AnnoMI calibration", golds=golds, coders=[coder],
                                                   created_by=coordinator)
    assert calibration.globals_rated is False
    client = client_for(coder)
    for a in Assignment.objects.filter(coding_round=calibration).order_by("position"):
        truth = list(GoldCode.objects.filter(gold__uses__assignment=a, additional=False)
                     .order_by("utterance__volley__index", "utterance__index").values_list("code", flat=True))
        version = 0
        for number, code in enumerate(truth, start=1):
            # the coder disagrees on every fifth utterance: Persuade, a code AnnoMI never uses
            sent = "PERSUADE" if number % 5 == 0 else code
            response = client.post(f"/code/{a.pk}/code/", {"utterance": number, "code": sent, "version": version},
                                   HTTP_HX_REQUEST="true")
            assert response.status_code == 200, response.content
            version = int(response["X-Assignment-Version"])
        assert client.post(f"/code/{a.pk}/submit/", {"version": version}).status_code == 302
        page = client.get(f"/code/{a.pk}/").content.decode()
        agreed = len(truth) - len(truth) // 5
        assert f"You agree with the gold code on {agreed} of {len(truth)} utterances" in page
        assert "globals are not compared" in page
    body = client_for(coordinator).get(f"/studies/{study.slug}/calibration/").content.decode()
    row = re.search(r'<tr data-coder="coder">.*?</tr>', body, re.S).group(0)
    assert "PERSUADE" not in row and "Q" in row  # the codes the gold covers
    token = actions.create_token(coordinator, "api")[1]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    (p,) = [r for r in api.get(f"/api/studies/{study.slug}/proficiency/").json()["results"] if r["coder"] == "coder"]
    assert p["calibration_codings"] == 3 and p["globals_within_one"] is None
    assert "PERSUADE" not in p["covered_codes"] and {"Q", "SR"} <= set(p["covered_codes"])
    assert p["kappa"]["value"] is not None and 0 < p["kappa"]["value"] < 1
    (persuade,) = [k for k in p["per_code"] if k["code"] == "PERSUADE"]
    assert persuade["kappa"]["status"] == "not_estimable" and persuade["n_coder"] > 0
    assert {c["name"]: c["status"] for c in p["checks"]}["globals_within_one"] == "not_estimable"


def test_api_gold_sets_results_proficiency_and_drift(study, coordinator, coder, coder2):
    golds = make_gold_set(study, coordinator, [coder, coder2], n=2)
    round_ = actions.create_calibration_round(study, name="Cal", golds=golds, coders=[coder], created_by=coordinator)
    for a in Assignment.objects.filter(coding_round=round_):
        code_assignment(a, gold_codes(a.transcript), gold_globals(a.transcript), coder)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {actions.create_token(coordinator, 'api')[1]}")
    sets = api.get(f"/api/studies/{study.slug}/gold-sets/").json()["results"]
    assert [s["name"] for s in sets] == ["Gold A"] and len(sets[0]["golds"]) == 2
    results = api.get(f"/api/studies/{study.slug}/calibration/results/").json()["results"]
    assert len(results) == 2 and all(r["percent_agreement"] == 1.0 and r["kappa"]["value"] == 1.0 for r in results)
    (p,) = [r for r in api.get(f"/api/studies/{study.slug}/proficiency/").json()["results"] if r["coder"] == "coder"]
    assert p["eligible"] is True and p["globals_within_one"] == 1.0
    assert api.get(f"/api/studies/{study.slug}/drift/").json()["results"] == []
    created = api.post(f"/api/studies/{study.slug}/gold-sets/", {"name": "Second"}, format="json")
    assert created.status_code == 201
    refused = api.post(f"/api/studies/{study.slug}/gold-sets/", {"name": "Shared", "site_wide": True}, format="json")
    assert refused.status_code == 400 and "staff" in refused.content.decode()
    consensus = Assignment.objects.filter(kind="consensus").first()
    marked = api.post(f"/api/studies/{study.slug}/gold-sets/{created.json()['id']}/golds/",
                      {"assignment": consensus.pk}, format="json")
    assert marked.status_code == 201 and marked.json()["version"] == 1
    assert GoldTranscript.objects.filter(gold_set__name="Second").count() == 1
    coder_api = APIClient()
    coder_api.credentials(HTTP_AUTHORIZATION=f"Bearer {actions.create_token(coder, 'api')[1]}")
    for url in ("gold-sets/", "calibration/results/", "proficiency/", "drift/"):
        assert coder_api.get(f"/api/studies/{study.slug}/{url}").status_code == 403
    assert CodingRound.objects.get(pk=round_.pk).purpose == "calibration"

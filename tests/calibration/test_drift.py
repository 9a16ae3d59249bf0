"""Seeded gold transcripts (docs/calibration.md, "Drift"): the coder cannot tell them from study
transcripts, they never enter study results, and a coder's falling agreement raises an alert.

The blinding check is the one of tests/annotation/test_blinding_side_channels.py: every orderable value
a coder receives (page, partial, API workspace and saves, both queues) is a field; no field may
separate seeded gold from study transcripts with a balanced accuracy above 0.6.
"""

from __future__ import annotations

import re
from collections import defaultdict

import pytest
from rest_framework.test import APIClient

from annotation import actions
from annotation.models import Assignment, GoldAssignment
from evaluation import calibration
from evaluation.exports import code_rows
from evaluation.reliability_data import study_reliability
from evaluation.summaries import load_summaries
from tests.annotation.test_blinding_side_channels import (
    LIMIT,
    _Attributes,
    best_split_accuracy,
    json_fields,
    page_fields,
)
from tests.calibration.helpers import (
    code_assignment,
    gold_codes,
    gold_globals,
    make_gold_set,
    make_transcripts,
    noisy,
)

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def _seeded_round(study, coordinator, coders, *, n_gold=8, n_study=24, rate=0.3, **shape):
    # Gold first, then the study transcripts: database ids separate them perfectly (a leak would show).
    golds = make_gold_set(study, coordinator, list(coders), n=n_gold, **shape)
    transcripts = make_transcripts(study, n_study, label="Model run", kind="generated", prefix="g", **shape)
    round_ = actions.create_coding_round(study, name="Spring round", sources=[transcripts[0].source], coders=coders,
                                         overlap=1.0, seed=11, gold_set=golds[0].gold_set, gold_rate=rate)
    return golds, round_


def test_seeded_gold_is_not_distinguishable_by_the_coder(client_for, study, coordinator, coder, coder2):
    # As many gold as study transcripts in each queue (40 and 40, as in the side-channel test), small ones.
    golds, round_ = _seeded_round(study, coordinator, [coder, coder2], n_gold=40, n_study=40, rate=1.0,
                                  volleys=2, per_volley=2)
    seeded = set(GoldAssignment.objects.filter(seeded=True).values_list("assignment_id", flat=True))
    assert len(seeded) == 2 * 40
    label_of = {a.pk: ("gold" if a.pk in seeded else "study")
                for a in Assignment.objects.filter(coding_round=round_)}
    ranks = {a.transcript.blind_code: 0 for a in Assignment.objects.filter(coding_round=round_)}
    ranks = {code: rank for rank, code in enumerate(sorted(ranks))}
    samples: dict[str, list[tuple[float, str]]] = defaultdict(list)

    def relabel(values):  # the side-channel helper classifies "reference" against anything else
        return [(v, "reference" if label == "gold" else "generated") for v, label in values]

    for user in (coder, coder2):
        client = client_for(user)
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {actions.create_token(user, 'blind')[1]}")
        for a in Assignment.objects.filter(coding_round=round_, coder=user).order_by("position"):
            label = label_of[a.pk]
            page = client.get(f"/code/{a.pk}/")
            assert "gold" not in page.content.decode().lower()
            collected = page_fields("page", page, ranks)
            partial = client.post(f"/code/{a.pk}/code/", {"utterance": 1, "code": "SR", "version": 0}, **HX)
            collected += page_fields("partial", partial, ranks)
            body = api.get(f"/api/assignments/{a.pk}/")
            assert "gold" not in body.content.decode().lower() and "in_results" not in body.content.decode()
            json_fields(body.json(), "api workspace", collected, ranks)
            saved = api.post(f"/api/assignments/{a.pk}/codes/", {"utterance": 2, "code": "Q", "version": 1},
                             format="json")
            assert saved.status_code == 200, saved.content
            json_fields(saved.json(), "api saved", collected, ranks)
            for name, value in collected:
                samples[name].append((value, label))
        rows = re.findall(r'<tr class="queue-row.*?</tr>', client.get("/code/").content.decode(), re.S)
        for row in rows:
            pk = int(re.search(r'href="/code/(\d+)/"', row).group(1))
            if pk not in label_of:
                continue  # the gold's own base round, coded earlier by the same coders
            parser = _Attributes()
            parser.feed(row)
            for name, value in parser.fields:
                samples[f"queue {name}"].append((value, label_of[pk]))
        for entry in api.get("/api/queue/?limit=500").json()["results"]:
            if entry["id"] not in label_of:
                continue
            collected = []
            json_fields(entry, "api queue", collected, ranks)
            for name, value in collected:
                samples[name].append((value, label_of[entry["id"]]))

    accuracy = {name: best_split_accuracy(relabel(values)) for name, values in samples.items()}
    for expected in ("api workspace.id", "api queue.position", "page coding-data.assignment"):
        assert expected in accuracy
    leaking = {name: round(value, 3) for name, value in accuracy.items() if value > LIMIT}
    assert leaking == {}, leaking


def test_seeded_gold_codings_never_enter_study_results(study, coordinator, coder, coder2, tmp_path):
    golds, round_ = _seeded_round(study, coordinator, [coder, coder2], n_gold=3, n_study=6, rate=0.5)
    for a in Assignment.objects.filter(coding_round=round_):
        code_assignment(a, gold_codes(a.transcript), gold_globals(a.transcript), a.coder)
    seeded = set(GoldAssignment.objects.filter(seeded=True).values_list("assignment_id", flat=True))
    assert seeded
    data = load_summaries(study, round_)
    assert {s.assignment_id for s in data.codings}.isdisjoint(seeded)
    assert len(data.codings) == 12  # 6 study transcripts × 2 coders
    reliability = study_reliability(data)
    assert reliability.n_transcripts == 6
    _header, rows, n = code_rows(study, round_)
    exported = {cell for row in rows for cell in row if isinstance(cell, str)}
    seeded_codes = {a.transcript.blind_code for a in Assignment.objects.filter(pk__in=seeded)}
    assert n == 12 * 12 and not seeded_codes & exported
    # Including a coder's work again never brings seeded gold in.
    actions.include_in_results(round_, coder_id=coder.pk, include=True)
    assert not Assignment.objects.filter(pk__in=seeded, in_results=True).exists()


def test_drift_alert_when_rolling_agreement_drops(client_for, study, coordinator, coder, coder2):
    golds, round_ = _seeded_round(study, coordinator, [coder, coder2], n_gold=8, n_study=12, rate=0.5)
    actions.set_proficiency_standard(study, drift_kappa=0.6, drift_window=3)
    for a in Assignment.objects.filter(coding_round=round_).order_by("coder_id", "position"):
        # coder2 codes well at first, then badly (every other utterance wrong)
        late = a.position >= 6
        wrong = 2 if a.coder == coder2 and late else 0
        code_assignment(a, noisy(gold_codes(a.transcript), wrong), gold_globals(a.transcript), a.coder)
    result = calibration.study_calibration(study)
    assert result.drift[coder.pk].alert is False
    series = result.drift[coder2.pk]
    assert series.alert and series.latest.rolling.kappa < 0.6 and series.latest.window_full
    page = client_for(coordinator).get(f"/studies/{study.slug}/calibration/").content.decode()
    assert 'id="drift-alerts"' in page and 'data-coder="coder2"' in page
    assert 'id="drift-chart"' in page and 'id="drift-threshold"' in page
    assert client_for(coder).get(f"/studies/{study.slug}/calibration/").status_code == 403
    csv_body = client_for(coordinator).get(f"/studies/{study.slug}/calibration/drift.csv").content.decode()
    assert csv_body.splitlines()[0].startswith("coder,n,submitted_at")
    assert len(csv_body.splitlines()) == 1 + sum(len(s.points) for s in result.drift.values())


def test_seed_plan_places_gold_at_random_among_the_queue():
    from annotation.actions.gold import seed_plan

    plan = seed_plan({1: list(range(100, 140)), 2: [], 3: [7, 8]}, [7, 500, 501, 502], rate=0.1, seed=3)
    assert sorted(t for t, seeded in plan[1] if seeded) != [] and len([s for _t, s in plan[1] if s]) == 4
    assert [t for t, s in plan[1] if not s] == list(range(100, 140))  # the study order is kept
    assert plan[2] == []  # no study transcript: no gold either
    assert [t for t, s in plan[3] if s] != [7] and len([s for _t, s in plan[3] if s]) == 1  # 7 is theirs already
    assert seed_plan({1: [1, 2, 3]}, [9], rate=0.0, seed=1) == {1: [(1, False), (2, False), (3, False)]}

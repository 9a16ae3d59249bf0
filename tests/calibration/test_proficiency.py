"""Proficiency against gold, and the gate of a round that requires it (docs/calibration.md).

The agreement numbers are checked against scikit-learn, the ``krippendorff`` package and pingouin
called directly on the same data.
"""

from __future__ import annotations

import io

import krippendorff
import numpy as np
import pandas as pd
import pingouin
import pytest
from django.core.management import call_command
from sklearn.metrics import cohen_kappa_score

from annotation import actions, miti
from annotation.models import Assignment, RoundGoldPolicy
from evaluation import calibration
from tests.calibration.helpers import (
    code_assignment,
    gold_codes,
    gold_globals,
    make_gold_set,
    make_transcripts,
    noisy,
)

pytestmark = pytest.mark.django_db


def _calibrate(study, coordinator, coder, golds, *, wrong_every: int, name: str = "Calibration"):
    round_ = actions.create_calibration_round(study, name=name, golds=golds, coders=[coder], seed=1)
    for i, a in enumerate(Assignment.objects.filter(coding_round=round_).order_by("position")):
        g = gold_globals(a.transcript)
        shifted = {k: min(5, v + (2 if (i + j) % 4 == 0 else 1 if j % 2 else 0)) for j, (k, v) in enumerate(g.items())}
        code_assignment(a, noisy(gold_codes(a.transcript), wrong_every + (i % 3)), shifted, coder)
    return round_


def test_agreement_numbers_match_the_libraries(study, coordinator, coder, coder2, make_user):
    trainee = make_user("trainee")
    actions.set_membership(study, "trainee", "coder")
    golds = make_gold_set(study, coordinator, [coder, coder2], n=10)
    _calibrate(study, coordinator, trainee, golds, wrong_every=3)
    result = calibration.study_calibration(study)
    p = result.proficiency[trainee.pk]
    comparisons = [c for c in calibration.load_comparisons(study, coder_ids=[trainee.pk]) if not c.seeded]
    pairs = [pair for c in comparisons for pair in c.codes]
    assert p.n_codings == 10 and p.n_utterances == 120 == len(pairs)

    coder_codes, gold = [c for c, _g in pairs], [g for _c, g in pairs]
    assert p.kappa.kappa == pytest.approx(cohen_kappa_score(coder_codes, gold), abs=1e-12)
    labels = sorted(set(coder_codes) | set(gold))
    data = np.array([[labels.index(v) for v in coder_codes], [labels.index(v) for v in gold]], dtype=float)
    assert p.alpha.alpha == pytest.approx(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"),
                                          abs=1e-12)
    for code in p.covered_codes:
        expected = cohen_kappa_score([c == code for c in coder_codes], [g == code for g in gold])
        (row,) = [k for k in p.per_code if k.code == code]
        assert row.kappa.kappa == pytest.approx(expected, abs=1e-12)
    assert "PERSUADE" not in p.covered_codes  # the gold never uses it: not estimable, said so
    (persuade,) = [k for k in p.per_code if k.code == "PERSUADE"]
    assert persuade.kappa.kappa is None and persuade.kappa.status == "not_estimable"

    global_pairs = [(c, g) for comp in comparisons for c, g in comp.globals.values()]
    assert p.globals_within_one == pytest.approx(np.mean([abs(c - g) <= 1 for c, g in global_pairs]))

    for score in p.scores:
        long = pd.DataFrame(
            [(i, "coder", comp.scores[score.key][0]) for i, comp in enumerate(comparisons)]
            + [(i, "gold", comp.scores[score.key][1]) for i, comp in enumerate(comparisons)],
            columns=["target", "rater", "value"],
        )
        if score.icc.icc2_1 is None:
            continue
        table = pingouin.intraclass_corr(long, targets="target", raters="rater", ratings="value").set_index("Type")
        # pingouin >= 0.7 names the row ICC(A,1); older versions ICC2.
        table = table.rename(index={"ICC2": "ICC(A,1)"})
        assert score.icc.icc2_1 == pytest.approx(table.loc["ICC(A,1)", "ICC"], abs=1e-9), score.key
    assert any(s.icc.icc2_1 is not None for s in p.scores)


def test_a_coder_below_the_standard_is_not_assigned_to_a_gated_round(client_for, study, coordinator, coder, coder2,
                                                                     make_user):
    good, poor, untrained = make_user("good"), make_user("poor"), make_user("untrained")
    for name in ("good", "poor", "untrained"):
        actions.set_membership(study, name, "coder")
    golds = make_gold_set(study, coordinator, [coder, coder2], n=3)
    _calibrate(study, coordinator, good, golds, wrong_every=12, name="Cal good")
    _calibrate(study, coordinator, poor, golds, wrong_every=2, name="Cal poor")
    actions.set_proficiency_standard(study, min_kappa=0.6, min_alpha=0.6, min_globals_within_one=0.5)
    verdict = calibration.assess(study, [good.pk, poor.pk, untrained.pk])
    assert verdict[good.pk].eligible, verdict[good.pk].reasons
    assert not verdict[poor.pk].eligible and verdict[poor.pk].reasons[0].startswith("kappa 0.")
    assert not verdict[untrained.pk].eligible and "not estimable" in verdict[untrained.pk].reasons[0]

    transcripts = make_transcripts(study, 4, label="Model run", kind="generated", prefix="g")
    gated = actions.create_coding_round(
        study, name="Gated", sources=[transcripts[0].source], coders=[good, poor, untrained], overlap=0, seed=5,
        require_proficiency=True,
    )
    assert set(Assignment.objects.filter(coding_round=gated).values_list("coder__username", flat=True)) == {"good"}
    policy = RoundGoldPolicy.objects.get(coding_round=gated)
    assert {e["username"] for e in policy.excluded} == {"poor", "untrained"}

    page = client_for(coordinator).get(f"/studies/{study.slug}/rounds/{gated.pk}/").content.decode()
    assert "Left out by the proficiency gate" in page and "poor" in page and "untrained" in page
    assert "not estimable" in page

    # The same gate from the command line and from the round form.
    out = io.StringIO()
    call_command("create_round", study.slug, "--name", "Gated CLI", "--source", "Model run", "--coder", "good",
                 "--coder", "poor", "--overlap", "0", "--seed", "9", "--require-proficiency", stdout=out)
    assert "left out by the proficiency gate: poor (kappa 0." in out.getvalue()
    response = client_for(coordinator).post(f"/studies/{study.slug}/rounds/new/", {
        "name": "Gated page", "sources": [transcripts[0].source.pk], "coders": [good.pk, untrained.pk],
        "overlap_percent": 0, "per_overlap": 2, "require_proficiency": "on"})
    assert response.status_code == 302
    assert set(Assignment.objects.filter(coding_round__name="Gated page").values_list("coder__username", flat=True)) \
        == {"good"}

    with pytest.raises(actions.ActionError, match="No chosen coder meets"):
        actions.create_coding_round(study, name="Gated 2", sources=[transcripts[0].source], coders=[poor],
                                    overlap=0, seed=5, require_proficiency=True)


def test_gold_without_globals_reports_them_not_estimable(study, coordinator, coder, coder2):
    golds = make_gold_set(study, coordinator, [coder, coder2], n=2)
    p = calibration.study_calibration(study, coder_ids=[coder.pk]).proficiency[coder.pk]
    assert p.n_codings == 0 and p.kappa.kappa is None
    check = {c.name: c for c in p.checks}
    assert check["kappa"].status == "not_estimable" and check["icc"].status == "not_required"
    assert len(golds) == 2 and set(miti.GLOBAL_KEYS)

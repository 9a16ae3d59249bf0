"""Acceptance on real multi-coder data: AnnoMI's 7 transcripts labelled by all 10 annotators.

The AnnoMI full CSV is imported as a coding round (``import_annomi_round``); the reliability page and
the reliability export must show utterance-level alpha and kappa for the mapped codes and
per-transcript ICC for the SR/CR/Q tallies, equal to a computation straight from the CSV with pandas,
``krippendorff``, scikit-learn, statsmodels and pingouin. Skipped when the shared data is absent.
"""

from __future__ import annotations

import re
import warnings
from itertools import combinations

import krippendorff
import numpy as np
import pandas as pd
import pingouin
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

from annotation import actions, miti
from evaluation import exports
from evaluation.reliability import MIN_TARGETS
from evaluation.reliability_data import study_reliability
from evaluation.results import build_results
from tests.conftest import shared_data

pytestmark = pytest.mark.django_db


def _miti(row: pd.Series) -> str:
    # AnnoMI's main behaviour → MITI as the DATA README states: reflection simple/complex → SR/CR (a
    # reflection without a subtype is simple: docs/miti.md, "Labels imported from AnnoMI"), question →
    # Q, therapist_input information → GI; everything else has no MITI code. Utterance-level agreement
    # compares these main codes; the other flagged behaviours count in the tallies only.
    behaviour = row.main_therapist_behaviour
    if behaviour == "reflection":
        return "CR" if row.reflection_subtype == "complex" else "SR"
    if behaviour == "question":
        return "Q"
    if behaviour == "therapist_input" and row.therapist_input_subtype == "information":
        return "GI"
    return "NONE"


def _flagged(row: pd.Series) -> list[str]:
    # every behaviour the row flags (the tallies count them all, one per slot per volley)
    codes = [row.code]
    if row.therapist_input_subtype == "information":
        codes.append("GI")
    if row.question_exists == "True":
        codes.append("Q")
    if row.reflection_exists == "True":
        codes.append("CR" if row.reflection_subtype == "complex" else "SR")
    return codes


def _reference(path) -> dict:
    """Every number straight from the CSV, without the platform's code."""
    df = pd.read_csv(path, keep_default_na=False)
    per_transcript = df.groupby("transcript_id").annotator_id.nunique()
    multi = sorted(per_transcript[per_transcript > 1].index)
    df = df[df.transcript_id.isin(multi)].sort_values(["transcript_id", "annotator_id", "utterance_id"])
    df = df[df.utterance_text.str.strip() != ""].copy()
    df["code"] = df.apply(_miti, axis=1)
    annotators = sorted(df.annotator_id.unique())

    therapist = df[df.interlocutor == "therapist"]
    units = therapist.pivot_table(index="annotator_id", columns=["transcript_id", "utterance_id"], values="code",
                                  aggfunc="first")
    labels = {code: i for i, code in enumerate(sorted(set(therapist.code)))}
    matrix = units.apply(lambda col: col.map(labels)).to_numpy(dtype=float)
    alpha = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    table, _ = aggregate_raters(matrix.T.astype(int))
    fleiss = fleiss_kappa(table, method="fleiss")
    cohen = {
        (a, b): cohen_kappa_score(units.loc[a].to_numpy(), units.loc[b].to_numpy())
        for a, b in combinations(annotators, 2)
    }

    # per-volley tallies: a volley is one uninterrupted run of therapist rows
    df["flagged"] = df.apply(_flagged, axis=1)
    tallies = []
    for (transcript, annotator), rows in df.groupby(["transcript_id", "annotator_id"]):
        turn = (rows.interlocutor != rows.interlocutor.shift()).cumsum()
        volleys = [
            [code for codes in group.flagged for code in codes]
            for _, group in rows[rows.interlocutor == "therapist"].groupby(turn)
        ]
        counts = miti.tally_transcript(volleys)
        tallies.append({"transcript": transcript, "annotator": annotator, **counts})
    tallies = pd.DataFrame(tallies)
    icc = {}
    for key in ("SR", "CR", "Q"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pingouin's own pandas deprecation warnings
            table_icc = pingouin.intraclass_corr(data=tallies, targets="transcript", raters="annotator", ratings=key)
        table_icc = table_icc.set_index("Type")
        # pingouin >= 0.7 names the rows ICC(A,1)/ICC(A,k); earlier versions ICC2/ICC2k.
        single, average = ("ICC(A,1)", "ICC(A,k)") if "ICC(A,1)" in table_icc.index else ("ICC2", "ICC2k")
        icc[key] = (table_icc.loc[single, "ICC"], table_icc.loc[average, "ICC"])
    return {"alpha": alpha, "fleiss": fleiss, "cohen": cohen, "icc": icc, "n_units": matrix.shape[1],
            "multi": multi, "annotators": annotators}


def test_annomi_reliability_page_and_export_match_the_csv(client_for, coordinator, tmp_path) -> None:
    path = shared_data("AnnoMI", "AnnoMI-full.csv")
    study = actions.create_study(name="AnnoMI reliability", slug="annomi", change_goal="reduce drinking",
                                 language="en", created_by=coordinator)
    imported = actions.import_annomi_round(study, path, round_name="AnnoMI experts", created_by=coordinator)
    assert imported.multi_coded == 7
    expected = _reference(path)

    results = build_results(study, imported.coding_round)
    rel = results.reliability
    assert rel.n_transcripts == 7 and rel.raters == "coders" and rel.k == 10
    u = rel.utterances
    assert u.n_units == expected["n_units"]
    assert u.alpha.alpha == pytest.approx(expected["alpha"], abs=1e-9)
    assert u.fleiss.kappa == pytest.approx(expected["fleiss"], abs=1e-9)
    assert len(u.pairs) == 45
    name = {a: f"annomi-annotator-{a}" for a in expected["annotators"]}
    for pair in u.pairs:
        a, b = (int(p.rsplit("-", 1)[1]) for p in (pair.coder_a, pair.coder_b))
        assert pair.kappa.kappa == pytest.approx(expected["cohen"][(min(a, b), max(a, b))], abs=1e-9)
    scores = {s.key: s for s in rel.scores}
    # 7 double-coded transcripts are fewer than MIN_TARGETS: the ICCs are "not estimable" (docs/metrics.md,
    # "When a statistic is not estimable"); with the minimum lowered the formula equals pingouin's.
    assert MIN_TARGETS > 7
    lowered = {s.key: s for s in study_reliability(results.summaries, per_code=False, min_targets=2).scores}
    for key in ("SR", "CR", "Q"):
        assert scores[key].icc.n == 7 and scores[key].icc.k == 10
        assert scores[key].icc.status == "not_estimable" and scores[key].icc.icc2_1 is None
        assert lowered[key].icc.icc2_1 == pytest.approx(expected["icc"][key][0], abs=1e-9)
        assert lowered[key].icc.icc2_k == pytest.approx(expected["icc"][key][1], abs=1e-9)
    # no globals in AnnoMI: global ICCs are "not enough data", never a number
    assert {scores[k].icc.status for k in miti.GLOBAL_KEYS} == {"not_enough_data"}

    # the page shows the same numbers
    html = client_for(coordinator).get(
        f"/studies/annomi/results/reliability/?round={imported.coding_round.pk}"
    ).content.decode()
    assert f"{u.alpha.alpha:.3f}" in html and f"{u.fleiss.kappa:.3f}" in html
    assert f"{u.pairs[0].kappa.kappa:.3f}" in html
    for key in ("SR", "CR", "Q"):
        row = re.search(rf'<tr data-score="{key}">(.*?)</tr>', html, re.S).group(1)
        assert f"{lowered[key].icc.icc2_1:.3f}" not in row and "band-" not in row
        assert row.count(">not estimable<") == 3 and 'title="fewer than 10 double-coded units' in row  # + alpha
    assert name[0] in html

    # and so does the export (full precision)
    out = tmp_path / "reliability.xlsx"
    exports.write_export(study, "reliability", "xlsx", out, coding_round=imported.coding_round)
    sheets = pd.read_excel(out, sheet_name=None, keep_default_na=False)
    table = sheets["reliability_scores"].set_index("score")
    for key in ("SR", "CR", "Q"):
        assert table.loc[key, "icc2_1"] == table.loc[key, "icc2_k"] == ""  # empty cells, with the reason
        assert table.loc[key, "icc_status"] == "not_estimable"
        assert table.loc[key, "icc2_1_reason"].startswith("fewer than 10 double-coded units")
        assert table.loc[key, "n_transcripts"] == 7
    utt = sheets["reliability_utterances"]
    alpha_row = utt[utt.statistic.str.startswith("Krippendorff") & (utt.codes == "all codes")].iloc[0]
    assert alpha_row.value == pytest.approx(expected["alpha"], abs=1e-9)
    fleiss_row = utt[(utt.statistic == "Fleiss kappa") & (utt.codes == "all codes")].iloc[0]
    assert fleiss_row.value == pytest.approx(expected["fleiss"], abs=1e-9)
    cohen_rows = utt[utt.statistic.str.startswith("Cohen kappa")]
    assert len(cohen_rows) == 45
    first = cohen_rows.iloc[0]
    assert first.value == pytest.approx(expected["cohen"][(0, 1)], abs=1e-9)
    # per-code agreement for the mapped codes is there too
    assert {"SR", "CR", "Q", "GI", "NONE"} <= set(utt.codes)
    assert np.isfinite(utt[utt.codes == "SR"].value.astype(float)).all()

"""Results grouped by split, coder or a dialogue metadata field: pages, API, exports, reliability of a group."""

from __future__ import annotations

import pandas as pd
import pytest

from annotation.models import Dialogue
from evaluation import exports
from evaluation.reliability_data import study_reliability
from evaluation.results import build_results
from evaluation.summaries import load_summaries, study_aggregates

from .db_helpers import coded_demo_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def coded(study, coordinator, coder, coder2, demo_dialogues_file):
    coded = coded_demo_study(study, coordinator, [coder, coder2], demo_dialogues_file)
    # AnnoMI-like metadata: every other dialogue is high-quality MI; one dialogue carries no value.
    for i, dialogue in enumerate(Dialogue.objects.filter(study=study).order_by("id")):
        dialogue.metadata = {**dialogue.metadata, "mi_quality": "high" if i % 2 == 0 else "low"} if i else {}
        dialogue.save(update_fields=["metadata"])
    return coded


def _quality(study) -> dict[int, str]:
    return {
        t: (m or {}).get("mi_quality") or "(none)"
        for t, m in Dialogue.objects.filter(study=study).values_list("transcripts__id", "metadata")
        if t is not None
    }


def test_grouped_aggregates_equal_the_aggregates_of_each_group(coded) -> None:
    study = coded.study
    results = build_results(study, group_by="metadata.mi_quality", per_code=False)
    quality = _quality(study)
    data = load_summaries(study)
    labels = {(row.source.id, row.group) for row in results.sources}
    assert {g for _s, g in labels} == {"high", "low", "(none)"}
    for row in results.sources:
        # The same numbers as aggregating only that source's transcripts of that group.
        only = [s for s in data.codings if s.source_id == row.source.id and quality[s.transcript_id] == row.group]
        expected = study_aggregates(type(data)(study, None, data.sources, only, []))
        assert row.transcripts == len({s.transcript_id for s in only})
        assert row.stats == expected.per_source[row.source.id]
        assert row.label == f"{row.source.label} · {row.group}"
    by_split = build_results(study, group_by="split", per_code=False)
    split_of = dict(Dialogue.objects.filter(study=study).values_list("transcripts__id", "split"))
    assert {row.group for row in by_split.sources} == {split_of[s.transcript_id] for s in data.codings}
    by_coder = build_results(study, group_by="coder", per_code=False)
    assert {row.group for row in by_coder.sources} == {"coder", "coder2"}


def test_reliability_restricted_to_a_group_uses_only_its_transcripts(coded) -> None:
    study = coded.study
    quality = _quality(study)
    high = build_results(study, group_by="metadata.mi_quality", group="high", per_code=False)
    data = load_summaries(study)
    only = [s for s in data.codings if quality[s.transcript_id] == "high"]
    expected = study_reliability(type(data)(study, None, data.sources, only, [], data.load_code_rows), per_code=False)
    assert high.reliability.n_transcripts == len({s.transcript_id for s in only}) == expected.n_transcripts
    assert high.reliability.n_transcripts < build_results(study, per_code=False).reliability.n_transcripts
    assert [s.icc for s in high.reliability.scores] == [s.icc for s in expected.scores]
    assert high.reliability.utterances.alpha == expected.utterances.alpha


def test_pages_api_and_exports_group_by_a_metadata_key(client_for, coordinator, coded, tmp_path) -> None:
    client = client_for(coordinator)
    html = client.get("/studies/smoking/results/?group_by=metadata.mi_quality").content.decode()
    assert '<option value="metadata.mi_quality" selected>Metadata: mi_quality</option>' in html
    assert "Reference dialogues · high" in html and "demo-mi-model · low" in html
    # The tabs keep the grouping.
    assert "/studies/smoking/results/reliability/?group_by=metadata.mi_quality" in html
    reliability = client.get("/studies/smoking/results/reliability/?group_by=metadata.mi_quality&group=low")
    assert reliability.status_code == 200
    assert client.get("/studies/smoking/results/?group_by=metadata.a;b").status_code == 404
    assert client.get("/studies/smoking/results/?group_by=bogus").status_code == 404

    body = client.get("/api/studies/smoking/aggregates/?group_by=metadata.mi_quality").json()
    assert body["group_by"] == "metadata.mi_quality"
    assert {(r["source"]["label"], r["group"]) for r in body["per_source"]} >= {
        ("Reference dialogues", "high"), ("demo-mi-model", "low")
    }
    rel = client.get("/api/studies/smoking/reliability/?group_by=metadata.mi_quality&group=high").json()
    assert rel["n_transcripts"] == build_results(coded.study, group_by="metadata.mi_quality", group="high").reliability.n_transcripts

    out = tmp_path / "aggregates.xlsx"
    exports.write_export(coded.study, "aggregates", "xlsx", out, group_by="metadata.mi_quality")
    per_source = pd.read_excel(out, sheet_name="per_source", keep_default_na=False)
    assert "group (metadata.mi_quality)" in per_source.columns
    assert set(per_source["group (metadata.mi_quality)"]) == {"high", "low", "(none)"}
    out = tmp_path / "summaries.csv"
    exports.write_export(coded.study, "summaries", "csv", out, group_by="split")
    assert "group (split)" in pd.read_csv(out, encoding="utf-8-sig").columns

"""The Tables page: metrics base vs fine-tuned, MITI per source, reliability, paired comparisons; downloads."""

from __future__ import annotations

import io
import zipfile

import pandas as pd
import pytest

from evaluation import actions, paired
from evaluation.paper_tables import paper_tables
from evaluation.results import build_results

from .db_helpers import coded_demo_study, finished_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def coded(study, coordinator, coder, coder2, demo_dialogues_file):
    coded = coded_demo_study(study, coordinator, [coder, coder2], demo_dialogues_file)
    actions.compute_run_metrics(coded.run)
    actions.compute_run_metrics(finished_run(study, name="demo-mi-model-ft", base=coded.run.model))
    return coded


def test_tables_hold_the_results_numbers(coded) -> None:
    results = build_results(coded.study, per_code=False)
    metrics, miti_table, reliability, comparisons = paper_tables(results).tables
    # (1) the fine-tuned model's row carries its base model's numbers on the same split beside its own
    base_run = next(r for r in results.metrics if r.model == "demo-mi-model")
    ft = next(row for row in metrics.display.rows if row[0].startswith("demo-mi-model-ft"))
    assert ft[0] == "demo-mi-model-ft (fine-tuned from demo-mi-model)" and ft[1] == "test"
    assert ft[2] == f"{base_run.values['bleu4']:.2f}"  # "BLEU-4 base" column
    assert "BLEU-4 base" in metrics.display.header
    # (2) reference first, mean ± SD (n) and Fair/Good shares, raw numbers unrounded
    assert [row[0] for row in miti_table.display.rows] == ["Reference dialogues", "demo-mi-model"]
    reference = results.sources[0]
    technical = reference.stats["technical"]
    assert miti_table.display.rows[0][2].startswith(f"{technical.mean:.2f} ± {technical.sd:.2f} (n={technical.n}); Fair")
    raw = [r for r in miti_table.raw.rows if r[0] == "Reference dialogues" and r[3] == "technical"][0]
    assert raw[4:9] == [technical.n, technical.mean, technical.sd, technical.share_fair, technical.share_good]
    # (3) one row per score, numbers from evaluation.reliability
    rel = results.reliability
    assert len(reliability.display.rows) == len(rel.scores)
    first = rel.scores[0]
    assert reliability.raw.rows[0][4] == first.icc.icc2_1 and reliability.raw.rows[0][13] == first.alpha.alpha
    # (4) the model against the reference on the same dialogues, per summary score, Holm across them
    assert {r[0] for r in comparisons.raw.rows} == {"demo-mi-model"}
    data = results.summaries
    dialogue = {t.pk: t.dialogue_id for t in coded.reference.transcripts.all()} | {
        t.pk: t.dialogue_id for t in coded.generated.transcripts.all()}
    means: dict[tuple[int, int], list[float]] = {}
    for s in data.codings:
        if s.value("technical") is not None:
            means.setdefault((s.source_id, dialogue[s.transcript_id]), []).append(float(s.value("technical")))
    pairs = [
        (sum(g) / len(g), sum(means[(coded.reference.pk, d)]) / len(means[(coded.reference.pk, d)]))
        for (src, d), g in means.items() if src == coded.generated.pk and (coded.reference.pk, d) in means
    ]
    expected = paired.compare("technical", pairs)
    row = [r for r in comparisons.raw.rows if r[2] == "technical"][0]
    assert row[3] == expected.n == len(pairs) > 0
    assert row[6] == pytest.approx(expected.mean_difference)
    assert row[9] == expected.wilcoxon_p


def test_tables_page_and_downloads(client_for, coordinator, coded) -> None:
    client = client_for(coordinator)
    html = client.get("/studies/smoking/results/tables/?group_by=split").content.decode()
    for name in ("automatic_metrics", "miti_by_source", "reliability", "paired_comparisons"):
        assert f'id="table-{name}"' in html
    assert "Reference dialogues · test" in html
    assert 'href="/studies/smoking/results/tables/download.tex?group_by=split"' in html
    tex = client.get("/studies/smoking/results/tables/download.tex?group_by=split")
    assert tex["Content-Disposition"] == 'attachment; filename="smoking-tables-split.tex"'
    body = tex.content.decode()
    assert body.count("\\toprule") == 4 and "\\begin{tabular}" in body and "demo-mi-model-ft" in body
    assert "$\\pm$" in body and "\\%" in body
    md = client.get("/studies/smoking/results/tables/download.md").content.decode()
    assert "| Source | Transcripts |" in md
    book = pd.read_excel(io.BytesIO(client.get("/studies/smoking/results/tables/download.xlsx").content), sheet_name=None)
    assert list(book) == ["automatic_metrics", "miti_by_source", "reliability", "paired_comparisons"]
    with zipfile.ZipFile(io.BytesIO(client.get("/studies/smoking/results/tables/download.csv").content)) as archive:
        assert sorted(archive.namelist()) == sorted(f"{n}.csv" for n in book)
    assert client.get("/studies/smoking/results/tables/download.pdf").status_code == 404

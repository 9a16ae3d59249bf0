"""The Tables page in a real browser: group by a metadata key, download the LaTeX and the XLSX."""

from __future__ import annotations

import pandas as pd
import pytest

from annotation.models import Dialogue
from evaluation import actions
from tests.evaluation.db_helpers import coded_demo_study

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def coded(study, coordinator, coder, coder2, demo_dialogues_file):
    coded = coded_demo_study(study, coordinator, [coder, coder2], demo_dialogues_file)
    actions.compute_run_metrics(coded.run)
    for i, dialogue in enumerate(Dialogue.objects.filter(study=study).order_by("id")):
        dialogue.metadata = {**dialogue.metadata, "mi_quality": "high" if i % 2 else "low"}
        dialogue.save(update_fields=["metadata"])
    return coded


def test_tables_page_groups_by_metadata_and_downloads_latex_and_xlsx(browser_context, login, coded, tmp_path) -> None:
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, "coordinator", next_url="/studies/smoking/results/")
    page.evaluate("window.__marker = 1")
    page.click("nav.tabs >> text=Tables")
    page.wait_for_url("**/results/tables/")
    page.locator("#table-paired_comparisons").wait_for()

    # Group by the metadata key: the panel is swapped (HTMX) and the MITI table splits each source.
    page.select_option("#group-by-select", "metadata.mi_quality")
    page.wait_for_url("**/results/tables/?*group_by=metadata.mi_quality")
    miti_table = page.locator("#table-miti_by_source")
    miti_table.get_by_text("Reference dialogues · high").wait_for()
    assert miti_table.get_by_text("demo-mi-model · low").count() == 1
    assert page.evaluate("window.__marker") == 1

    with page.expect_download() as latex_download:
        page.click("#download-tex")
    latex = latex_download.value
    assert latex.suggested_filename == "smoking-tables-metadata-mi_quality.tex"
    tex = (tmp_path / "tables.tex")
    latex.save_as(tex)
    body = tex.read_text(encoding="utf-8")
    assert body.count("\\toprule") == 4 and "Reference dialogues · high" in body

    with page.expect_download() as xlsx_download:
        page.click("#download-xlsx")
    workbook = tmp_path / "tables.xlsx"
    xlsx_download.value.save_as(workbook)
    sheets = pd.read_excel(workbook, sheet_name=None, keep_default_na=False)
    assert list(sheets) == ["automatic_metrics", "miti_by_source", "reliability", "paired_comparisons"]
    assert {"high", "low"} <= set(sheets["miti_by_source"]["group"])
    assert errors == []

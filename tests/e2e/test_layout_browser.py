"""No horizontal overflow on the busiest pages at 1280 and 1024 px, in English and in Chinese.

The coding page (with a long status message in its header), the results overview, the MITI results
table and the reliability page are loaded at both widths in both languages. Neither the document nor
``<main>`` may be wider than the window (``scrollWidth <= innerWidth``), and the coding page's title keeps
its room when the status beside it is long. A screenshot of each goes to ``$MI_VAR_DIR/screenshots/``
(``page-width-lang.png``) for a person to look at.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from annotation import actions
from annotation.models import Assignment
from tests.evaluation.db_helpers import coded_demo_study

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (1280, 1024)
LANGUAGES = ("en", "zh-hans")
LONG_STATUS = (
    "Cannot submit yet: 3 of 4 utterances have no code yet (volley 2: utterance 1, 2; volley 3: utterance 1) — "
    "give each a code or \"No code\"; 2 global ratings are missing (Cultivating Change Talk, Partnership)."
)


@pytest.fixture
def pages(study, coordinator, coder, coder2, demo_dialogues_file) -> dict[str, str]:
    coded = coded_demo_study(study, coordinator, [coder, coder2], demo_dialogues_file)
    second = actions.create_coding_round(
        study, name="Round 2", sources=[coded.reference], coders=[coder], overlap=0.0, seed=3, created_by=coordinator
    )
    open_assignment = Assignment.objects.filter(coding_round=second, coder=coder).order_by("position").first()
    return {
        "coding": f"/code/{open_assignment.pk}/",
        "results": "/studies/smoking/results/",
        "miti": "/studies/smoking/results/miti/",
        "reliability": "/studies/smoking/results/reliability/codes/",
    }


OVERFLOW = """() => {
  const main = document.querySelector('main');
  const wide = [...document.querySelectorAll('main *')]
    .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1)
    .slice(0, 5).map(el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ').join('.') : ''));
  const scrolled = [...document.querySelectorAll('.table-scroll')]
    .filter(el => el.scrollWidth > el.clientWidth).map(el => el.firstElementChild.id);
  return {doc: document.documentElement.scrollWidth, win: window.innerWidth,
          main: main.scrollWidth, mainClient: main.clientWidth, wide, scrolled};
}"""


def test_pages_fit_1280_and_1024_in_both_languages(browser, live_server, pages) -> None:
    from tests.conftest import PASSWORD

    folder = Path(settings.VAR_DIR) / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for language in LANGUAGES:
        for width in WIDTHS:
            context = browser.new_context(base_url=live_server.url, viewport={"width": width, "height": 900})
            context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
            context.set_default_timeout(15_000)
            try:
                page = context.new_page()
                for name, url in pages.items():
                    user = "coder" if name == "coding" else "coordinator"
                    page.context.clear_cookies()
                    page.context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
                    page.goto(f"/accounts/login/?next={url}")
                    page.fill("#id_username", user)
                    page.fill("#id_password", PASSWORD)
                    page.press("#id_password", "Enter")
                    page.wait_for_url(f"**{url}")
                    page.wait_for_load_state("networkidle")
                    if name == "coding":
                        # The longest status the header shows: a refused submit, in the save-state slot.
                        page.evaluate("t => { document.querySelector('#save-state').textContent = t; }", LONG_STATUS)
                        title = page.locator(".coding-title").bounding_box()
                        code = page.locator(".coding-title h1").bounding_box()
                        assert title is not None and code is not None
                        # The title block keeps at least a quarter of the bar; the blind code stays on one line;
                        # the buttons beside the status keep their words on one line.
                        buttons = page.locator(".coding-tools .button, .coding-tools button")
                        tall = [b for b in buttons.all() if b.bounding_box()["height"] > 48]
                        if title["width"] < width / 4 or code["height"] > 40 or tall:
                            problems.append(f"{name} {width} {language}: title crushed ({title}, {code})")
                    page.screenshot(path=str(folder / f"{name}-{width}-{language}.png"), full_page=True)
                    m = page.evaluate(OVERFLOW)
                    if m["doc"] > m["win"] or m["main"] > m["mainClient"]:
                        problems.append(f"{name} {width} {language}: {m}")
                    # At 1280 px even the widest table fits without scrolling inside its box.
                    if width == 1280 and m["scrolled"]:
                        problems.append(f"{name} {width} {language}: tables scroll: {m['scrolled']}")
            finally:
                context.close()
    assert not problems, "\n".join(problems)

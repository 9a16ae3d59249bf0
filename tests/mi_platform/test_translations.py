"""The Simplified Chinese catalogue: the one source of the Chinese text, complete and in step.

- every msgid is translated, none is fuzzy or obsolete, placeholders survive, and GNU gettext's own
  ``msgfmt --check`` agrees;
- the catalogue holds exactly what the README's ``makemessages`` command extracts from the sources (run
  on a copy of the tree, so a test never rewrites the committed catalogue);
- the committed ``.mo`` holds exactly the ``.po``'s translations (``compilemessages`` was run);
- the MITI instrument's strings (a pure module: marked with a no-op ``gettext_noop``, translated when
  rendered) reach the pages in Chinese.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.template import Context, Template
from django.utils import translation

from annotation import actions, miti
from annotation.models import Assignment

from ..annotation.test_coding_actions import build_round, utterances_of

REPO = Path(__file__).resolve().parents[2]
PO = REPO / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
GETTEXT_TOOLS = ("xgettext", "msgmerge", "msguniq", "msgfmt")
CJK = re.compile(r"[\u4e00-\u9fff]")
# %(name)s from blocktranslate and gettext, {name} from the MITI merge templates.
PLACEHOLDER = re.compile(r"%\(\w+\)[sdif]|\{\w*\}")


def _key(entry: polib.POEntry | polib.MOEntry) -> tuple[str | None, str, str]:
    return (entry.msgctxt, entry.msgid, entry.msgid_plural or "")


def _catalogue() -> polib.POFile:
    return polib.pofile(str(PO), wrapwidth=0)


def _require_gettext() -> None:
    # A failure, not a skip: without these tools nobody can update the catalogue.
    missing = [tool for tool in GETTEXT_TOOLS if shutil.which(tool) is None]
    assert not missing, f"GNU gettext tools missing: {missing} (apt-get install gettext)"


def readme_makemessages_args() -> list[str]:
    """The options of the ``makemessages`` command the README tells translators to run."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(r"manage\.py makemessages((?:[^\n]*\\\n)*[^\n]*)", readme)
    assert match, "README.md: no `manage.py makemessages` command in the Translations section"
    return shlex.split(match.group(1).replace("\\\n", " "))


def _copy_sources(destination: Path, ignored: list[str]) -> None:
    """Copy the project's files to ``destination``.

    In a git checkout: git's view of the tree (tracked and new files, minus .gitignore), so local
    clutter such as var/ never counts as a source. Elsewhere: the tree minus what makemessages ignores
    (the README's list and its defaults .*, *~, *.pyc).
    """
    listing = None
    if shutil.which("git"):
        listing = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO, capture_output=True, timeout=60,
        )
    if listing is None or listing.returncode != 0:
        skip = shutil.ignore_patterns(*ignored, ".*", "*~", "*.pyc", "__pycache__")
        shutil.copytree(REPO, destination, ignore=skip)
        return
    for name in filter(None, listing.stdout.decode().split("\0")):
        source = REPO / name
        if source.is_file():  # not a file deleted from the work tree but still in the index
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


# --- the catalogue itself --------------------------------------------------------------------------


def test_every_msgid_is_translated_and_none_is_fuzzy_or_obsolete():
    po = _catalogue()
    assert len(po) > 500  # sanity: the real catalogue, not an empty file
    assert po.metadata["Language"] == "zh_Hans"
    assert po.metadata["Plural-Forms"] == "nplurals=1; plural=0;"
    assert [e.msgid for e in po.untranslated_entries()] == []
    assert [e.msgid for e in po.fuzzy_entries()] == []
    assert [e.msgid for e in po.obsolete_entries()] == []


def test_placeholders_survive_translation():
    wrong = []
    for entry in _catalogue():
        wanted = sorted(PLACEHOLDER.findall(entry.msgid))
        translations = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        wrong += [(entry.msgid, text) for text in translations if sorted(PLACEHOLDER.findall(text)) != wanted]
    assert wrong == []


def test_msgfmt_check_passes():
    _require_gettext()
    result = subprocess.run(
        ["msgfmt", "--check", "--output-file", os.devnull, str(PO)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # header warnings too


def test_catalogue_holds_exactly_what_the_sources_mark(tmp_path):
    """Run the README's makemessages on a copy of the tree; the msgids must be the committed ones."""
    _require_gettext()
    options = readme_makemessages_args()
    assert "zh_Hans" in options and "--no-obsolete" in options
    ignored = [option.split("=", 1)[1] for option in options if option.startswith("--ignore=")]
    copy = tmp_path / "tree"
    _copy_sources(copy, ignored)
    env = {**os.environ, "SECRET_KEY": os.environ.get("SECRET_KEY") or "translations-test"}
    result = subprocess.run(
        [sys.executable, "manage.py", "makemessages", *options],
        cwd=copy, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    extracted = {_key(e) for e in polib.pofile(str(copy / PO.relative_to(REPO)))}
    committed = {_key(e) for e in _catalogue()}
    assert sorted(extracted - committed, key=str) == [], "in the sources, not the catalogue: run makemessages"
    assert sorted(committed - extracted, key=str) == [], "in the catalogue, in no source: run makemessages"


def test_committed_mo_matches_the_po():
    def messages(entries) -> dict:  # the header (msgid "") is metadata, not a message
        return {_key(e): (e.msgstr, tuple(sorted(e.msgstr_plural.items()))) for e in entries if e.msgid}

    compiled = messages(polib.mofile(str(MO)))
    assert compiled == messages(_catalogue().translated_entries()), "run compilemessages and commit the .mo"


# --- the MITI instrument's strings -----------------------------------------------------------------


def miti_user_visible_strings() -> Iterator[str]:
    """Every English string of the pure instrument module that a page shows."""
    for code in (*miti.BEHAVIOUR_CODES, miti.NO_CODE_ENTRY):
        yield from (code.name, code.short)
    yield from miti.GROUP_LABELS.values()
    for scale in miti.GLOBAL_SCALES:
        yield from (scale.name, scale.anchor_low, scale.anchor_high)
        if scale.note:
            yield scale.note
    yield from miti.SCALE_GROUP_LABELS.values()
    yield from miti.MERGE_TEMPLATES
    yield from miti.SUMMARY_LABELS.values()
    yield from miti.THRESHOLD_LABELS.values()
    yield from (hint.text for hint in miti.WHEN_IN_DOUBT)
    yield from miti.VOLLEY_RULES


def test_every_miti_string_has_chinese():
    # A string added to the instrument without gettext_noop is never extracted, so it fails here.
    strings = list(dict.fromkeys(miti_user_visible_strings()))
    assert len(strings) == 75
    with translation.override("zh-hans"):
        missing = [text for text in strings if not CJK.search(translation.gettext(text))]
    assert missing == []


def test_miti_names_and_templates_in_chinese():
    with translation.override("zh-hans"):
        assert translation.gettext(miti.CODE_BY_KEY["CR"].name) == "复杂反映"
        assert translation.gettext(miti.NO_CODE_ENTRY.name) == "不编码"
        assert translation.gettext(miti.GLOBAL_BY_KEY["EMPATHY"].name) == "共情"
        assert translation.gettext(miti.SUMMARY_LABELS["pct_cr"]) == "复杂反映百分比"
        note = miti.tally_volley(["Q", "Q"]).notes[0]
        assert translation.gettext(note.template).format(**note.params) == "同一话轮中的 2 个提问只计为一个 Q"
        # the template tag the adjudication and results pages use on these names
        rendered = Template("{% load i18n %}{% translate code.name %}").render(
            Context({"code": miti.CODE_BY_KEY["PERSUADE_WITH"]})
        )
        assert rendered == "经许可的说服"


@pytest.mark.django_db
def test_coding_page_shows_the_instrument_in_chinese(client_for, study, coordinator, coder):
    build_round(study, coordinator, [coder])
    assignment = Assignment.objects.filter(coder=coder).order_by("position").first()
    by_volley: dict[int, list] = {}
    for utterance in utterances_of(assignment):
        by_volley.setdefault(utterance.volley_id, []).append(utterance)
    pair = next(us for us in by_volley.values() if len(us) >= 2)[:2]
    version = assignment.version
    for unit in pair:  # two questions in one volley: the page explains the merge
        saved = actions.save_code(assignment, utterance_id=unit.pk, code="Q", version=version, actor=coder)
        version = saved.version

    client = client_for(coder)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    html = client.get(f"/code/{assignment.pk}/?hints=1").content.decode()
    for text in (
        "复杂反映", "中立的信息、教育、反馈或专业意见",  # code name and one-liner
        "培养改变语句", "技术性", "完全不关注来访者的改变语句", "即使没有出现维持语句，也可能得到高分",  # globals
        "简单反映优先于复杂反映（SR 优先于 CR）",  # when-in-doubt hint
        "同一话轮中的多个提问只计为一个 Q",  # volley rule
        "同一话轮中的 2 个提问只计为一个 Q",  # the merge note of this volley
    ):
        assert text in html, text
    assert "Complex Reflection" not in html and "Several questions in one volley" not in html

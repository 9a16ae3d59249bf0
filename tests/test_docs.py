"""The project's documents are there: every document a file cites exists, and so does every section it names.

Scans the project's own Python, HTML, JavaScript and Markdown files (not ``.venv``, ``var`` or other
build output) for

* cited Markdown files — ``docs/metrics.md``, ``bench/README.md``, a bare ``README.md`` — which must
  exist relative to the repository root or to the citing file;
* a section named after a cited document, as in ``docs/metrics.md, "Rounds"`` — the document must
  have a heading that starts with that name;
* relative Markdown links in ``*.md`` files (the README's included), ``[text](target#anchor)`` —
  the target must exist and the anchor must be one of the target's headings, as GitHub slugs them.
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCANNED_SUFFIXES = {".py", ".html", ".js", ".md"}
SKIPPED_DIRS = {
    ".venv", "var", ".git", "node_modules", "__pycache__", "staticfiles", "build", "dist",
    ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis",
}

URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.I)
# A Markdown file name, with an optional folder path before it: "docs/metrics.md", "../docs/miti.md".
CITED_MD = re.compile(r"(?<![\w./-])((?:\.{1,2}/|[\w-]+/)*[\w.-]*\w\.md)\b")
# A document followed by the section it means: docs/metrics.md, "Rounds".
CITED_SECTION = re.compile(r"(?<![\w./-])((?:[\w-]+/)*[\w.-]*\w\.md), \"([^\"]+)\"")
MD_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def project_files() -> list[Path]:
    files = []
    for folder, dirs, names in os.walk(REPO):
        # Pruned in place, so the virtual environment and build output are never walked.
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and not d.endswith(".egg-info")]
        files += [Path(folder) / name for name in names if Path(name).suffix in SCANNED_SUFFIXES]
    return sorted(files)


def _text(path: Path) -> str:
    return URL.sub(" ", path.read_text(encoding="utf-8"))


def _resolve(target: str, cited_in: Path) -> Path | None:
    for base in (cited_in.parent, REPO):
        candidate = (base / target).resolve()
        if candidate.exists() and (candidate == REPO or REPO in candidate.parents):
            return candidate
    return None


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@cache
def headings(path: Path) -> tuple[str, ...]:
    return tuple(HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))))


def _where(path: Path, text: str, index: int) -> str:
    return f"{path.relative_to(REPO)}:{text.count(chr(10), 0, index) + 1}"


def test_the_project_documents_exist() -> None:
    for name in ("README.md", "docs/architecture.md", "docs/miti.md", "docs/metrics.md"):
        assert (REPO / name).is_file(), f"{name} is missing"


def test_every_cited_markdown_file_exists() -> None:
    missing = []
    for path in project_files():
        text = _text(path)
        for match in CITED_MD.finditer(text):
            if _resolve(match.group(1), path) is None:
                missing.append(f"{_where(path, text, match.start())}: {match.group(1)}")
    assert not missing, "cited documents that do not exist:\n" + "\n".join(missing)


def test_every_cited_section_is_a_heading_of_its_document() -> None:
    problems = []
    for path in project_files():
        text = _text(path)
        for match in CITED_SECTION.finditer(text):
            target, section = match.groups()
            document = _resolve(target, path)
            if document is None:
                continue  # reported by test_every_cited_markdown_file_exists
            if not any(h.lower().startswith(section.lower()) for h in headings(document)):
                problems.append(f"{_where(path, text, match.start())}: {target} has no section {section!r}")
    assert not problems, "cited sections that do not exist:\n" + "\n".join(problems)


def test_every_relative_markdown_link_resolves() -> None:
    problems = []
    for path in project_files():
        if path.suffix != ".md":
            continue
        text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), path.read_text(encoding="utf-8"))
        for match in MD_LINK.finditer(text):
            link = match.group(1)
            if URL.match(link) or link.startswith("mailto:"):
                continue
            target, _, anchor = link.partition("#")
            document = _resolve(target, path) if target else path
            where = _where(path, text, match.start())
            if document is None:
                problems.append(f"{where}: {link} (no such file)")
            elif anchor and document.suffix == ".md" and anchor not in {github_slug(h) for h in headings(document)}:
                problems.append(f"{where}: {link} (no heading with that anchor)")
    assert not problems, "broken links:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("Thresholds (Fair / Good)", "thresholds-fair--good"),
        ("Krippendorff's alpha", "krippendorffs-alpha"),
        ("Rounds: how imported dialogues become rounds", "rounds-how-imported-dialogues-become-rounds"),
        ("ICC(2,1) and ICC(2,k)", "icc21-and-icc2k"),
        ("`save_latency.py`", "save_latencypy"),
    ],
)
def test_github_slug(heading: str, slug: str) -> None:
    assert github_slug(heading) == slug


def test_the_scan_sees_what_it_should() -> None:
    """Guards the guard: the patterns find real citations, and a made-up one is reported."""
    files = {p.relative_to(REPO).as_posix() for p in project_files()}
    assert {"README.md", "annotation/miti.py", "docs/metrics.md", "templates/base.html"} <= files
    assert not any(f.startswith((".venv/", "var/")) for f in files)
    sample = 'See docs/metrics.md, "Rounds" and bench/README.md; not https://example.org/a/NOTES.md.'
    found = [m.group(1) for m in CITED_MD.finditer(URL.sub(" ", sample))]
    assert found == ["docs/metrics.md", "bench/README.md"]
    assert [m.groups() for m in CITED_SECTION.finditer(sample)] == [("docs/metrics.md", "Rounds")]
    assert _resolve("docs/no-such-document." + "md", REPO / "README.md") is None

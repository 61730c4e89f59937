"""docs/ ships with the code: generated references match, citations point at real sections."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from distill.cli.reference import cli_reference
from distill.config.reference import config_reference

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CITED_TREES = [ROOT / "src", ROOT / "examples"]
# Pages other workstreams add; linked from docs/index.md and cited before they land here.
PAGES_ADDED_ELSEWHERE = {
    "data.md",
    "guarantees.md",
    "intermediate.md",
    "methods.md",
    "pair-sums.md",
    "seeds.md",
    "teachers.md",
}
# Documents a user of the package does not have, and bare patent citations.
FORBIDDEN = re.compile(
    r"FORMULAS|DESIGN|contracts\.md|\bissue \d|\b[Pp]atent(?:'s)? (?:¶|FIGS?\.|Eqs?\.|claim)"
)
PATENT = "US 2023/0252281"


def _forbidden(line: str) -> bool:
    """A forbidden citation, or a paragraph sign without the patent's number on the line."""
    return bool(FORBIDDEN.search(line)) or ("¶" in line and PATENT not in line)


def _files(suffixes=(".py", ".toml")):
    for tree in CITED_TREES:
        yield from (p for p in tree.rglob("*") if p.suffix in suffixes)


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#{1,6} (.+)$", page.read_text(), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize(
    ("page", "generate", "command"),
    [
        ("config.md", config_reference, "python -m distill.config.reference docs/config.md"),
        ("cli.md", cli_reference, "python -m distill.cli.reference docs/cli.md"),
    ],
)
def test_generated_references_match_the_code(page, generate, command):
    assert (DOCS / page).read_text() == generate(), f"docs/{page} drifted: run `{command}`"


def test_no_citation_of_documents_users_do_not_have():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _files()
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if _forbidden(line)
    ]
    assert offenders == []


def test_the_citation_check_catches_each_forbidden_form():
    for text in (
        "FORMULAS §4",
        "DESIGN convention 10",
        "see issue 4",
        "contracts.md",
        "patent ¶0043",
        "patent FIG. 4",
        "the patent's Eqs. 3",
        "(¶0124)",
    ):
        assert _forbidden(text), text
    assert not _forbidden("US 2023/0252281 ¶0052, ¶0124; docs/formulas.md#penalties")


def test_cited_docs_sections_exist():
    cited = {
        (page, anchor)
        for path in _files()
        for page, anchor in re.findall(r"docs/([\w-]+\.md)(?:#([\w-]+))?", path.read_text())
    }
    assert cited, "no docs/ citation found at all"
    for page, anchor in sorted(cited):
        target = DOCS / page
        if not target.exists():
            assert page in PAGES_ADDED_ELSEWHERE, f"docs/{page} is cited but does not exist"
            continue
        assert not anchor or anchor in _anchors(target), f"docs/{page}#{anchor} has no heading"


def test_links_between_docs_pages_resolve():
    for page in DOCS.glob("*.md"):
        for target, anchor in re.findall(r"\]\(([^)#\s]+\.md)(?:#([\w-]+))?\)", page.read_text()):
            path = (page.parent / target).resolve()
            if not path.exists():
                assert target in PAGES_ADDED_ELSEWHERE, f"{page.name} links to missing {target}"
                continue
            assert not anchor or anchor in _anchors(path), f"{page.name}: {target}#{anchor}"


def test_index_links_every_docs_page():
    index = (DOCS / "index.md").read_text()
    for page in DOCS.glob("*.md"):
        assert page.name == "index.md" or f"({page.name})" in index, page.name

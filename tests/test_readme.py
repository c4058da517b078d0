"""The README stands on its own: every relative link and every Markdown file it names is in the
repository, and every in-page link lands on a heading."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
NAMED_DOCUMENT = re.compile(r"`([^`\s]+\.md)`")


def heading_anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def relative_links(text: str) -> list[str]:
    return [target for target in LINK.findall(text) if not re.match(r"^[a-z][a-z0-9+.-]*:", target)]


def test_every_relative_link_resolves_to_a_file_in_the_repository():
    links = relative_links(README)
    assert links, "the README links its screenshots at least"
    missing = []
    for target in links:
        path = target.split("#", 1)[0]
        if path and not (ROOT / path).resolve().is_relative_to(ROOT):
            missing.append(f"{target} (outside the repository)")
        elif path and not (ROOT / path).is_file():
            missing.append(target)
    assert missing == []


def test_every_in_page_link_lands_on_a_heading():
    anchors = {heading_anchor(h) for h in re.findall(r"^#+\s+(.+)$", README, flags=re.MULTILINE)}
    in_page = [target[1:] for target in relative_links(README) if target.startswith("#")]
    assert in_page and [anchor for anchor in in_page if anchor not in anchors] == []


def test_every_markdown_file_it_names_is_in_the_repository():
    named = set(NAMED_DOCUMENT.findall(README))
    assert [name for name in sorted(named) if not (ROOT / name).is_file()] == []
    assert "DESIGN.md" not in README and "../" not in README


def test_the_checks_catch_a_link_that_leads_nowhere():
    text = "See [the design](../shared/DESIGN.md) and ![map](static/screenshots/flow-map.png)."
    assert relative_links(text) == ["../shared/DESIGN.md", "static/screenshots/flow-map.png"]
    assert not (ROOT / "../shared/DESIGN.md").resolve().is_relative_to(ROOT)
    assert heading_anchor("Metrics and machine endpoints") == "metrics-and-machine-endpoints"


def test_every_promise_it_cites_by_number_is_written_in_it():
    section = README.split("## What it promises", 1)[1].split("\n#", 1)[0]
    listed = {int(n) for n in re.findall(r"^(\d+)\. \*\*", section, flags=re.MULTILINE)}
    cited_groups = re.findall(r"promises?\]?(?:\([^)]*\))? ((?:\d+(?:, | and )?)+)", README)
    cited = {int(n) for group in cited_groups for n in re.findall(r"\d+", group)}
    assert listed == set(range(1, 10)) and cited and cited <= listed

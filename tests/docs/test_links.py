"""Every relative link and `#anchor` in README.md and docs/ points at a file and a heading that exist.

Pages are split and renamed as the project grows; a moved section must not leave a dead link behind.
"""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from tests.helpers.markdown import REPO_ROOT, doc_pages, github_slug, read_page

PAGES = doc_pages()


def test_the_front_page_links_every_docs_page() -> None:
    front = read_page(REPO_ROOT / "README.md")
    linked = {(REPO_ROOT / target.split("#")[0]).resolve() for _, target in front.links()}
    unlinked = [page.path.name for page in PAGES[1:] if page.path.resolve() not in linked]
    assert not unlinked, f"README.md links no page {unlinked}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.path.relative_to(REPO_ROOT)))
def test_every_relative_link_resolves(page) -> None:
    anchors_of = {}
    broken = []
    for line, target in page.links():
        if "://" in target or target.startswith("mailto:"):
            continue
        file_part, _, anchor = target.partition("#")
        destination = (page.path.parent / unquote(file_part)).resolve() if file_part else page.path.resolve()
        if not destination.exists():
            broken.append(f"line {line}: {target} (no such file)")
            continue
        if anchor and destination.suffix == ".md":
            if destination not in anchors_of:
                anchors_of[destination] = read_page(destination).anchors
            if anchor not in anchors_of[destination]:
                broken.append(f"line {line}: {target} (no heading with anchor #{anchor})")
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Resume and interruption", "resume-and-interruption"),
        ("The loop's scalars", "the-loops-scalars"),
        ("A folder of images: `data=image_folder`", "a-folder-of-images-dataimage_folder"),
        ("Coming from the official Optuna sweeper or lightning-hydra-template",
         "coming-from-the-official-optuna-sweeper-or-lightning-hydra-template"),
    ],
)
def test_anchors_are_spelled_as_github_spells_them(heading: str, anchor: str) -> None:
    assert github_slug(heading) == anchor

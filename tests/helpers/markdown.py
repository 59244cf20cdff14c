"""Read the project's Markdown pages as GitHub renders them: fenced blocks, headings and their anchors, links.

The docs tests need to know which lines are inside a code fence (a `[x](y)` or `<!-- runnable -->` in a fenced
example is text, not a link or a marker), so the scan follows CommonMark's fence rule: a fence closes only on
a line of the same character, at least as long as the opening one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNNABLE_MARKER = "<!-- runnable -->"

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_INLINE_CODE = re.compile(r"`+[^`]*`+")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


@dataclass(frozen=True)
class Block:
    """A fenced code block: where it starts (1-based line of the opening fence), its info string and text."""

    path: Path
    line: int
    language: str
    text: str
    marked_runnable: bool

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO_ROOT)}:{self.line}"


@dataclass(frozen=True)
class Page:
    """One Markdown file split into its fenced blocks and the lines outside them (with line numbers)."""

    path: Path
    blocks: list[Block]
    prose: list[tuple[int, str]]

    @property
    def anchors(self) -> set[str]:
        """The `#anchor`s GitHub gives this page's headings (a repeated heading gets `-1`, `-2`, ...)."""
        seen: dict[str, int] = {}
        anchors = set()
        for _, line in self.prose:
            match = _HEADING.match(line)
            if not match:
                continue
            slug = github_slug(match.group(2))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            anchors.add(slug if count == 0 else f"{slug}-{count}")
        return anchors

    def markers(self) -> list[int]:
        """Lines outside the fences that hold the runnable marker."""
        return [number for number, line in self.prose if line.strip() == RUNNABLE_MARKER]

    def links(self) -> list[tuple[int, str]]:
        """Every link and image target in the prose (inline code spans are text, not links)."""
        return [
            (number, target)
            for number, line in self.prose
            for target in _LINK.findall(_INLINE_CODE.sub("", line))
        ]


def github_slug(heading: str) -> str:
    """The anchor GitHub makes of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def read_page(path: Path) -> Page:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    prose: list[tuple[int, str]] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        opening = _FENCE.match(line)
        if not opening:
            prose.append((index + 1, line))
            index += 1
            continue
        fence = opening.group(1)
        body: list[str] = []
        end = index + 1
        while end < len(lines) and not re.match(rf"^ {{0,3}}{fence[0]}{{{len(fence)},}}\s*$", lines[end]):
            body.append(lines[end])
            end += 1
        line_before = prose[-1] if prose else (0, "")
        blocks.append(
            Block(
                path=path,
                line=index + 1,
                language=opening.group(2),
                text="\n".join(body) + "\n",
                marked_runnable=line_before == (index, RUNNABLE_MARKER),
            )
        )
        index = end + 1
    return Page(path=path, blocks=blocks, prose=prose)


def doc_pages() -> list[Page]:
    """The front page and every page under docs/."""
    paths = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").rglob("*.md"))]
    return [read_page(path) for path in paths]

"""Docusaurus-compatible URL paths, heading anchors and Markdown line structure.

The tutor cites book passages as links (``…/docs/module-1/ros2-communication#topics``). Those links are
only useful if they land where Docusaurus put the page and the heading, so this module re-implements,
in Python, the small pieces of Docusaurus that decide them:

* the doc URL path (number-prefix stripping, category index files, ``slug``/``id`` front matter);
* heading ids: ``{#custom-id}`` or github-slugger over the heading's plain text, with its ``-1``/``-2``
  numbering for repeated headings.

It also knows which lines are inside code fences, because a ``# comment`` in a Python block is not a
heading and MDX cleanup must never touch code.
"""

from __future__ import annotations

import html
import posixpath
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

# --- headings -------------------------------------------------------------------------------------

_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
_CLOSING_HASHES = re.compile(r"(?:^|[ \t]+)#+[ \t]*$")
# Same pattern as Docusaurus' parseMarkdownHeadingId: any chars except `{#` and `}`, at the very end.
_EXPLICIT_ID = re.compile(r"\s*\{#((?:.(?!\{#|\}))*.)\}$")

_CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)")
_IMAGE = re.compile(r"!\[([^\]]*)\](?:\([^)]*\)|\[[^\]]*\])?")
_LINK = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\[[^\]]*\])")
_AUTOLINK = re.compile(r"<((?:https?|ftp|mailto):[^<>\s]+)>")
_HTML_TAG = re.compile(r"<!--.*?-->|</?[A-Za-z][^<>]*>")
_EMPHASIS = re.compile(r"\*+(?=\S)|(?<=\S)\*+|(?<!\w)_+(?=[^\s_])|(?<=[^\s_])_+(?!\w)|~~")
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")

# github-slugger keeps letters, marks, decimal/letter numbers and connector punctuation (`_`), plus
# the ASCII space and hyphen; everything else (punctuation, symbols, `²`, ZWNJ, …) is removed.
_SLUG_KEEP_CATEGORIES = ("L", "M", "Nd", "Nl", "Pc")


@dataclass(frozen=True)
class Heading:
    """An ATX heading line: ``text`` is its inline Markdown with any ``{#id}`` removed."""

    level: int
    text: str
    explicit_id: str | None = None

    @property
    def plain_text(self) -> str:
        """The heading as plain text (Markdown markup removed)."""
        return heading_plain_text(self.text)


def parse_heading(line: str) -> Heading | None:
    """Parse an ATX heading (``## Title ##``); setext headings are not recognised."""
    match = _ATX_HEADING.match(line.rstrip("\r\n"))
    if match is None:
        return None
    text = _CLOSING_HASHES.sub("", match.group(2) or "")
    explicit = _EXPLICIT_ID.search(text)
    if explicit is not None:
        return Heading(len(match.group(1)), text[: explicit.start()].strip(), explicit.group(1))
    return Heading(len(match.group(1)), text.strip())


def heading_plain_text(markdown: str) -> str:
    """Reduce inline Markdown to the text mdast-util-to-string would give Docusaurus' slugger.

    Code spans keep their content, links and images keep their text/alt (as mdast-util-to-string
    does), emphasis markers and HTML tags disappear.
    """
    pieces: list[str] = []
    last = 0
    for code in _CODE_SPAN.finditer(markdown):
        pieces.append(_inline_to_text(markdown[last : code.start()]))
        pieces.append(code.group(2))
        last = code.end()
    pieces.append(_inline_to_text(markdown[last:]))
    return "".join(pieces).strip()


def _inline_to_text(markdown: str) -> str:
    text = _IMAGE.sub(r"\1", markdown)
    text = _LINK.sub(r"\1", text)
    text = _AUTOLINK.sub(r"\1", text)
    text = _HTML_TAG.sub("", text)
    text = _EMPHASIS.sub("", text)
    return html.unescape(_ESCAPE.sub(r"\1", text))


def github_slug(plain_text: str) -> str:
    """github-slugger's ``slug()``: lower-case, drop disallowed characters, each space becomes ``-``."""
    kept = (
        char
        for char in plain_text.lower()
        if char in " -" or unicodedata.category(char).startswith(_SLUG_KEEP_CATEGORIES)
    )
    return "".join(kept).replace(" ", "-")


def heading_slug(text: str) -> str:
    """Slug of a heading's inline Markdown, as Docusaurus computes it (without de-duplication)."""
    return github_slug(heading_plain_text(text))


class HeadingSlugger:
    """Unique anchors for one page, with github-slugger's occurrence counting.

    ``foo`` then ``foo`` gives ``foo``, ``foo-1``; a real heading already slugged ``foo-1`` pushes the
    next repeat of ``foo`` to ``foo-2``. Docusaurus does not register ``{#explicit}`` ids with the
    slugger, so :meth:`anchor` returns them untouched and they do not shift later numbering.
    """

    def __init__(self) -> None:
        self._occurrences: dict[str, int] = {}

    def slug(self, text: str) -> str:
        """Docusaurus's slug of `text`, unique within the page."""
        base = heading_slug(text)
        result = base
        while result in self._occurrences:
            self._occurrences[base] += 1
            result = f"{base}-{self._occurrences[base]}"
        self._occurrences[result] = 0
        return result

    def anchor(self, heading: Heading) -> str:
        """The heading's anchor: its explicit id, else its unique slug."""
        return heading.explicit_id if heading.explicit_id is not None else self.slug(heading.text)


# --- code fences ----------------------------------------------------------------------------------

_FENCE_OPEN = re.compile(r"^[ \t]*(`{3,}|~{3,})(.*)$")


def code_fence_spans(lines: Sequence[str]) -> list[tuple[int, int]]:
    """``(start, end)`` line ranges (end exclusive) of fenced code blocks, delimiters included.

    Indentation is not limited to three spaces so that fences nested in list items are still seen
    as code. An unclosed fence runs to the end of the document, as in CommonMark.
    """
    spans: list[tuple[int, int]] = []
    index = 0
    while index < len(lines):
        opening = _FENCE_OPEN.match(lines[index])
        if opening is None or (opening.group(1)[0] == "`" and "`" in opening.group(2)):
            index += 1
            continue
        fence = opening.group(1)
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        end = index + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        end = min(end + 1, len(lines))
        spans.append((index, end))
        index = end
    return spans


def iter_headings(lines: Sequence[str]) -> Iterator[tuple[int, Heading]]:
    """``(line index, heading)`` for every heading outside code fences, in document order."""
    fenced = {index for start, end in code_fence_spans(lines) for index in range(start, end)}
    for index, line in enumerate(lines):
        heading = None if index in fenced else parse_heading(line)
        if heading is not None:
            yield index, heading


# --- doc URL paths --------------------------------------------------------------------------------

_VERSION_LIKE = re.compile(r"^\d+[-_.]\d+")
_NUMBER_PREFIX = re.compile(r"^(\d+)\s*[-_.]+\s*([^-_.\s].*)$")


def split_number_prefix(name: str) -> tuple[int | None, str]:
    """Docusaurus' default number-prefix parser: ``02-intro`` → ``(2, "intro")``.

    Like Docusaurus, names that look like dates or versions (``2021-05-foo``, ``1.2-notes``) are left
    alone.
    """
    if _VERSION_LIKE.match(name):
        return None, name
    match = _NUMBER_PREFIX.match(name)
    if match is None:
        return None, name
    return int(match.group(1)), match.group(2)


def strip_number_prefix(name: str) -> str:
    """`name` without a leading number prefix (`01-nodes` → `nodes`), as Docusaurus does."""
    return split_number_prefix(name)[1]


def is_category_index(rel_path: PurePosixPath) -> bool:
    """``index.md``, ``README.md`` or ``<folder>/<folder>.md`` (compared before prefix stripping)."""
    folder = rel_path.parent.name.lower()
    return rel_path.stem.lower() in {"index", "readme"} or (bool(folder) and rel_path.stem.lower() == folder)


def doc_path(rel_path: PurePosixPath, front_matter: dict[str, Any]) -> str:
    """URL path of a doc under the docs route, without leading or trailing slash (root index → "")."""
    slug = front_matter.get("slug")
    slug = str(slug).strip() if slug not in (None, "") else None
    if slug is not None and slug.startswith("/"):
        return _normalise(slug)
    folders = [strip_number_prefix(part) for part in rel_path.parent.parts]
    if slug is None and is_category_index(rel_path):
        return _normalise("/".join(folders))
    doc_id = front_matter.get("id")
    last = slug or (str(doc_id) if doc_id not in (None, "") else strip_number_prefix(rel_path.stem))
    return _normalise("/".join([*folders, last]))


def _normalise(path: str) -> str:
    return posixpath.normpath("/" + path).strip("/")

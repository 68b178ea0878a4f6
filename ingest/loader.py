"""Load a Docusaurus docs folder into clean Markdown pages with the URLs Docusaurus gives them.

A book is written by people, so bad input is expected: one binary, non-UTF-8, empty or badly
front-mattered file must not stop the other pages from being indexed. Such files become
:class:`LoadProblem` entries; only whole-book failures (missing path, no Markdown at all) raise
:class:`BookError`.

MDX is reduced to the Markdown a reader sees: imports/exports and JSX comments go, JSX/HTML tags go
but their text stays, admonitions become a plain ``Tip: Title`` line. Code fences are never touched.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from ingest.anchors import (
    doc_path,
    is_category_index,
    iter_headings,
    split_number_prefix,
    strip_number_prefix,
)
from ingest.mdx import clean_mdx

MARKDOWN_SUFFIXES = (".md", ".mdx")
_CATEGORY_FILES = ("_category_.json", "_category_.yml", "_category_.yaml")
_SKIPPED_DIRS = {"node_modules", "__tests__"}


@dataclass(frozen=True)
class Page:
    """One page of the book: its source, path, title, URL and Markdown text."""

    source: str  # POSIX path relative to the book root
    doc_path: str  # URL path under the docs route, e.g. "module-1/ros2-communication"
    url: str
    title: str
    category: str | None
    tags: tuple[str, ...]
    sidebar_position: float | None
    body: str  # cleaned Markdown, front matter and title-duplicating h1 removed
    title_heading: str | None = None  # the removed h1 line as written: it still counts for anchor numbering


@dataclass(frozen=True)
class LoadProblem:
    """A file that could not be read as a page, and why."""

    source: str
    message: str


class BookError(Exception):
    """The book as a whole cannot be loaded (the message says why)."""


class _PageProblem(Exception):
    pass


def iter_book_files(root: Path) -> list[Path]:
    """Markdown files Docusaurus would render, sorted by their path relative to ``root``.

    Skips hidden folders, ``node_modules`` and ``_``-prefixed files and folders (partials), the same
    exclusions as the docs plugin's defaults.
    """
    if not root.exists():
        raise BookError(f"book path does not exist: {root}")
    if root.is_file():
        if root.suffix.lower() not in MARKDOWN_SUFFIXES:
            raise BookError(f"not a Markdown file (.md/.mdx): {root}")
        return [root]
    if not root.is_dir():
        raise BookError(f"book path is neither a folder nor a file: {root}")
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith((".", "_")) and d not in _SKIPPED_DIRS]
        found.extend(
            Path(folder, name)
            for name in files
            if name.lower().endswith(MARKDOWN_SUFFIXES) and not name.startswith(("_", "."))
        )
    return sorted(found, key=lambda path: path.relative_to(root).as_posix())


def load_book(root: Path, base_url: str, docs_route: str = "docs") -> tuple[list[Page], list[LoadProblem]]:
    """Load every page under ``root`` (a folder, or a single .md/.mdx file)."""
    files = iter_book_files(root)
    if not files:
        raise BookError(f"no .md or .mdx files under {root}")
    base = root if root.is_dir() else root.parent
    pages: list[Page] = []
    problems: list[LoadProblem] = []
    labels: dict[Path, str] = {}
    owners: dict[str, str] = {}
    for path in files:
        rel = PurePosixPath(path.relative_to(base).as_posix())
        category = _category_label(path.parent, base, labels, problems) if rel.parent.name else None
        try:
            page = _load_page(path, rel, category, base_url, docs_route)
        except _PageProblem as problem:
            problems.append(LoadProblem(str(rel), str(problem)))
            continue
        if page.doc_path in owners:
            message = f"same URL path as {owners[page.doc_path]} ({page.url}); page skipped"
            problems.append(LoadProblem(str(rel), message))
            continue
        owners[page.doc_path] = str(rel)
        pages.append(page)
    return pages, problems


def _load_page(path: Path, rel: PurePosixPath, category: str | None, base_url: str, docs_route: str) -> Page:
    front_matter, markdown = split_front_matter(_read_text(path))
    body = clean_mdx(markdown)
    lines = body.split("\n")
    h1_index, h1 = next(((i, h) for i, h in iter_headings(lines) if h.level == 1), (0, None))
    title = str(front_matter.get("title") or "").strip() or (h1.plain_text if h1 else "") or _pretty(rel)
    title_heading = None
    if h1 is not None and h1.plain_text == title:
        title_heading = lines[h1_index].strip()
        body = "\n".join(lines[:h1_index] + lines[h1_index + 1 :]).strip("\n")
    if not body.strip():
        raise _PageProblem("empty page")
    path_ = doc_path(rel, front_matter)
    url_tail = "/".join(part for part in (docs_route.strip("/"), path_) if part)
    return Page(
        source=str(rel),
        doc_path=path_,
        url=f"{base_url.rstrip('/')}/{url_tail}",
        title=title,
        category=category,
        tags=_tags(front_matter.get("tags")),
        sidebar_position=_position(front_matter.get("sidebar_position"), rel.stem),
        body=body,
        title_heading=title_heading,
    )


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _PageProblem(f"cannot read file: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _PageProblem(f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from exc
    if "\x00" in text:
        raise _PageProblem(f"binary file, not text (NUL byte at offset {text.index(chr(0))})")
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?---[ \t]*(?:\n|\Z)", re.DOTALL)


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """YAML front matter (Docusaurus supports nothing else) and the Markdown after it."""
    match = _FRONT_MATTER.match(text)
    if match is None:
        return {}, text
    try:
        data = yaml.safe_load(match.group(1) or "")
    except yaml.YAMLError as exc:
        raise _PageProblem(f"front matter is not valid YAML: {_yaml_reason(exc)}") from exc
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise _PageProblem(f"front matter is not a mapping of keys to values (found {type(data).__name__})")
    return data, text[match.end() :]


def _yaml_reason(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        # +2: YAML line 0 is the file's line 2, after the opening `---`.
        return f"{exc.problem or exc.context} (line {exc.problem_mark.line + 2})"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


# --- metadata -------------------------------------------------------------------------------------


def _pretty(rel: PurePosixPath) -> str:
    name = rel.stem
    if is_category_index(rel) and rel.parent.name:
        name = rel.parent.name
    words = re.split(r"[-_\s]+", strip_number_prefix(name))
    return " ".join(word[:1].upper() + word[1:] for word in words if word) or name


def _tags(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value] if isinstance(value, str | int) else []
    labels = (item.get("label") if isinstance(item, dict) else item for item in items)
    return tuple(str(label).strip() for label in labels if label is not None and str(label).strip())


def _position(value: Any, stem: str) -> float | None:
    """``sidebar_position``, else the file's number prefix (Docusaurus orders the sidebar by it)."""
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            pass
    prefix = split_number_prefix(stem)[0]
    return float(prefix) if prefix is not None else None


def _category_label(folder: Path, root: Path, cache: dict[Path, str], problems: list[LoadProblem]) -> str:
    """Sidebar label of ``folder``: ``_category_`` file label, else the folder name without prefix."""
    if folder not in cache:
        cache[folder] = strip_number_prefix(folder.name)
        meta_path = next((folder / name for name in _CATEGORY_FILES if (folder / name).is_file()), None)
        if meta_path is not None:
            try:
                text = meta_path.read_text(encoding="utf-8")
                meta = json.loads(text) if meta_path.suffix == ".json" else yaml.safe_load(text)
            except (OSError, ValueError, yaml.YAMLError) as exc:  # ValueError covers JSON and decoding
                problems.append(
                    LoadProblem(meta_path.relative_to(root).as_posix(), f"bad category file: {exc}")
                )
                return cache[folder]
            label = str(meta.get("label") or "").strip() if isinstance(meta, dict) else ""
            cache[folder] = label or cache[folder]
    return cache[folder]

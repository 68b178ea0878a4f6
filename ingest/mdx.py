"""MDX reduced to the Markdown a reader sees.

Imports/exports and JSX comments go, JSX/HTML tags go but their text stays (a `<TabItem>`'s code is
content), admonitions become a plain `Tip: Title` line. Code fences are never touched.
"""

from __future__ import annotations

import re

from ingest.anchors import code_fence_spans

_ESM_START = re.compile(r"^(?:import|export)(?=[\s{*]|$)")
_JS_STRING = re.compile(r"'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"|`(?:\\.|[^`\\])*`")
_JS_CONTINUATION = (",", "=", "=>", "(", "{", "[", "+", "&&", "||", "?")
_COMMENTS = re.compile(r"\{/\*.*?\*/\}|<!--.*?-->", re.DOTALL)
_TAG_OR_KEPT = re.compile(
    r"(?P<keep>(`+)(?:(?!\2).)+?\2|<(?:https?|ftp|mailto):[^<>\s]+>)"
    # A tag may span lines (attributes) but not a blank line, so a stray `<` cannot eat paragraphs.
    r"|</?[A-Za-z][\w.:-]*"
    r"(?:\"[^\"\n]*\"|'[^'\n]*'|\{(?:[^{}]|\{[^{}]*\})*\}|[^<>\"'{}\n]|\n(?![ \t]*\n))*>|</?>"
)
_ADMONITION_OPEN = re.compile(r"^(\s*):{3,}([A-Za-z][\w-]*)(?:\[([^\]]*)\])?(?:\{[^}]*\})?[ \t]*(.*?)\s*$")
_ADMONITION_CLOSE = re.compile(r"^\s*:{3,}\s*$")


def clean_mdx(markdown: str) -> str:
    """Reader-visible Markdown of an MDX document; code fences are copied unchanged."""
    lines = markdown.split("\n")
    out: list[str] = []
    done = 0
    for start, end in code_fence_spans(lines):
        out.extend(_clean_prose(lines[done:start]))
        out.extend(lines[start:end])
        done = end
    out.extend(_clean_prose(lines[done:]))
    return "\n".join(out).strip("\n")


def _clean_prose(lines: list[str]) -> list[str]:
    kept: list[str] = []
    index = 0
    while index < len(lines):
        if _ESM_START.match(lines[index]):
            index = _esm_end(lines, index)
        else:
            kept.append(lines[index])
            index += 1
    text = _COMMENTS.sub("", "\n".join(kept))
    text = _TAG_OR_KEPT.sub(lambda match: match.group("keep") or "", text)
    cleaned: list[str] = []
    for line in text.split("\n"):
        opening = _ADMONITION_OPEN.match(line)
        if opening:
            indent, kind, bracket_title, rest = opening.groups()
            line = f"{indent}{kind.capitalize()}: {bracket_title or rest}".rstrip()
        elif _ADMONITION_CLOSE.match(line):
            continue
        line = line if line.strip() else ""
        if line or not cleaned or cleaned[-1]:
            cleaned.append(line)
    return cleaned


def _esm_end(lines: list[str], start: int) -> int:
    """Index after an import/export statement: brackets balanced and nothing left dangling."""
    depth = 0
    for index in range(start, len(lines)):
        code = _JS_STRING.sub('""', lines[index]).split("//")[0].rstrip()
        depth += sum(code.count(c) for c in "{[(") - sum(code.count(c) for c in "}])")
        if depth <= 0 and not code.endswith(_JS_CONTINUATION):
            return index + 1
    # Never balanced: drop only up to the next blank line rather than the rest of the page.
    return next((i for i in range(start + 1, len(lines)) if not lines[i].strip()), len(lines))

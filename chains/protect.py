"""Shield what a rewrite must not touch (code, links, formulas, markup, glossary terms) behind placeholders.

A model asked to keep code "exactly" still reformats it, translates its comments or "fixes" a URL. So
the untouchable spans are swapped for opaque tokens the model is told to copy and put back afterwards
from a table: whatever the model does to the prose, the restored spans are byte-for-byte the book's.

Placeholder form `⟦C3⟧` (U+27E6/U+27E7, a kind letter, a number): those brackets occur in no
Markdown, code or natural-language text we serve, so they never collide with the content; they are
single code points, and a bare letter+number gives a translator nothing to translate. Rejected:
`{{x}}` (JSX, Jinja, f-strings), `<x/>` (models "repair" or translate tags, and real tags are masked
too), `[[x]]` (Python lists, wiki links). On the way back we accept what models turn them into:
`⟦ C 3 ⟧`, `[[C3]]`, `[C3]`, `【C3】`, lower case, native digits (`⟦C۳⟧`), stray bidi marks.

Kinds: C fenced code, F front matter, E MDX import/export, I inline code, L literal placeholder-like
text already in the input, D display math, M inline math, H HTML/JSX tag or comment, U URL, T glossary
term. H also covers Docusaurus admonition markers (`:::note`). Not masked: indented (4-space) code
blocks, too ambiguous with list continuation lines.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)

_SP = r"[ \t\u00a0\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]*"  # spaces and bidi marks models insert
_BODY = rf"{_SP}([A-Za-z]){_SP}[-_]?{_SP}(\d+){_SP}"  # \d matches any script's digits; int() reads them
_BRACKETS = (("⟦", "⟧"), (r"\[\[", r"\]\]"), ("⟦", r"\]"), (r"\[", "⟧"), ("【", "】"), (r"\[", r"\]"))
_LOOSE = re.compile("|".join(f"{opening}{_BODY}{closing}" for opening, closing in _BRACKETS))
_OURS = re.compile(r"(⟦[A-Z]\d+⟧)")  # the exact form mask() writes; what later passes must skip

# Dropped by the model → re-added at the end (front matter: the start) so no code is lost.
APPENDED_KINDS = frozenset("CEDF")
_LINE_KINDS = frozenset("CEF")  # must start and end a line to render, wherever the model put them

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n.*?\n---[ \t]*(?=\r?\n|\Z)", re.S)
_FENCE = re.compile(r"^([ \t]*)(`{3,}|~{3,})(.*)$")
_ESM = re.compile(
    r"(?:\A|(?<=\n\n))(?:import\s[^\n]*\bfrom\s*['\"]|import\s*['\"{]|export\s+(?:const|let|var|function|"
    r"default|class|\{))[^\n]*(?:\n(?![ \t]*\n)[^\n]*)*"
)
_INLINE_CODE = re.compile(r"(?<!`)(`+)(?!`)(?:(?!\n[ \t]*\n).)+?(?<!`)\1(?!`)", re.S)
_DISPLAY_MATH = re.compile(r"(?<!\\)\$\$.+?(?<!\\)\$\$", re.S)
_INLINE_MATH = re.compile(r"(?<![\\$\w])\$(?=[^\s$])[^$\n]*?[^\s\\$]\$(?![\d$])")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)
_LINK_TARGET = re.compile(r"\]\([ \t]*(<[^<>\n]*>|(?:[^\s()]|\([^\s()]*\))+)")
_REFERENCE = re.compile(r"^[ ]{0,3}\[[^\]\n]+\]:[ \t]*(\S+)", re.M)
_AUTOLINK = re.compile(r"<(?:https?|ftp|mailto):[^<>\s]+>")
_TAG = re.compile(
    r"</?[A-Za-z][\w.:-]*(?:\s(?:[^<>{}\"'\n]|\n(?![ \t]*\n)|\"[^\"]*\"|'[^']*'"
    r"|\{(?:[^{}]|\{[^{}]*\})*\})*)?/?>|</?>"
)
_ADMONITION = re.compile(r"^[ \t]*:::[\w-]*", re.M)  # Docusaurus `:::note Title` — the title is prose
_URL = re.compile(r"\b(?:https?|ftp)://(?:[\w\-.~:/?#@!$&*+,;=%']|\([\w\-.~:/?#@!$&*+,;=%']*\))+")
# After front matter and fences, in this order: each pass only sees text no earlier pass took.
_PASSES = (
    ("E", _ESM, 0), ("I", _INLINE_CODE, 0), ("L", _LOOSE, 0), ("D", _DISPLAY_MATH, 0), ("M", _INLINE_MATH, 0),
    ("H", _HTML_COMMENT, 0), ("U", _AUTOLINK, 0), ("U", _LINK_TARGET, 1), ("U", _REFERENCE, 1),
    ("H", _TAG, 0), ("H", _ADMONITION, 0),
)  # fmt: skip


@dataclass(frozen=True)
class Masked:
    """The text the model sees, and the placeholder id → original span table to undo it."""

    text: str
    originals: Mapping[str, str]

    def ids_in(self, text: str) -> list[str]:
        """Placeholder ids in `text` (exact form), first occurrence order."""
        return list(dict.fromkeys(match[1:-1] for match in _OURS.findall(text)))


@dataclass(frozen=True)
class Restored:
    """Unmasked text plus what the model lost: `missing` ids, of which `appended` were re-added."""

    text: str
    missing: tuple[str, ...] = ()
    appended: tuple[str, ...] = ()


class _Table:
    """Issues placeholders that cannot collide with text already in the input.

    Never an id that already appears in the input in any form `restore`
    accepts (say `[C1]` in a code sample), so such text can never be mistaken for ours.
    """

    def __init__(self, text: str) -> None:
        self.originals: dict[str, str] = {}
        self.counts: dict[str, int] = {}
        self.terms: dict[str, str] = {}
        self.reserved = {_canonical(match) for match in _LOOSE.finditer(text)}

    def add(self, kind: str, original: str) -> str:
        if kind == "T" and original in self.terms:  # one id per term: its legend line is written once
            return self.terms[original]
        pid = ""
        while not pid or pid in self.reserved:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            pid = f"{kind}{self.counts[kind]}"
        self.originals[pid] = original
        token = f"⟦{pid}⟧"
        if kind == "T":
            self.terms[original] = token
        return token

    def sub(self, pattern: re.Pattern[str], kind: str, text: str, group: int = 0) -> str:
        """Mask `group` of each match, outside existing placeholders, so originals never nest."""

        def replace(match: re.Match[str]) -> str:
            (start, end), offset = match.span(group), match.start()
            return match[0][: start - offset] + self.add(kind, match[group]) + match[0][end - offset :]

        return self.sub_with(pattern, text, replace)

    def sub_with(self, pattern: re.Pattern[str], text: str, replace: Callable[[re.Match[str]], str]) -> str:
        pieces = _OURS.split(text)
        texts, tokens = [pieces[0]], []
        for token, after in zip(pieces[1::2], pieces[2::2], strict=True):
            if token[1:-1] in self.originals:
                tokens.append(token)
                texts.append(after)
            else:  # placeholder-shaped text from the input: content, not a boundary
                texts[-1] += token + after
        out = [pattern.sub(replace, piece) for piece in texts]
        return "".join(a + b for a, b in zip(out, [*tokens, ""], strict=True))


def _mask_fences(text: str, table: _Table) -> str:
    """Mask whole fenced blocks, by CommonMark rules.

    The closer repeats the opener's character, at least as long; an unclosed fence runs to the end
    of the text. Indented fences (in list items) count.
    """
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    i = 0
    while i < len(lines):
        opener = _FENCE.match(lines[i].rstrip("\r\n"))
        if opener is None or (opener[2][0] == "`" and "`" in opener[3]):
            out.append(lines[i])
            i += 1
            continue
        closer = re.compile(rf"[ \t]*{re.escape(opener[2][0])}{{{len(opener[2])},}}[ \t]*")
        end = next((j for j in range(i + 1, len(lines)) if closer.fullmatch(lines[j].rstrip("\r\n"))), None)
        last = len(lines) - 1 if end is None else end
        block = "".join(lines[i : last + 1])[len(opener[1]) :]
        body = block.rstrip("\r\n")
        out.append(opener[1] + table.add("C", body) + block[len(body) :])
        i = last + 1
    return "".join(out)


def _mask_urls(match: re.Match[str], table: _Table) -> str:
    url = match.group(0)
    core = url.rstrip(".,;:!?'")  # sentence punctuation, not URL
    if core.count(")") > core.count("("):  # "(see https://x.org/a)" — the paren is the sentence's
        core = core[: core.rindex(")")]
    return table.add("U", core) + url[len(core) :]


def glossary_pattern(glossary: Iterable[str]) -> re.Pattern[str] | None:
    """Case-sensitive whole-word alternation of the terms, longest first ("ROS 2" before "ROS")."""
    terms = sorted({t for t in glossary if t.strip()}, key=lambda t: (-len(t), t))
    return re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, terms)) + r")(?!\w)") if terms else None


def mask(text: str, glossary: Iterable[str] = ()) -> Masked:
    """Replace protected spans with placeholders; deterministic, so equal inputs mask equally."""
    table = _Table(text)
    text = _FRONT_MATTER.sub(lambda m: table.add("F", m.group(0)), text)
    text = _mask_fences(text, table)
    for kind, pattern, group in _PASSES:
        text = table.sub(pattern, kind, text, group)
    text = table.sub_with(_URL, text, lambda m: _mask_urls(m, table))
    terms = glossary_pattern(glossary)
    if terms is not None:
        text = table.sub(terms, "T", text)
    return Masked(text=text, originals=dict(table.originals))


def _canonical(match: re.Match[str]) -> str:
    letter, digits = [group for group in match.groups() if group]  # the one bracket form that matched
    return f"{letter.upper()}{int(digits)}"


def restore(text: str, masked: Masked) -> Restored:
    """Put the originals back, tolerating mangled placeholders; report and repair dropped ones.

    Unknown ids (a model inventing `⟦C9⟧`) are left as written. Code-like blocks the model moved into
    the middle of a line get their own lines back, since a fence only renders at a line start.
    """
    seen: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        pid = _canonical(match)
        if pid not in masked.originals:
            return match.group(0)
        seen.add(pid)
        value = masked.originals[pid]
        if pid[0] in _LINE_KINDS:
            before = match.string[match.string.rfind("\n", 0, match.start()) + 1 : match.start()]
            after = match.string[match.end() : match.end() + 1]
            value = "\n" * bool(before.strip()) + value + "\n" * (after not in ("", "\r", "\n"))
        return value

    out = _LOOSE.sub(replace, text)
    missing = tuple(pid for pid in masked.originals if pid not in seen)
    lost = [pid for pid in missing if pid[0] in APPENDED_KINDS and masked.originals[pid] not in out]
    front = "".join(masked.originals[pid] + "\n\n" for pid in lost if pid[0] == "F")
    back = "".join("\n\n" + masked.originals[pid] for pid in lost if pid[0] != "F")
    if back:
        trailing = out[len(out.rstrip()) :]
        out = out.rstrip() + back + (trailing if "\n" in trailing else "\n")
    return Restored(text=front + out, missing=missing, appended=tuple(lost))


def put_back(text: str, originals: Mapping[str, str]) -> str:
    """Put back exact-form placeholders in text still being streamed.

    Only the exact-form placeholders replaced, no repair: for text still being streamed, where
    `restore` cannot run yet (it needs the whole reply).
    """
    return _OURS.sub(lambda match: originals.get(match[1][1:-1], match[1]), text)


def unmask(text: str, masked: Masked) -> str:
    """`restore(...).text`, logging a warning when the model dropped placeholders."""
    restored = restore(text, masked)
    if restored.missing:
        log.warning("rewrite dropped placeholders %s (re-added: %s)", restored.missing, restored.appended)
    return restored.text


def split_masked(text: str, limit: int) -> list[str]:
    """Consecutive slices of `text` (they join back to it), each ≤ `limit` chars where possible.

    Cuts at headings, then blank lines, then line ends, then spaces; placeholders contain none of
    those, so no cut falls inside one. Code is masked by now, so a `# comment` is not a heading.
    """
    if len(text) <= limit:
        return [text]
    for boundary in (r"(?m)^(?=#{1,6}[ \t])", r"(?<=\n\n)(?=[^\n])", r"(?<=\n)(?=[^\n])", r"(?<= )(?=\S)"):
        pieces = [p for p in re.split(boundary, text) if p]
        if len(pieces) > 1:
            break
    else:
        cut, opening = limit, text.rfind("⟦", 0, limit)
        if opening > 0 and "⟧" not in text[opening:limit]:
            cut = opening  # never cut a placeholder in two
        return [text[:cut], *split_masked(text[cut:], limit)]
    parts: list[str] = []
    for piece in pieces:
        for sub in split_masked(piece, limit):
            if parts and len(parts[-1]) + len(sub) <= limit:
                parts[-1] += sub
            else:
                parts.append(sub)
    return parts

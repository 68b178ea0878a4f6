"""Glossary loading, the language facts translation needs (name, direction), and RTL output cleanup.

Kept apart from the rewrite chains because the API and the graph need them too (defaults, the
`language` output field, `dir` on the widget) without importing prompt code.
"""

from __future__ import annotations

import re
from pathlib import Path

DEFAULT_GLOSSARY = Path(__file__).resolve().parents[1] / "book" / "glossary.txt"

# Names as a translator prompt should say them. Script-qualified entries come first in lookups, so
# "zh-Hans" and "pa-Arab" get their own names and "zh" or "pa" fall back to the generic one.
_LANGUAGE_NAMES = {
    "ar": "Arabic",
    "bn": "Bengali",
    "de": "German",
    "en": "English",
    "es": "Spanish",
    "fa": "Persian",
    "fr": "French",
    "he": "Hebrew",
    "hi": "Hindi",
    "id": "Indonesian",
    "it": "Italian",
    "ja": "Japanese",
    "ko": "Korean",
    "ms": "Malay",
    "nl": "Dutch",
    "pa": "Punjabi",
    "pa-Arab": "Punjabi (Shahmukhi script)",
    "ps": "Pashto",
    "pt": "Portuguese",
    "pt-BR": "Portuguese (Brazil)",
    "ru": "Russian",
    "sd": "Sindhi",
    "sw": "Swahili",
    "ta": "Tamil",
    "tr": "Turkish",
    "uk": "Ukrainian",
    "ur": "Urdu",
    "vi": "Vietnamese",
    "zh": "Chinese (Simplified)",
    "zh-CN": "Chinese (Simplified)",
    "zh-Hans": "Chinese (Simplified)",
    "zh-Hant": "Chinese (Traditional)",
    "zh-TW": "Chinese (Traditional)",
}

# Languages written right to left by default, and scripts that are RTL whichever language uses them.
_RTL_LANGUAGES = frozenset({"ar", "ckb", "dv", "fa", "he", "ps", "sd", "ug", "ur", "yi"})
_RTL_SCRIPTS = frozenset({"Adlm", "Arab", "Hebr", "Nkoo", "Rohg", "Syrc", "Thaa"})


_BIDI_CONTROLS = re.compile("[\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]")
# Any raw tag in the reply was written by the model (the book's own tags are masked), so a wrapper
# with `dir` goes, its closing tag too, and `dir` comes off any other tag.
_DIR_WRAPPER = re.compile(r"<(div|span|p|bdi|bdo|section)\b[^<>]*\bdir\s*=[^<>]*>", re.I)
_DIR_ATTRIBUTE = re.compile(r"""\s+dir\s*=\s*(?:"[^"]*"|'[^']*'|[\w-]+)""", re.I)


def strip_bidi_controls(text: str) -> str:
    """Remove LRM/RLM/ALM and the embedding, override and isolate controls models sprinkle in."""
    return _BIDI_CONTROLS.sub("", text)


def strip_direction_markup(text: str) -> str:
    """Remove bidi control characters and `dir` markup a model added to a reply.

    Run it on the still-masked reply: the book's own tags are placeholders then, so every raw tag
    is the model's. Direction is the page's job (see `is_rtl`); stray marks break copied code.
    """
    text = strip_bidi_controls(text)
    removed: list[str] = []

    def drop(match: re.Match[str]) -> str:
        removed.append(match[1].lower())
        return ""

    text = _DIR_WRAPPER.sub(drop, text)
    for name in removed:
        text = re.sub(rf"</{name}\s*>", "", text, count=1, flags=re.I)
    return re.sub(r"<[A-Za-z][^<>]*>", lambda m: _DIR_ATTRIBUTE.sub("", m[0]), text)


def _subtags(code: str) -> list[str]:
    return [part for part in code.strip().replace("_", "-").split("-") if part]


def language_name(code: str) -> str:
    """English name of a BCP-47 tag for prompts: "ur" → "Urdu"; unknown tags are returned as given.

    Tries the full tag, then language-script / language-region, then the bare language, so
    "ur-PK" is "Urdu" and "zh-Hant-HK" is "Chinese (Traditional)".
    """
    parts = _subtags(code)
    if not parts:
        return code
    lang, rest = parts[0].lower(), parts[1:]
    tails = [p.title() if len(p) == 4 and p.isalpha() else p.upper() for p in rest]
    for candidate in ("-".join([lang, *tails]), *(f"{lang}-{tail}" for tail in tails), lang):
        if candidate in _LANGUAGE_NAMES:
            return _LANGUAGE_NAMES[candidate]
    return code


def is_rtl(code: str) -> bool:
    """Whether text in this language is written right to left; an explicit script subtag decides."""
    parts = _subtags(code)
    if not parts:
        return False
    scripts = [p.title() for p in parts[1:] if len(p) == 4 and p.isalpha()]
    if scripts:
        return scripts[0] in _RTL_SCRIPTS
    return parts[0].lower() in _RTL_LANGUAGES


def load_glossary(path: Path | None = None) -> tuple[str, ...]:
    """Terms to keep verbatim, one per line; blank lines and lines starting with '#' are skipped.

    Only whole-line comments: a term may itself contain '#' ("C#"). Duplicates are dropped, order
    kept. With no path the bundled book's glossary is used, and a missing default file means no
    glossary (a book without one still translates); an explicit path that does not exist raises.
    """
    if path is None:
        if not DEFAULT_GLOSSARY.is_file():
            return ()
        path = DEFAULT_GLOSSARY
    terms: dict[str, None] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        term = line.strip()
        if term and not term.startswith("#"):
            terms[term] = None
    return tuple(terms)

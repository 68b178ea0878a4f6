"""Which language a text is written in — by script, which is all routing needs offline."""

from __future__ import annotations

import unicodedata

# Script of the letters → the language assumed for it (Urdu first: Arabic script means Urdu here).
_SCRIPT_LANGUAGE = {
    "ARABIC": "ur",
    "DEVANAGARI": "hi",
    "BENGALI": "bn",
    "GURMUKHI": "pa",
    "CJK": "zh",
    "HIRAGANA": "ja",
    "KATAKANA": "ja",
    "HANGUL": "ko",
    "CYRILLIC": "ru",
    "GREEK": "el",
    "HEBREW": "he",
    "THAI": "th",
}


def detect_language(text: str) -> str:
    """BCP-47 code of the dominant script's language; `en` for Latin script or no letters."""
    counts: dict[str, int] = {}
    for char in text:
        if char.isalpha():
            script = unicodedata.name(char, "LATIN").split()[0]
            counts[script] = counts.get(script, 0) + 1
    if not counts:
        return "en"
    script = max(counts, key=lambda s: counts[s])
    return _SCRIPT_LANGUAGE.get(script, "en")

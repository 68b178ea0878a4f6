"""Sentences of Markdown text.

Sentences of Markdown text: what the index embeds one by one, and what extractive answers and
supporting quotes are made of.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,}).*?^\1\2[`~]*\s*$", re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
# Emphasis markers only at word edges: `sensor_msgs` keeps its underscore.
_MARKUP = re.compile(r"`+|(?<!\w)[*_]+|[*_]+(?!\w)|^#{1,6}\s+|^>\s?|^\s*(?:[-+*]|\d+[.)])\s+", re.MULTILINE)
_SENTENCE_END = re.compile(r"(?<=[.!?۔؟])\s+(?=[\"'(\[]?[A-Z0-9\u0600-\u06FF])")
_WORD = re.compile(r"\w+")


def plain_text(markdown: str) -> str:
    """Markdown without code blocks, tables, link targets and emphasis markers."""
    text = _FENCE.sub("\n", markdown)
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("|")]
    text = _LINK.sub(r"\1", "\n".join(lines))
    return _MARKUP.sub("", text)


def split_sentences(markdown: str, *, min_words: int = 4) -> list[str]:
    """Prose sentences of `markdown` (code and tables skipped), each on one line."""
    sentences: list[str] = []
    for block in re.split(r"\n\s*\n", plain_text(markdown)):
        block = " ".join(block.split())
        if not block or (block.endswith(":") and len(block) < 60):  # a heading-like lead-in line
            continue
        sentences.extend(s for s in _SENTENCE_END.split(block) if len(_WORD.findall(s)) >= min_words)
    return sentences


def words(text: str) -> set[str]:
    """Lower-cased word set, for overlap scores."""
    return {w.lower() for w in _WORD.findall(text)}

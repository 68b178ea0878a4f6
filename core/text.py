"""Text helpers shared by ingestion and the tutor's chains."""

from __future__ import annotations

import re

_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
MIN_OVERLAP = 20  # shorter repeats are coincidence, not the chunker's overlap


def normalize_for_match(text: str) -> str:
    """Lower-cased words separated by single spaces: Markdown syntax, punctuation and layout gone.

    What a reader selects on the rendered page and what the Markdown source says then compare equal.
    """
    return _NON_WORD.sub(" ", _LINK.sub(r"\1", text).lower()).strip()


def append_without_overlap(text: str, addition: str, separator: str = "\n\n") -> str:
    """`text` + `addition` without the overlap between them.

    The overlap is the start of `addition` that repeats the end of `text` (consecutive chunks of a
    section share one).
    """
    for size in range(min(len(text), len(addition)), MIN_OVERLAP - 1, -1):
        if text.endswith(addition[:size]):
            return text + addition[size:]
    return f"{text}{separator}{addition}" if text else addition

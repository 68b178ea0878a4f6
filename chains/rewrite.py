"""Personalize a passage for a learner, or translate it, without losing code, links or terms.

Both chains share one shape: mask what must survive (chains.protect), cut long subjects into parts
at section boundaries, run prompt | model | str on the parts (at most three at once, in order), undo
the masking on the joined result. The model call carries the run tag `tutor-answer` so a streaming
layer can pick the user-visible tokens; note those tokens still contain `⟦…⟧` placeholders (the
run's metadata carries the table under `tutor_placeholders`) and, for a multi-part subject, parts
stream interleaved (`tutor_part` in the metadata says which).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableConfig

from chains.answer import ANSWER_TAG  # tokens a streaming client sees
from chains.glossary import is_rtl, language_name, load_glossary, strip_direction_markup
from chains.parsers import TEXT_OUTPUT
from chains.prompts import PERSONALIZE_PROMPT, TRANSLATE_PROMPT
from chains.protect import Masked, mask, restore, split_masked
from core.profile import LearnerProfile, normalize_language_tag

__all__ = ["ANSWER_TAG", "is_rtl", "language_name", "load_glossary", "personalize", "translate"]

log = logging.getLogger(__name__)

MAX_PART_CHARS = 12_000  # of masked text: well inside any model's output limit once rewritten
MAX_CONCURRENT_PARTS = 3
_LEGEND_ITEM_CHARS = 1_500
_LEGEND_TOTAL_CHARS = 8_000

# Untrusted text must not close our blocks early; real tags are masked, so only odd spellings remain.
_DELIMITER = re.compile(r"<\s*/?\s*(content|learner_profile|placeholders)\b[^>]*>", re.I)
_OUTER_FENCE = re.compile(r"\A```(?:markdown|md)?[ \t]*\n(.*)\n```\s*\Z", re.S)
_ECHOED_BLOCK = re.compile(r"\A\s*<content>\s*\n?(.*?)\n?\s*</content>\s*\Z", re.S)


def _defang(text: str) -> str:
    return _DELIMITER.sub(lambda m: "‹" + m[0][1:-1] + "›", text)


def _clean_reply(text: str) -> str:
    """Undo wrappers models add around a whole reply: an outer ```markdown fence, echoed <content>."""
    text = text.strip()
    for wrapper in (_OUTER_FENCE, _ECHOED_BLOCK):
        if match := wrapper.match(text):
            text = match[1].strip()
    return text


def _legend(masked: Masked, part: str, kinds: str) -> str:
    lines: list[str] = []
    budget = _LEGEND_TOTAL_CHARS
    for pid in masked.ids_in(part):
        original = masked.originals[pid]
        if pid[0] not in kinds:
            continue
        if len(original) > _LEGEND_ITEM_CHARS:
            original = original[:_LEGEND_ITEM_CHARS] + " …(truncated)"
        line = f"⟦{pid}⟧ = {original}"
        budget -= len(line)
        if budget < 0:
            break
        lines.append(line)
    return _defang("\n".join(lines)) or "(none)"


async def _rewrite(
    prompt: ChatPromptTemplate,
    model: BaseChatModel,
    masked: Masked,
    variables: Mapping[str, Any],
    legend_kinds: str,
    run_name: str,
    config: RunnableConfig | None,
    cleanup: Callable[[str], str] | None = None,
) -> str:
    """Run the chain on each part of the masked text (≤ 3 at once) and join the replies in order."""
    parts = split_masked(masked.text, MAX_PART_CHARS)
    limit = asyncio.Semaphore(MAX_CONCURRENT_PARTS)

    async def one(index: int, part: str) -> str:
        body = part.strip()
        if not body:
            return part
        lead, trail = part[: len(part) - len(part.lstrip())], part[len(part.rstrip()) :]
        metadata = {"tutor_part": index, "tutor_parts": len(parts), "tutor_placeholders": masked.originals}
        answering = model.with_config(tags=[ANSWER_TAG], metadata=metadata)
        chain = (prompt | answering | TEXT_OUTPUT).with_config(run_name=run_name)
        part_note = (
            f"This is part {index + 1} of {len(parts)} of a longer text; work on this part only, "
            "without an introduction or summary.\n\n"
            if len(parts) > 1
            else ""
        )
        inputs = {**variables, "content": _defang(body), "legend": _legend(masked, body, legend_kinds)}
        async with limit:
            reply = await chain.ainvoke({**inputs, "part_note": part_note}, config=config)
        return lead + _clean_reply(cleanup(reply) if cleanup else reply) + trail

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(one(index, part)) for index, part in enumerate(parts)]
    return "".join(task.result() for task in tasks)


def _finish(text: str, masked: Masked, what: str) -> str:
    restored = restore(text, masked)
    if restored.missing:
        log.warning(
            "%s: model dropped placeholders %s; re-added %s", what, restored.missing, restored.appended
        )
    return restored.text


async def personalize(
    model: BaseChatModel, subject: str, profile: LearnerProfile, *, config: RunnableConfig | None = None
) -> str:
    """`subject` rewritten for `profile`, in the subject's own language, code and links intact."""
    if not subject.strip():
        return subject
    masked = mask(subject)
    description = profile.describe(exclude={"preferred_language"}) or "(no profile given)"
    variables = {"profile": _defang(description)}
    # Code is shown in the legend: the model must see it to explain it to a beginner.
    reply = await _rewrite(PERSONALIZE_PROMPT, model, masked, variables, "CEDIMT", "personalize", config)
    return _finish(reply, masked, "personalize")


async def translate(
    model: BaseChatModel,
    subject: str,
    target_language: str,
    *,
    glossary: Sequence[str],
    config: RunnableConfig | None = None,
) -> str:
    """`subject` translated into `target_language` (BCP-47), with glossary terms kept in English.

    Direction marks and `dir` markup the model adds are removed: the page sets direction (see
    `is_rtl`), and stray marks break copy-paste of code and search.
    """
    code = normalize_language_tag(target_language)
    if not subject.strip():
        return subject
    masked = mask(subject, glossary)
    language = language_name(code)
    # Only short spans in the legend: their meaning helps the grammar around them.
    variables = {"language": language}
    reply = await _rewrite(
        TRANSLATE_PROMPT, model, masked, variables, "IT", "translate", config, strip_direction_markup
    )
    return _finish(reply, masked, f"translate[{code}]")

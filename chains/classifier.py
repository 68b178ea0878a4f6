"""Which route a reader's message takes, when the client did not say.

With a chat model: one structured-output call that can only answer one of three route names (the
message sits in a delimited block, and nothing else — no passages, no selection — is shown, so no
untrusted text can steer it); if that call fails, keyword rules decide. Without a chat model: always
`ask`, since personalize and translate need a model and would only answer "needs a chat model"
(the keyword rules sent the sample book's own questions there: "…adapt a pretrained policy…").
"""

from __future__ import annotations

import logging
import re
from typing import Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, Field

from chains.prompts import CLASSIFY_PROMPT

log = logging.getLogger(__name__)
Intent = Literal["ask", "personalize", "translate"]

_TRANSLATE = re.compile(
    r"\btranslat\w*|\b(?:in|into|to)\s+(?:urdu|arabic|hindi|spanish|french|german|chinese|japanese|"
    r"turkish|persian|bengali|punjabi|portuguese|italian|russian|korean)\b|ترجمہ|اردو میں",
    re.IGNORECASE,
)
_PERSONALIZE = re.compile(
    r"\bpersonali[sz]\w*|\bsimplif\w*|\b(?:rewrite|re-explain|adapt|tailor)\b|"
    r"\bexplain\b.*\b(?:like|as if)\b|"
    r"\bfor (?:a |an )?(?:beginner|novice|kid|child|expert|me)\b|\bmy (?:level|background)\b|"
    r"\bin simpler (?:terms|words)\b",
    re.IGNORECASE,
)


class RouteChoice(BaseModel):
    """The route for a reader's message."""

    route: Intent = Field(description="ask, personalize or translate")


def classify_by_keywords(message: str) -> Intent:
    """The route by keyword rules: the fallback when the classifier call fails.

    Explicit translate/personalize wording, else a question.
    """
    if _TRANSLATE.search(message):
        return "translate"
    if _PERSONALIZE.search(message):
        return "personalize"
    return "ask"


async def classify(model: BaseChatModel | None, message: str, config: RunnableConfig | None = None) -> Intent:
    """The route for `message`: ask, personalize or translate.

    One structured call with a model (keyword rules if it fails); `ask` without a model, where only ask
    (and selection) can answer.
    """
    if model is None:
        return "ask"
    chain = CLASSIFY_PROMPT | model.with_structured_output(RouteChoice)
    try:
        choice = await chain.ainvoke({"message": message}, config)
    except Exception as exc:  # a router failure must not fail the turn: asking is always safe
        log.warning("intent classifier failed (%s); falling back to keyword rules", type(exc).__name__)
        return classify_by_keywords(message)
    return choice.route if isinstance(choice, RouteChoice) else classify_by_keywords(message)

"""`POST /personalize` and `POST /translate`: the REST forms of the graph's rewrite routes.

One subject per call: `content` when given (it wins over `page`, which a widget may send as context
anyway), else the chapter at `page`. Everything else — who may, the quota, the cache, the language —
is `graphs.rewrite_policy`, the same policy a `/chat` turn in personalize or translate mode goes
through; a refusal is a `RewriteRefused`, mapped to its status in `api.errors`.
"""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from api.admission import admission_of
from api.deps import AppContext, Ctx, OptionalUser
from api.errors import model_failure
from api.openapi import error_responses
from core.profile import LanguageCode
from core.stores import profiles
from core.stores.quotas import QuotaView
from graphs import rewrite_policy as policy
from graphs.state import NulFreeStr

router = APIRouter(tags=["rewrite"], responses=error_responses(400, 401, 404, 409, 422, 429, 503))
log = logging.getLogger(__name__)
MAX_CONTENT_CHARS = 100_000


class RewriteRequest(BaseModel):
    """What to personalize: `content`, or the chapter at `page`."""

    model_config = ConfigDict(extra="forbid")

    content: NulFreeStr | None = Field(None, max_length=MAX_CONTENT_CHARS, description="Markdown to rewrite.")
    # e.g. `module-1-ros2/ros2-communication`, `/docs/module-1-ros2/…` or a full URL; `content` wins.
    page: NulFreeStr | None = Field(
        None, max_length=2_000, description="Doc path or URL; its chapter is the subject."
    )


class TranslateRequest(RewriteRequest):
    """What to translate, and into which language."""

    target_language: LanguageCode | None = Field(
        None, description="BCP-47 tag; default: the profile's preferred_language, else 'ur'."
    )


class RewriteResponse(BaseModel):
    """A rewrite's result with its language, text direction, cache hit and quota left."""

    result: str
    language: str | None
    direction: Literal["rtl", "ltr"]
    cached: bool
    quota: QuotaView


@router.post("/personalize")
async def post_personalize(
    body: RewriteRequest, request: Request, context: Ctx, user: OptionalUser
) -> RewriteResponse:
    """The subject adapted to the reader's stored profile, in the subject's own language."""
    return await _rewrite(context, request, "personalize", body, user)


@router.post("/translate")
async def post_translate(
    body: TranslateRequest, request: Request, context: Ctx, user: OptionalUser
) -> RewriteResponse:
    """The subject translated, code, links and glossary terms kept as they are."""
    return await _rewrite(context, request, "translate", body, user, body.target_language)


async def _rewrite(
    context: AppContext,
    request: Request,
    action: policy.Action,
    body: RewriteRequest,
    user: str | None,
    language: str | None = None,
) -> RewriteResponse:
    services = context.tutor.services
    profile = await profiles.load(context.db, user)
    await policy.check(services, action, user, profile)
    subject = await policy.find_subject(services, action, content=body.content, page=body.page)
    try:
        # Refusals above come first; the model call waits for a place like any turn (api.admission).
        async with admission_of(request).place(request):
            done = await policy.rewrite(
                services, action, subject, user=user, profile=profile, language=language
            )
    except Exception as exc:
        if (failure := model_failure(exc)) is None:
            raise
        log.warning("chat model failed on %s: %s", action, type(exc).__name__)
        raise failure from None
    return RewriteResponse(
        result=done.text,
        language=done.language,
        direction=done.direction,
        cached=done.cached,
        quota=done.quota,
    )

"""`POST /personalize` and `POST /translate`: the REST forms of the graph's rewrite routes.

One subject per call: `content` when given (it wins over `page`, which a widget may send as context
anyway), else the chapter at `page` (reassembled from the index). The order of checks is what a
caller pays for: no chat model → 503 and nothing counted; a cached result → returned free, since it
costs no model call; otherwise one unit of today's quota is reserved before the model is asked and
given back if the call fails, so only delivered results count (api.quota).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Literal

from fastapi import APIRouter
from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field

from api import quota
from api.deps import AppContext, Ctx, CurrentUser
from api.errors import ApiError, not_found
from api.openapi import error_responses
from api.turns import model_unavailable
from chains import rewrite
from chains.retriever import page_doc_path
from core.language import detect_language
from core.profile import LanguageCode, LearnerProfile
from core.providers import is_model_error
from graphs.nodes.rewrite import DEFAULT_LANGUAGE, needs_model
from graphs.state import NulFreeStr

router = APIRouter(tags=["rewrite"], responses=error_responses(400, 401, 404, 409, 422, 429, 503))
log = logging.getLogger(__name__)
MAX_CONTENT_CHARS = 100_000
# Part of every cache key: bump it when prompts or the stored shape change, and old entries stop matching.
CACHE_FORMAT = 1
_CACHED = "SELECT result FROM rewrite_cache WHERE cache_key = %s"
_STORE = (
    "INSERT INTO rewrite_cache (cache_key, action, result) VALUES (%s, %s, %s::jsonb)"
    " ON CONFLICT (cache_key) DO NOTHING"
)


class RewriteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: NulFreeStr | None = Field(None, max_length=MAX_CONTENT_CHARS, description="Markdown to rewrite.")
    # e.g. `module-1-ros2/ros2-communication`, `/docs/module-1-ros2/…` or a full URL; `content` wins.
    page: NulFreeStr | None = Field(
        None, max_length=2_000, description="Doc path or URL; its chapter is the subject."
    )


class TranslateRequest(RewriteRequest):
    target_language: LanguageCode | None = Field(
        None, description="BCP-47 tag; default: the profile's preferred_language, else 'ur'."
    )


class RewriteResponse(BaseModel):
    result: str
    language: str | None
    direction: Literal["rtl", "ltr"]
    cached: bool
    quota: quota.QuotaView


@router.post("/personalize")
async def post_personalize(body: RewriteRequest, context: Ctx, user: CurrentUser) -> RewriteResponse:
    """The subject adapted to the reader's stored profile, in the subject's own language."""
    model = _chat_model(context, "personalize")
    profile = await context.load_profile(user) or LearnerProfile()
    # preferred_language is not shown to the personalize prompt, so it neither counts nor keys the cache.
    traits = profile.model_dump(mode="json", exclude_none=True, exclude={"preferred_language"})
    if not traits:
        # 409, not 422: the body is fine; the stored state is missing, and PUT /profile resolves it.
        raise ApiError(
            409, "profile_required", "Save a learner profile with PUT /profile before personalizing."
        )
    subject = await _subject(context, body)
    letters = any(char.isalpha() for char in subject)
    return await _answer(
        context,
        user,
        "personalize",
        subject,
        variant=json.dumps(traits, sort_keys=True),
        language=detect_language(subject) if letters else None,
        call=lambda: rewrite.personalize(model, subject, profile),
    )


@router.post("/translate")
async def post_translate(body: TranslateRequest, context: Ctx, user: CurrentUser) -> RewriteResponse:
    """The subject translated, code, links and glossary terms kept as they are."""
    model = _chat_model(context, "translate")
    target = body.target_language
    if target is None:
        profile = await context.load_profile(user)
        target = (profile and profile.preferred_language) or DEFAULT_LANGUAGE
    subject = await _subject(context, body)
    glossary = context.tutor.services.glossary
    return await _answer(
        context,
        user,
        "translate",
        subject,
        # The glossary decides which terms stay in English: a new one must not serve old translations.
        variant=f"{target}|{_sha256(chr(10).join(glossary))}",
        language=target,
        call=lambda: rewrite.translate(model, subject, target, glossary=glossary),
    )


def _chat_model(context: AppContext, action: str) -> BaseChatModel:
    model = context.tutor.services.chat_model
    if model is None:
        error = needs_model(action)
        raise ApiError(503, error["code"], error["message"])
    return model


async def _subject(context: AppContext, body: RewriteRequest) -> str:
    if body.content and body.content.strip():
        return body.content
    doc_path = page_doc_path(body.page, context.settings.book_docs_route)
    if doc_path is None:
        raise ApiError(422, "invalid_request", "Send `content` or `page`: there is nothing to rewrite.")
    chapter = await context.tutor.services.retriever.chapter(doc_path)
    if not chapter:
        raise not_found("page")
    return chapter


async def _answer(
    context: AppContext,
    user: str,
    action: str,
    subject: str,
    *,
    variant: str,
    language: str | None,
    call: Callable[[], Awaitable[str]],
) -> RewriteResponse:
    """Cache, then quota, then the model; the result is cached only after it succeeded."""
    db, limit = context.db, getattr(context.settings, f"{action}_daily_quota")
    direction: Literal["rtl", "ltr"] = "rtl" if language and rewrite.is_rtl(language) else "ltr"
    key = await _cache_key(context, action, subject, variant)
    async with db.pool.connection() as conn:
        hit = await (await conn.execute(_CACHED, (key,))).fetchone()
    if hit is not None:
        view = await quota.usage(db, user, action, limit)
        return RewriteResponse(
            result=hit["result"]["result"], language=language, direction=direction, cached=True, quota=view
        )

    reservation = await quota.reserve(db, user, action, limit)
    try:
        result = await call()
    except BaseException as exc:  # a model error, a bug, a cancelled request: none may cost the reader
        await reservation.refund()
        if is_model_error(exc):
            log.warning("chat model failed on %s: %r", action, exc)
            raise model_unavailable() from None
        raise
    try:  # best effort: the reader has paid for this result and gets it even if caching it fails
        async with db.pool.connection() as conn:
            await conn.execute(_STORE, (key, action, json.dumps({"result": result})))
    except Exception:
        log.warning("could not cache a %s result", action, exc_info=True)
    return RewriteResponse(
        result=result, language=language, direction=direction, cached=False, quota=reservation.view
    )


async def _cache_key(context: AppContext, action: str, subject: str, variant: str) -> str:
    """A hash of everything the result depends on: a changed book (index version) or model misses."""
    services = context.tutor.services
    record = await services.retriever.index.record()
    model = services.chat_model
    model_id = f"{type(model).__name__}:{getattr(model, 'model_name', None) or getattr(model, 'model', '')}"
    parts = [CACHE_FORMAT, action, _sha256(subject), variant, record["version"] if record else 0, model_id]
    return _sha256(json.dumps(parts))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()

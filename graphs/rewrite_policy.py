"""The one rewrite policy: who may personalize or translate, what, how often, and from the cache.

It also decides the language a rewrite is in.

Every entry point goes through here — the graph's personalize and translate nodes (so `/chat`, `/chat/stream`,
`/tutor/*`, the CLI) and `POST /personalize`, `POST /translate` — so a rule cannot hold on one path and not on
another.

The rules, in the order a caller meets them (`check`):
1. a chat model is configured (else `needs_chat_model`);
2. the caller is signed in (else `login_required`): quotas are per user;
3. personalize only: a saved learner profile with something to adapt to (else `profile_required`);
4. today's quota for the action is not used up (else `quota_exceeded`, retry at 00:00 UTC).
Then `rewrite`: a cached result is returned free (cache key: subject hash, profile or language and
glossary, index version, model); otherwise one unit of quota is reserved before the model is asked
and given back if the call fails, so only delivered results count.

A refusal is a `RewriteRefused` (a code and a message, no HTTP): the API maps codes to statuses in
`api.errors`, the CLI prints the message. Nothing here calls a model before every rule has passed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from langchain_core.runnables import RunnableConfig

from chains import rewrite as chains
from chains.retriever import page_doc_path
from core.language import detect_language
from core.profile import LearnerProfile
from core.stores import quotas, rewrite_cache
from graphs.context import TutorServices

log = logging.getLogger(__name__)
Action = Literal["personalize", "translate"]
ACTIONS: tuple[Action, ...] = ("personalize", "translate")
DEFAULT_LANGUAGE = "ur"
# Part of every cache key: bump it when prompts or the stored shape change, and old entries stop matching.
CACHE_FORMAT = 1


class RewriteRefused(Exception):
    """A rewrite the policy will not run; `code` says why (api.errors maps it to a status)."""

    def __init__(self, code: str, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.retry_after = code, message, retry_after


@dataclass(frozen=True)
class Rewritten:
    """A rewrite's result, its language, whether it came from the cache, and the quota left."""

    text: str
    language: str | None  # BCP-47 of the result (None: a subject without letters, e.g. only code)
    direction: Literal["rtl", "ltr"]
    cached: bool
    quota: quotas.QuotaView


def profile_traits(profile: LearnerProfile | None) -> dict[str, object]:
    """What the personalize prompt adapts to.

    preferred_language is not shown to it, so it neither counts as a profile nor keys the cache.
    """
    if profile is None:
        return {}
    return profile.model_dump(mode="json", exclude_none=True, exclude={"preferred_language"})


def target_language(explicit: str | None, profile: LearnerProfile | None) -> str:
    """The language to translate into: the request's, else the profile's, else Urdu."""
    return str(explicit or (profile and profile.preferred_language) or DEFAULT_LANGUAGE)


def daily_limit(services: TutorServices, action: Action) -> int:
    """Rewrites of `action` a user may have per UTC day."""
    limit: int = getattr(services.settings, f"{action}_daily_quota")
    return limit


async def check(
    services: TutorServices,
    action: Action,
    user: str | None,
    profile: LearnerProfile | None,
    *,
    now: datetime | None = None,
) -> None:
    """The rules that need no subject (see the module docstring); raises `RewriteRefused`."""
    if services.chat_model is None:
        raise RewriteRefused(
            "needs_chat_model",
            f"The {action} route needs a chat model: set CHAT_MODEL (and the provider's API key).",
        )
    if user is None:
        raise RewriteRefused("login_required", f"Sign in to {action}: rewrites are counted per reader.")
    if action == "personalize" and not profile_traits(profile):
        raise RewriteRefused(
            "profile_required", "Save a learner profile with PUT /profile before personalizing."
        )
    now = now or datetime.now(UTC)
    limit = daily_limit(services, action)
    if (await quotas.usage(services.db, user, action, limit, now)).remaining <= 0:
        raise _quota_exceeded(action, limit, now)


async def find_subject(
    services: TutorServices,
    action: Action,
    *,
    content: str | None = None,
    selected_text: str | None = None,
    last_answer: str | None = None,
    page: str | None = None,
) -> str:
    """What to rewrite: `content`, else the selection, else the last answer, else the chapter at `page`.

    The chapter is reassembled from the index. Raises `no_subject`, or `not_found` for an unknown page.
    """
    for text in (content, selected_text, last_answer):
        if text and text.strip():
            return text
    doc_path = page_doc_path(page, services.settings.book_docs_route)
    if doc_path is None:
        raise RewriteRefused(
            "no_subject",
            f"Nothing to {action}: send `content` or `page`, select text, or ask a question first.",
        )
    chapter = await services.retriever.chapter(doc_path)
    if not chapter:
        raise RewriteRefused("not_found", "No such page.")
    return chapter


async def rewrite(
    services: TutorServices,
    action: Action,
    subject: str,
    *,
    user: str | None,
    profile: LearnerProfile | None,
    language: str | None = None,
    config: RunnableConfig | None = None,
) -> Rewritten:
    """Rewrite `subject`, from the cache when it holds the result.

    `subject` personalized for `profile`, or translated into `language` (see `target_language`),
    under the rules above: cache, then quota, then the model; cached only after it succeeded.
    """
    now = datetime.now(UTC)
    await check(services, action, user, profile, now=now)
    assert user is not None and services.chat_model is not None  # check() refused otherwise
    model, limit = services.chat_model, daily_limit(services, action)
    if action == "personalize":
        traits = profile_traits(profile)
        variant = json.dumps(traits, sort_keys=True)
        result_language = detect_language(subject) if any(c.isalpha() for c in subject) else None
    else:
        result_language = target_language(language, profile)
        # The glossary decides which terms stay in English: a new one must not serve old translations.
        variant = f"{result_language}|{_sha256(chr(10).join(services.glossary))}"
    direction: Literal["rtl", "ltr"] = "rtl" if result_language and chains.is_rtl(result_language) else "ltr"
    key = await _cache_key(services, action, subject, variant)

    hit = await rewrite_cache.cached(services.db, key)
    if hit is not None:
        view = await quotas.usage(services.db, user, action, limit, now)
        return Rewritten(hit, result_language, direction, cached=True, quota=view)

    reservation = await quotas.reserve(services.db, user, action, limit, now)
    if reservation is None:  # the day ran out since check(): another request took the last unit
        raise _quota_exceeded(action, limit, now)
    try:
        if action == "personalize":
            assert profile is not None
            text = await chains.personalize(model, subject, profile, config=config)
        else:
            text = await chains.translate(
                model, subject, str(result_language), glossary=services.glossary, config=config
            )
    except BaseException:  # a model error, a bug, a cancelled request: none may cost the reader
        await reservation.refund()
        raise
    try:  # best effort: the reader has paid for this result and gets it even if caching it fails
        await rewrite_cache.store(services.db, key, action, text)
    except Exception:
        log.warning("could not cache a %s result", action, exc_info=True)
    return Rewritten(text, result_language, direction, cached=False, quota=reservation.view)


def _quota_exceeded(action: str, limit: int, now: datetime) -> RewriteRefused:
    return RewriteRefused(
        "quota_exceeded",
        f"Daily {action} limit of {limit} reached; it resets at 00:00 UTC.",
        retry_after=quotas.seconds_until_next_day(now),
    )


async def _cache_key(services: TutorServices, action: str, subject: str, variant: str) -> str:
    """A hash of everything the result depends on: a changed book (index version) or model misses."""
    record = await services.retriever.index.record()
    model = services.chat_model
    model_id = f"{type(model).__name__}:{getattr(model, 'model_name', None) or getattr(model, 'model', '')}"
    parts = [CACHE_FORMAT, action, _sha256(subject), variant, record["version"] if record else 0, model_id]
    return _sha256(json.dumps(parts))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()

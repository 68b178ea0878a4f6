"""Threads: list, read (messages with their sources exactly as streamed), rename, delete, feedback."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Ctx, CurrentUser, OptionalUser
from api.errors import ApiError, not_found
from api.openapi import error_responses
from api.thread_access import ThreadLease, delete_thread, owned_thread
from core.stores import feedback, threads
from graphs.state import NulFreeStr

router = APIRouter(prefix="/threads", tags=["threads"])
# Far beyond any reader's thread count, and far below Postgres' bigint (an offset of 2^63 was a 500).
MAX_OFFSET = 1_000_000


class ThreadSummary(BaseModel):
    """One of the caller's threads in `GET /threads`."""

    thread_id: str
    title: str | None
    created_at: datetime
    updated_at: datetime
    messages: int


class Message(BaseModel):
    """One message of a thread's transcript, with the sources it was answered with."""

    seq: int
    role: Literal["user", "assistant"]
    content: str
    route: str | None
    sources: list[dict[str, Any]]
    grounded: bool | None
    language: str | None
    created_at: datetime


class ThreadDetail(BaseModel):
    """A thread with its whole transcript (`GET /threads/{id}`)."""

    thread_id: str
    title: str | None
    created_at: datetime
    updated_at: datetime
    messages: list[Message]


class TitleUpdate(BaseModel):
    """`PATCH /threads/{id}`: a new title."""

    model_config = ConfigDict(extra="forbid")
    title: NulFreeStr = Field(min_length=1, max_length=200)


class Feedback(BaseModel):
    """`POST /threads/{id}/feedback`: a rating (and a comment) of one answer."""

    model_config = ConfigDict(extra="forbid")
    seq: int = Field(ge=1, description="The assistant message rated (its `seq` in GET /threads/{id}).")
    rating: Literal["up", "down"]
    comment: NulFreeStr | None = Field(None, max_length=2000)


@router.get("", responses=error_responses(401, 422, 503))
async def get_threads(
    context: Ctx,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[ThreadSummary]:
    """The caller's threads, most recently active first."""
    return [ThreadSummary(**row) for row in await threads.list_for_user(context.db, user, limit, offset)]


@router.get("/{thread_id}", responses=error_responses(401, 404, 422, 503))
async def get_thread(thread_id: str, context: Ctx, user: OptionalUser) -> ThreadDetail:
    """The thread and its messages, with their sources exactly as streamed."""
    row = await owned_thread(context.db, thread_id, user)
    messages = [Message(**m) for m in await threads.messages(context.db, thread_id)]
    return ThreadDetail(
        **{key: row[key] for key in ("thread_id", "title", "created_at", "updated_at")}, messages=messages
    )


@router.patch("/{thread_id}", responses=error_responses(400, 401, 404, 422, 503))
async def patch_thread(thread_id: str, body: TitleUpdate, context: Ctx, user: OptionalUser) -> dict[str, str]:
    """Rename the thread."""
    await owned_thread(context.db, thread_id, user)
    await threads.rename(context.db, thread_id, body.title.strip())
    return {"thread_id": thread_id, "title": body.title.strip()}


@router.delete("/{thread_id}", status_code=204, responses=error_responses(401, 404, 409, 422, 503))
async def remove_thread(thread_id: str, context: Ctx, user: OptionalUser) -> Response:
    """Deletes checkpoints and transcript. Waits for (or 409s on) a turn still running on it."""
    await owned_thread(context.db, thread_id, user)
    settings = context.settings
    lease = ThreadLease(context.db, thread_id, lease_seconds=settings.turn_lease_seconds)
    await lease.acquire(settings.thread_busy_wait)
    try:
        await delete_thread(context.db, context.tutor.checkpointer, thread_id)
    finally:
        lease.held = False  # the row (and its lease) is gone
    return Response(status_code=204)


@router.post("/{thread_id}/feedback", status_code=201, responses=error_responses(400, 401, 404, 422, 503))
async def post_feedback(thread_id: str, body: Feedback, context: Ctx, user: CurrentUser) -> dict[str, Any]:
    """Thumbs up/down (and a comment) on one answer; a later rating of the same answer replaces it."""
    await owned_thread(context.db, thread_id, user)
    role = await threads.message_role(context.db, thread_id, body.seq)
    if role is None:
        raise not_found("message")
    if role != "assistant":
        raise ApiError(422, "invalid_request", "Feedback rates an answer: pick an assistant message.")
    rating = 1 if body.rating == "up" else -1
    await feedback.rate(context.db, thread_id, body.seq, user, rating, body.comment)
    return {"thread_id": thread_id, "seq": body.seq, "rating": body.rating}

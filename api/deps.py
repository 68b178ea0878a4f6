"""What routes depend on, as `Annotated` aliases.

`Ctx` (the process's services), `OptionalUser` (a verified user or None when anonymous chat is
allowed), `CurrentUser` (a verified user, else 401).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from api.auth import Authenticator, AuthError
from api.errors import ApiError
from core.db import Database
from core.settings import Settings
from graphs.tutor import Tutor

UNAUTHORIZED = ApiError(
    401, "unauthorized", "Missing or invalid credentials.", headers={"WWW-Authenticate": "Bearer"}
)


@dataclass
class AppContext:
    """Everything a request may use, opened once by the app's lifespan."""

    settings: Settings
    tutor: Tutor
    auth: Authenticator

    @property
    def db(self) -> Database:
        """The project's database (the tutor services' pool)."""
        return self.tutor.services.db


def get_context(request: Request) -> AppContext:
    """The process's `AppContext`, opened by the app's lifespan."""
    context: AppContext = request.app.state.context
    return context


Ctx = Annotated[AppContext, Depends(get_context)]


async def authenticate(request: Request, context: AppContext) -> str | None:
    """The verified user of the request; None for an anonymous request when that is allowed.

    A present but bad Authorization header is always a 401, never a silent downgrade to anonymous.
    So is a second one: which of two credentials counts is not something to guess (a valid token
    followed by junk would otherwise run as the first one's user).
    """
    values = request.headers.getlist("authorization")
    if len(values) > 1:
        raise UNAUTHORIZED
    try:
        user = await context.auth.authenticate(values[0] if values else None)
    except AuthError:
        raise UNAUTHORIZED from None
    if user is None and not context.settings.allow_anonymous:
        raise UNAUTHORIZED
    return user


async def optional_user(request: Request, context: Ctx) -> str | None:
    """The verified user, or None for an allowed anonymous request (a bad token is a 401)."""
    return await authenticate(request, context)


async def required_user(user: Annotated[str | None, Depends(optional_user)]) -> str:
    """The verified user; 401 for an anonymous request."""
    if user is None:
        raise UNAUTHORIZED
    return user


OptionalUser = Annotated[str | None, Depends(optional_user)]
CurrentUser = Annotated[str, Depends(required_user)]


def thread_header(request: Request) -> str | None:
    """The thread a client names in `X-Thread-Id` (None when absent or blank); 400 for two of them."""
    values = request.headers.getlist("x-thread-id")
    if len(values) > 1:
        raise ApiError(400, "invalid_thread_id", "Send at most one X-Thread-Id header.")
    return (values[0].strip() or None) if values else None

"""`GET /profile` and `PUT /profile`: the signed-in reader's learner profile.

The body is `core.profile.LearnerProfile` itself, so the enum checks, the BCP-47 check and the
refusal of unknown fields are the model's; a bad body is a 422 naming the field, through the app's
one error shape. `PUT` replaces the whole profile (fields left out become null), which is what a
settings form sends and leaves no merge rules to explain.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import Ctx, CurrentUser
from api.openapi import error_responses
from core.profile import LearnerProfile
from core.stores import profiles

router = APIRouter(prefix="/profile", tags=["profile"], responses=error_responses(400, 401, 422, 503))


@router.get("")
async def get_profile(context: Ctx, user: CurrentUser) -> LearnerProfile:
    """The stored profile; every field null when the reader never saved one."""
    return await profiles.load(context.db, user) or LearnerProfile()


@router.put("")
async def put_profile(body: LearnerProfile, context: Ctx, user: CurrentUser) -> LearnerProfile:
    """Store the profile (replacing the previous one) and return it as stored."""
    await profiles.save(context.db, user, body)
    return body

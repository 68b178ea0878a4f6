"""GET/PUT /profile: round trip, validation through the app's error shape, authentication."""

from __future__ import annotations

import uuid
from typing import Any

from core.profile import LearnerProfile

FIELDS = (
    "age_range",
    "education_level",
    "software_background",
    "hardware_background",
    "primary_goal",
    "learning_mode",
    "learning_speed",
    "time_per_week",
    "preferred_language",
)
PROFILE = {
    "age_range": "25_34",
    "education_level": "graduate",
    "software_background": "advanced",
    "hardware_background": "beginner",
    "primary_goal": "build_project",
    "learning_mode": "hands_on",
    "learning_speed": "fast",
    "time_per_week": "5_10h",
    "preferred_language": "ur",
}


def new_user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"  # the database lives for the whole session


async def test_unsaved_profile_is_all_nulls(make_api: Any) -> None:
    api = await make_api()
    response = await api.client().get("/profile", headers=api.headers(new_user()))
    assert response.status_code == 200
    assert response.json() == dict.fromkeys(FIELDS)


async def test_round_trip_and_put_replaces(make_api: Any) -> None:
    api = await make_api()
    client, headers = api.client(), api.headers(new_user())
    response = await client.put("/profile", json=PROFILE, headers=headers)
    assert response.status_code == 200 and response.json() == PROFILE
    assert (await client.get("/profile", headers=headers)).json() == PROFILE

    # A PUT is the whole profile: fields left out are cleared. Language tags come back canonical.
    response = await client.put(
        "/profile", json={"learning_mode": "visual", "preferred_language": "zh-hans"}, headers=headers
    )
    expected = dict.fromkeys(FIELDS) | {"learning_mode": "visual", "preferred_language": "zh-Hans"}
    assert response.json() == expected
    assert (await client.get("/profile", headers=headers)).json() == expected


async def test_profiles_are_per_user(make_api: Any) -> None:
    api = await make_api()
    client, alice, bob = api.client(), new_user(), new_user()
    await client.put("/profile", json={"learning_speed": "slow"}, headers=api.headers(alice))
    assert (await client.get("/profile", headers=api.headers(bob))).json() == dict.fromkeys(FIELDS)


async def test_bad_enum_is_422_naming_the_field(make_api: Any) -> None:
    api = await make_api()
    client, headers = api.client(), api.headers(new_user())
    response = await client.put("/profile", json={"software_background": "wizard"}, headers=headers)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert [d["loc"] for d in error["details"]] == [["body", "software_background"]]
    assert "wizard" not in response.text  # the offending value is not echoed
    # Nothing was stored by the failed PUT.
    assert (await client.get("/profile", headers=headers)).json() == dict.fromkeys(FIELDS)


async def test_bad_language_tag_and_unknown_field_are_422(make_api: Any) -> None:
    api = await make_api()
    client, headers = api.client(), api.headers(new_user())
    response = await client.put("/profile", json={"preferred_language": "not a tag"}, headers=headers)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["loc"] == ["body", "preferred_language"]

    response = await client.put("/profile", json={"favourite_robot": "R2-D2"}, headers=headers)
    assert response.status_code == 422
    detail = response.json()["error"]["details"][0]
    assert detail["loc"] == ["body", "favourite_robot"] and detail["type"] == "extra_forbidden"


async def test_anonymous_is_401(make_api: Any) -> None:
    api = await make_api(allow_anonymous=True)  # even where anonymous chat is allowed
    client = api.client()
    for response in (await client.get("/profile"), await client.put("/profile", json=PROFILE)):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"
    bad = {"Authorization": "Bearer not-a-token"}
    assert (await client.get("/profile", headers=bad)).status_code == 401


def test_profile_field_names_are_the_http_contract() -> None:
    assert set(LearnerProfile.model_fields) == set(FIELDS)

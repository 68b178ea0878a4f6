"""Ownership as a property: random interleavings of three readers — two signed in, one anonymous —
creating, continuing, reading, listing, renaming, rating and deleting threads through every route
that touches one (LangServe's included). After every step the API must agree with a model of who
owns what: a reader sees and changes their own threads (and anonymous ones, whose id is their only
key), and anyone else's thread is the same 404 as one that never existed.

Extractive mode (no chat model), so a turn costs retrieval only. hypothesis drives a synchronous
client from a worker thread: the live uvicorn shares this test's event loop.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

EXAMPLES = 8
READERS = ("alice", "bob", "anonymous")
# Routes that run a turn; how each names a thread: header, or `thread_id` in the body.
TURN_ROUTES = (
    "/chat",
    "/chat-body-thread",
    "/chat/stream",
    "/tutor/invoke",
    "/tutor/stream",
    "/tutor/stream_events",
    "/tutor/stream_log",
)
ACTIONS = ("start", "start-own-id", "continue", "read", "list", "rename", "rate", "delete")


@dataclass
class Thread:
    owner: str | None  # None: anonymous
    turns: int = 0
    title: str | None = None


@dataclass
class World:
    """What the API should say: every thread that exists, and who owns it."""

    threads: dict[str, Thread] = field(default_factory=dict)
    known: list[str] = field(default_factory=list)  # every id ever used, deleted ones included

    def visible(self, thread_id: str, user: str | None) -> bool:
        thread = self.threads.get(thread_id)
        return thread is not None and thread.owner in (None, user)


@dataclass
class Step:
    reader: str
    action: str
    pick: int  # which known thread (modulo), when the action needs one
    route: str


steps = st.lists(
    st.builds(
        Step,
        st.sampled_from(READERS),
        st.sampled_from(ACTIONS),
        st.integers(0, 50),
        st.sampled_from(TURN_ROUTES),
    ),
    min_size=4,
    max_size=10,
)


class Readers:
    def __init__(self, api: Any) -> None:
        suffix = uuid.uuid4().hex[:8]  # the session's database is shared between tests
        self.users = {"alice": f"alice-{suffix}", "bob": f"bob-{suffix}", "anonymous": None}
        self.tokens = {name: api.headers(user) if user else {} for name, user in self.users.items()}
        self.client = httpx.Client(base_url=api.url, timeout=60)

    def turn(self, reader: str, route: str, thread_id: str | None) -> httpx.Response:
        headers = dict(self.tokens[reader])
        body: dict[str, Any] = {"message": "What does a ROS 2 topic do?"}
        if thread_id and route == "/chat-body-thread":
            body["thread_id"] = thread_id
        elif thread_id:
            headers["X-Thread-Id"] = thread_id
        path = "/chat" if route == "/chat-body-thread" else route
        if path.startswith("/tutor"):
            body = {"input": body}
        with self.client.stream("POST", path, json=body, headers=headers) as response:
            response.read()
        return response


def run_step(readers: Readers, world: World, step: Step) -> None:
    user = readers.users[step.reader]
    headers = readers.tokens[step.reader]
    client = readers.client
    picked = world.known[step.pick % len(world.known)] if world.known else str(uuid.uuid4())
    where = f"{step} on {picked} (owner {getattr(world.threads.get(picked), 'owner', '-')})"
    if step.action in ("start", "start-own-id", "continue"):
        thread_id = {"start": None, "start-own-id": str(uuid.uuid4()), "continue": picked}[step.action]
        allowed = thread_id is None or thread_id not in world.threads or world.visible(thread_id, user)
        response = readers.turn(step.reader, step.route, thread_id)
        if not allowed:
            assert response.status_code == 404, where
            return
        assert response.status_code == 200, (where, response.text[:300])
        thread_id = response.headers["x-thread-id"]
        world.threads.setdefault(thread_id, Thread(owner=user)).turns += 1
        if thread_id not in world.known:
            world.known.append(thread_id)
        return
    if step.action == "list":
        response = client.get("/threads", headers=headers, params={"limit": 100})
        if user is None:
            assert response.status_code == 401, where
            return
        mine = {tid for tid, thread in world.threads.items() if thread.owner == user}
        assert {t["thread_id"] for t in response.json()} == mine, where
        return
    visible = world.visible(picked, user)
    if step.action == "read":
        response = client.get(f"/threads/{picked}", headers=headers)
        assert response.status_code == (200 if visible else 404), where
        if visible:
            detail = response.json()
            assert len(detail["messages"]) == 2 * world.threads[picked].turns, where
            if world.threads[picked].title:
                assert detail["title"] == world.threads[picked].title, where
    elif step.action == "rename":
        title = f"renamed by {step.reader}"
        response = client.patch(f"/threads/{picked}", json={"title": title}, headers=headers)
        assert response.status_code == (200 if visible else 404), where
        if visible:
            world.threads[picked].title = title
    elif step.action == "rate":
        rating = {"seq": 2, "rating": "up"}
        response = client.post(f"/threads/{picked}/feedback", json=rating, headers=headers)
        if user is None:
            expected = 401
        elif not visible:
            expected = 404
        else:
            expected = 201 if world.threads[picked].turns else 404  # no answer to rate yet
        assert response.status_code == expected, (where, response.text[:200])
    elif step.action == "delete":
        response = client.delete(f"/threads/{picked}", headers=headers)
        assert response.status_code == (204 if visible else 404), where
        if visible:
            del world.threads[picked]


def explore(api: Any) -> int:
    count = 0

    @given(plan=steps)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.generate],  # a failure is reported as found; shrinking would re-run turns
        suppress_health_check=list(HealthCheck),
    )
    def interleaving(plan: list[Step]) -> None:
        nonlocal count
        count += 1
        readers, world = Readers(api), World()
        try:
            for step in plan:
                run_step(readers, world, step)
        finally:
            readers.client.close()

    interleaving()
    return count


async def test_readers_only_ever_see_and_change_their_own_threads(make_api: Any) -> None:
    api = await make_api()
    examples = await asyncio.to_thread(explore, api)
    print(f"ownership: {examples} interleavings")
    assert examples == EXAMPLES

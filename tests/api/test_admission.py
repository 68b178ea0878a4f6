"""Admission (api.admission): a bounded number of turns per worker, the rest first come first served,
503 `server_busy` with Retry-After past the queue's bounds, and every place given back.

Turns are made to last with the fake model's slow answers; per-client limits are switched off (0)
so only admission decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
import uuid
from typing import Any

import httpx
import pytest

from api.admission import HostShare, TurnAdmission
from api.errors import ApiError
from core.settings import Settings
from core.stores import threads
from tests.api.sse import read_events
from tests.api.test_limits import slow_answers
from tests.fakes import Error, FakeOpenAI, Text
from tests.fakes.fixtures import make_chat_model
from tests.graphs.conftest import tutor_responder

NO_CLIENT_LIMITS = {"concurrent_turns_per_anonymous_client": 0, "anonymous_turn_limit": 0}


def question(text: str = "What does a ROS 2 topic do?") -> dict[str, str]:
    return {"message": text, "mode": "ask"}


def gate(api: Any) -> TurnAdmission:
    admission: TurnAdmission = api.server.config.app.state.admission
    return admission


async def until(predicate: Any, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


def asked(fake: FakeOpenAI, text: str) -> bool:
    """Whether any model call carried `text` (the model was asked about it)."""
    return any(text in str(request.messages) for request in fake.chat_requests)


async def stream_until_started(client: httpx.AsyncClient, started: asyncio.Event, **kwargs: Any) -> str:
    async with client.stream("POST", "/chat/stream", **kwargs) as response:
        assert response.status_code == 200, await response.aread()
        last = ""
        async for event in read_events(response):
            last = event.name
            if event.name == "metadata":
                started.set()
        return last


async def test_turns_finish_in_arrival_order(make_api: Any, fake_openai: FakeOpenAI) -> None:
    fake_openai.responder = slow_answers(0.4)
    api = await make_api(make_chat_model(fake_openai), turn_concurrency=1, **NO_CLIENT_LIMITS)
    client, finished = api.client(), list[int]()
    # One turn first: a new app's first turn pays one-off costs (0.7 s once on a slow machine), which
    # would be billed to turn 0 alone and say nothing about the queue.
    assert (await client.post("/chat", json=question())).status_code == 200

    async def ask(n: int) -> float:
        await asyncio.sleep(n * 0.15)  # arrival order 0, 1, 2, 3
        sent = time.monotonic()
        response = await client.post("/chat", json=question())
        assert response.status_code == 200, response.text
        finished.append(n)
        return time.monotonic() - sent

    latencies = await asyncio.gather(*(ask(n) for n in range(4)))
    assert finished == [0, 1, 2, 3]
    assert latencies[0] < latencies[3] / 2  # the first did not wait for the burst
    assert gate(api).running == 0 and not gate(api).waiting


async def test_a_full_queue_is_refused_at_once_without_a_thread_or_model_call(
    make_api: Any, fake_openai: FakeOpenAI
) -> None:
    fake_openai.responder = slow_answers(1.5)
    api = await make_api(make_chat_model(fake_openai), turn_concurrency=1, turn_queue=1, **NO_CLIENT_LIMITS)
    client, started = api.client(), asyncio.Event()
    running = asyncio.create_task(stream_until_started(client, started, json=question()))
    await asyncio.wait_for(started.wait(), 10)
    queued = asyncio.create_task(client.post("/chat", json=question("Queued: what is a node?")))
    await until(lambda: len(gate(api).waiting) == 1)

    turned_away = "Turned away: what is a service?"
    refused = []
    for method, path, body in [
        ("POST", "/chat", question(turned_away)),
        ("POST", "/chat/stream", question(turned_away)),  # a status, not a stream
        ("POST", "/tutor/invoke", {"input": question(turned_away)}),
        ("POST", "/tutor/stream", {"input": question(turned_away)}),
    ]:
        thread = f"busy-{uuid.uuid4().hex}"
        sent = time.monotonic()
        response = await client.request(method, path, json=body, headers={"X-Thread-Id": thread})
        refused.append((response, time.monotonic() - sent, thread))
    for response, seconds, thread in refused:
        assert response.status_code == 503, response.text
        assert response.headers["content-type"].startswith("application/json")
        error = response.json()["error"]
        assert error["code"] == "server_busy" and error["message"]
        assert 1 <= int(response.headers["retry-after"]) <= 60
        assert seconds < 1.0  # at once, not after a wait
        assert await threads.get(api.context.db, thread) is None  # no thread left behind

    assert await running == "done"
    assert (await queued).status_code == 200  # the one in the queue was served
    assert not asked(fake_openai, turned_away)
    assert gate(api).running == 0 and not gate(api).waiting


async def test_a_turn_waiting_too_long_gets_503(make_api: Any, fake_openai: FakeOpenAI) -> None:
    fake_openai.responder = slow_answers(2.0)
    api = await make_api(
        make_chat_model(fake_openai), turn_concurrency=1, turn_queue_wait_seconds=0.5, **NO_CLIENT_LIMITS
    )
    client, started = api.client(), asyncio.Event()
    running = asyncio.create_task(stream_until_started(client, started, json=question()))
    await asyncio.wait_for(started.wait(), 10)
    sent = time.monotonic()
    waited = await client.post("/chat", json=question("Waited: what is a launch file?"))
    assert waited.status_code == 503 and waited.json()["error"]["code"] == "server_busy"
    assert 0.5 <= time.monotonic() - sent < 1.5
    assert int(waited.headers["retry-after"]) >= 1
    assert await running == "done"
    assert not asked(fake_openai, "Waited: what is a launch file?")
    assert gate(api).running == 0 and not gate(api).waiting


async def test_a_client_leaving_the_queue_runs_no_turn(make_api: Any, fake_openai: FakeOpenAI) -> None:
    fake_openai.responder = slow_answers(2.0)
    api = await make_api(
        make_chat_model(fake_openai),
        turn_concurrency=1,
        concurrent_turns_per_user=1,
        **NO_CLIENT_LIMITS,
    )
    client, started = api.client(), asyncio.Event()
    running = asyncio.create_task(stream_until_started(client, started, json=question()))
    await asyncio.wait_for(started.wait(), 10)

    reader, thread, gone = (
        f"reader-{uuid.uuid4().hex[:8]}",
        f"left-{uuid.uuid4().hex}",
        "Gone: what is rclpy?",
    )
    leaving = api.client()  # its own connection, closed when the task is cancelled
    queued = asyncio.create_task(
        stream_until_started(
            leaving, asyncio.Event(), json=question(gone), headers=api.headers(reader, thread)
        )
    )
    await until(lambda: len(gate(api).waiting) == 1)
    queued.cancel()
    await leaving.aclose()
    await until(lambda: not gate(api).waiting, within=3)  # noticed within a poll or two

    assert await running == "done"
    await until(lambda: gate(api).running == 0)
    assert not asked(fake_openai, gone)
    assert await threads.get(api.context.db, thread) is None
    # The reader's slot was given back too: their cap of one lets the next turn in.
    again = await client.post("/chat", json=question(), headers=api.headers(reader))
    assert again.status_code == 200, again.text


async def test_places_are_given_back_on_every_ending(make_api: Any, fake_openai: FakeOpenAI) -> None:
    api = await make_api(make_chat_model(fake_openai), turn_concurrency=1, turn_queue=0, **NO_CLIENT_LIMITS)
    client = api.client()

    async def free() -> None:
        await until(lambda: gate(api).running == 0)
        assert not gate(api).waiting

    # A model failure (JSON and stream), an anonymous rewrite refused by the policy, a bad thread id.
    fake_openai.responder = lambda request: Error(500)
    assert (await client.post("/chat", json=question())).status_code == 503
    await free()
    async with client.stream("POST", "/chat/stream", json=question()) as response:
        names = [event.name async for event in read_events(response)]
    assert names[-1] == "error"
    await free()
    fake_openai.problems.clear()
    translate = {"message": "translate", "mode": "translate", "content": "Hello"}
    assert (await client.post("/chat", json=translate)).status_code == 401
    assert (await client.post("/chat", json=question(), headers={"X-Thread-Id": "no"})).status_code == 400
    await free()

    # A stream the client abandons mid-answer.
    fake_openai.responder = lambda request: Text("A long answer " * 50, token_delay=0.05)
    async with client.stream("POST", "/chat/stream", json=question()) as response:
        async for event in read_events(response):
            if event.name == "token":
                break
    await free()

    # LangServe routes and the rewrite routes hold a place too, and give it back.
    fake_openai.responder = tutor_responder(rewrite="ترجمہ")
    assert (await client.post("/tutor/invoke", json={"input": question()})).status_code == 200
    await free()
    translated = await client.post(
        "/translate", json={"content": "Hello", "target_language": "ur"}, headers=api.headers("translator")
    )
    assert translated.status_code == 200, translated.text
    await free()


async def test_rewrite_routes_wait_for_a_place(make_api: Any, fake_openai: FakeOpenAI) -> None:
    fake_openai.responder = slow_answers(1.5)
    api = await make_api(make_chat_model(fake_openai), turn_concurrency=1, turn_queue=0, **NO_CLIENT_LIMITS)
    client, started = api.client(), asyncio.Event()
    running = asyncio.create_task(stream_until_started(client, started, json=question()))
    await asyncio.wait_for(started.wait(), 10)
    busy = await client.post(
        "/translate", json={"content": "Hello", "target_language": "ur"}, headers=api.headers("translator")
    )
    assert busy.status_code == 503 and busy.json()["error"]["code"] == "server_busy"
    # A refusal the policy makes cheaply still comes first: anonymous translate is 401, not 503.
    assert (await client.post("/translate", json={"content": "Hello"})).status_code == 401
    assert await running == "done"


@pytest.mark.parametrize(("model_turns", "expected"), [(True, 7), (False, 3)])
def test_limits_come_from_settings(model_turns: bool, expected: int) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        turn_concurrency=7,
        extractive_turn_concurrency=3,
        turn_queue=11,
        turn_queue_wait_seconds=4.5,
        turn_lease_seconds=9,
    )
    admission = TurnAdmission.for_app(settings, model_turns=model_turns)
    assert (admission.concurrency, admission.queue_limit, admission.max_wait) == (expected, 11, 4.5)
    assert admission.keep_alive_every == 3


def test_defaults_admit_a_class_of_streams() -> None:
    """On by default: 32 model turns per worker (50 streams on two workers start at once), 4 extractive."""
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (defaults.turn_concurrency, defaults.extractive_turn_concurrency) == (32, 4)
    assert defaults.turn_queue == 200 and defaults.turn_queue_wait_seconds == 20


async def test_admission_off_admits_everything() -> None:
    admission = TurnAdmission(0, 0, 1.0)
    places = [await admission.enter() for _ in range(50)]
    assert all(place.admission is None for place in places)


async def test_the_gate_is_first_come_first_served() -> None:
    admission, order = TurnAdmission(2, 100, 30.0), list[int]()
    first = [await admission.enter(), await admission.enter()]

    async def turn(n: int) -> None:
        place = await admission.enter()
        order.append(n)
        await asyncio.sleep(0)
        place.release()

    waiting = []
    for n in range(20):
        waiting.append(asyncio.create_task(turn(n)))
        await asyncio.sleep(0)  # each joins the queue before the next arrives
    assert len(admission.waiting) == 20
    for place in first:
        place.release()
    await asyncio.gather(*waiting)
    assert order == list(range(20))
    assert admission.running == 0 and not admission.waiting


async def test_a_wait_longer_than_allowed_is_refused_on_arrival() -> None:
    """Once turns have a pace (here 2 s each, one at a time), a turn that could only time out in the
    queue is told so at once, with the wait it should allow for."""
    admission = TurnAdmission(1, 100, 3.0)
    measured = await admission.enter()
    measured.started -= 2.0
    measured.release()
    running = await admission.enter()
    queued = asyncio.create_task(admission.enter())  # expected wait 2 s: allowed
    await asyncio.sleep(0)
    assert len(admission.waiting) == 1
    with pytest.raises(ApiError) as refused:
        await admission.enter()  # expected wait 4 s > 3 s
    assert refused.value.status == 503 and refused.value.code == "server_busy"
    assert refused.value.headers is not None
    assert int(refused.value.headers["Retry-After"]) in (6, 7)  # two turns ahead, then its own (~2 s each)
    running.release()
    (await queued).release()
    assert admission.running == 0


async def test_a_cancelled_waiter_passes_its_place_on() -> None:
    admission = TurnAdmission(1, 100, 30.0)
    running = await admission.enter()
    leaving = asyncio.create_task(admission.enter())
    staying = asyncio.create_task(admission.enter())
    await asyncio.sleep(0)
    running.release()  # the place is handed to `leaving`, which is cancelled before it runs
    leaving.cancel()
    place = await asyncio.wait_for(staying, 1)
    assert admission.running == 1
    place.release()
    assert admission.running == 0 and not admission.waiting


async def test_the_pace_is_measured_while_every_place_is_taken() -> None:
    """CPU-bound turns: one alone is quick, but the rate is what turns ending with the gate full say."""
    admission = TurnAdmission(2, 100, 30.0)
    alone = await admission.enter()
    alone.started -= 0.01  # a quick turn on its own: says nothing about the rate under load
    alone.release()
    assert admission.pace is None
    places = [await admission.enter(), await admission.enter()]
    waiters = [asyncio.create_task(admission.enter()) for _ in range(4)]
    await asyncio.sleep(0)
    for n in range(3):  # one turn ends every 0.1 s while the gate stays full
        places.pop(0).release()
        places.append(await waiters[n])
        await asyncio.sleep(0.1)
    assert admission.pace is not None and 0.08 < admission.pace < 0.3
    assert admission.expected_wait() == pytest.approx(2 * admission.pace)  # one waiting, then itself
    places.pop(0).release()
    places.append(await waiters[3])
    for place in places:
        place.release()
    assert admission.running == 0 and not admission.waiting


async def test_waiting_turns_that_could_only_time_out_hear_so_once_the_pace_is_known() -> None:
    admission = TurnAdmission(1, 100, 0.9)
    first = await admission.enter()
    arrived = time.monotonic()
    waiters = [asyncio.create_task(admission.enter()) for _ in range(6)]  # no pace yet: all wait
    await asyncio.sleep(0.2)
    first.release()
    second = await waiters[0]
    await asyncio.sleep(0.2)
    second.release()  # a turn every 0.2 s: the fifth and sixth could not start within 0.9 s
    third = await waiters[1]
    await asyncio.sleep(0)
    for late in waiters[4:]:
        assert late.done() and time.monotonic() - arrived < 0.9
        with pytest.raises(ApiError) as refused:
            late.result()
        assert refused.value.code == "server_busy"
    assert not waiters[2].done()  # next in line still waits
    third.release()
    for task in waiters[2:4]:
        with contextlib.suppress(ApiError):
            (await task).release()
    assert admission.running == 0 and not admission.waiting


def two_workers_gates(concurrency: int) -> tuple[TurnAdmission, TurnAdmission, Any]:
    """The gates of two workers of one `tutor serve`, sharing their counts as `cli.workers` sets up."""
    counts = multiprocessing.get_context("spawn").RawArray("i", 2)
    gates = (TurnAdmission(concurrency, 100, 30.0, host=HostShare(counts, slot)) for slot in (0, 1))
    first, second = gates
    return first, second, counts


async def test_a_busy_worker_borrows_the_places_another_leaves_free() -> None:
    """Keep-alive connections pinned six turns to one worker and none to the other: five start at
    once (its four and a quarter more), not four; the sixth waits, as the ceiling says."""
    busy, idle, counts = two_workers_gates(4)
    places = [await busy.enter() for _ in range(5)]
    assert busy.running == 5 and list(counts) == [5, 0]
    sixth = asyncio.create_task(busy.enter())
    await asyncio.sleep(0)
    assert len(busy.waiting) == 1  # the ceiling (4 + 1), though the host has room
    places[0].release()
    places[0] = await asyncio.wait_for(sixth, 1)  # the freed place goes to the waiting turn
    assert busy.running == 5 and idle.running == 0
    for place in places:
        place.release()
    assert list(counts) == [0, 0]


async def test_borrowing_stops_when_the_host_is_full_and_resumes_as_places_free() -> None:
    first, second, counts = two_workers_gates(4)
    theirs = [await second.enter() for _ in range(4)]
    mine = [await first.enter() for _ in range(4)]  # its own four: always
    assert list(counts) == [4, 4]
    borrower = asyncio.create_task(first.enter())
    await asyncio.sleep(0)
    assert len(first.waiting) == 1  # 8 running = 2 workers x 4: nothing to borrow
    theirs.pop().release()  # the other worker frees one; this worker hears of it at its next change
    assert not borrower.done()
    mine.pop().release()  # its own place passes to the waiting turn ...
    mine.append(await asyncio.wait_for(borrower, 1))
    assert first.running == 4 and second.running == 3
    late = [asyncio.create_task(first.enter()) for _ in range(2)]
    await asyncio.sleep(0)
    assert first.running == 5 and len(first.waiting) == 1  # ... and a newcomer borrows the free one
    mine.pop().release()
    for task in late:
        mine.append(await asyncio.wait_for(task, 1))
    for place in [*mine, *theirs]:
        place.release()
    assert list(counts) == [0, 0] and not first.waiting


async def test_a_newcomer_does_not_borrow_past_its_own_queue() -> None:
    first, _, counts = two_workers_gates(1)
    running = [await first.enter(), await first.enter()]  # one own, one borrowed (ceiling 2)
    queued = asyncio.create_task(first.enter())
    await asyncio.sleep(0)
    running.pop().release()  # room again: the queued turn takes it, not a newcomer
    newcomer = asyncio.create_task(first.enter())
    await asyncio.sleep(0)
    assert first.running == 2 and len(first.waiting) == 1  # the newcomer queues behind
    (await asyncio.wait_for(queued, 1)).release()
    (await asyncio.wait_for(newcomer, 1)).release()
    running.pop().release()
    assert list(counts) == [0, 0]

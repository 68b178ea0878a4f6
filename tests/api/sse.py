"""Reading a server-sent event stream the way a browser's EventSource parser does."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Event:
    name: str  # "comment" for keep-alive comments
    data: Any


async def read_events(response: httpx.Response) -> AsyncIterator[Event]:
    name, data = "message", []
    async for line in response.aiter_lines():
        if line.startswith(":"):
            yield Event("comment", line[1:].strip())
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
        elif not line and data:
            yield Event(name, json.loads("\n".join(data)))
            name, data = "message", []


async def collect(client: httpx.AsyncClient, path: str, **kwargs: Any) -> tuple[httpx.Response, list[Event]]:
    async with client.stream("POST", path, **kwargs) as response:
        if response.status_code != 200:
            await response.aread()
            return response, []
        return response, [event async for event in read_events(response) if event.name != "comment"]

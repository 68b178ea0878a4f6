"""The API over real components: the ingested sample book (once per store pair, `API_STORES`), the real graph
and checkpointer, a live uvicorn on 127.0.0.1 in the test's event loop, real HTTP clients.

`make_api(chat_model=..., **settings)` starts one server; `api.token("alice")` mints a bearer
token, `api.headers(user, thread)` builds request headers. Browser tests get `page` (a fresh
Chromium context; JavaScript errors fail the test) and `console_errors` (tests/api/browser.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from playwright.async_api import Browser, Page, async_playwright

from api.app import create_app
from api.auth import Authenticator, mint_token
from api.deps import AppContext
from chains.retriever import BookRetriever
from chains.rewrite import load_glossary
from core.embeddings.local import LocalMiniLMEmbeddings
from core.index import BookIndex
from core.settings import Settings
from graphs.context import TutorServices
from graphs.graph import build_graph
from graphs.tutor import Tutor
from tests.api.browser import CHROMIUM, TIMEOUT_MS, axe_script_fixture  # noqa: F401 (fixture)
from tests.conftest import ROOT, ingested_book

SECRET = "test-secret-that-is-long-enough-for-hs256!"


# The API suite runs twice: on the embedded Postgres with the book in pgvector (the single-database
# default), and on the external Postgres with the book in Qdrant (local mode). Together they cover
# both Postgres modes and both vector backends without a third full run.
API_STORES = [("embedded", "pgvector"), ("external", "qdrant")]


@pytest.fixture(scope="session", params=API_STORES, ids=["embedded-pgvector", "external-qdrant"])
async def api_index(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    embeddings: LocalMiniLMEmbeddings,
) -> AsyncIterator[BookIndex]:
    """The sample book ingested once per (Postgres mode, vector backend) of `API_STORES`."""
    postgres, backend = request.param
    url: str = request.getfixturevalue(f"{postgres}_pg_url")
    async with ingested_book(tmp_path_factory.mktemp("api"), embeddings, url, backend) as index:
        yield index


@dataclass
class Api:
    url: str
    context: AppContext
    server: uvicorn.Server
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return self.context.settings

    def token(self, sub: str, ttl: int = 3600) -> str:
        return mint_token(self.settings, sub, ttl)

    def headers(self, user: str | None = None, thread: str | None = None) -> dict[str, str]:
        headers = {}
        if user:
            headers["Authorization"] = f"Bearer {self.token(user)}"
        if thread:
            headers["X-Thread-Id"] = thread
        return headers

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=self.url, timeout=30, **kwargs)
        self.clients.append(client)
        return client


async def serve(app: Any) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    """A live uvicorn on a free port, in this event loop (the pool lives here)."""
    # proxy_headers off, as `tutor serve` runs it: the app alone decides whom to trust (api.limits).
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", proxy_headers=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # start-up failed: raise its error
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, task, f"http://127.0.0.1:{port}"


def make_context(
    index: BookIndex, settings: Settings, chat_model: BaseChatModel | None, saver: Any
) -> AppContext:
    services = TutorServices(
        settings=settings,
        db=index.db,
        retriever=BookRetriever(index, fusion=settings.hybrid_fusion, docs_route=settings.book_docs_route),
        embeddings=index.embeddings,
        chat_model=chat_model,
        glossary=load_glossary(ROOT / "book" / "glossary.txt"),
    )
    tutor = Tutor(build_graph(services, saver), services, saver)
    return AppContext(settings=settings, tutor=tutor, auth=Authenticator.from_settings(settings))


class Servers:
    """The live API servers one test starts, all stopped when it ends."""

    def __init__(self, home: Path) -> None:
        self.home, self.running = home, list[tuple[Api, asyncio.Task[None]]]()

    async def start(
        self, index: BookIndex, saver: Any, chat_model: BaseChatModel | None = None, **overrides: Any
    ) -> Api:
        """A server over `index` (settings: the test's TUTOR_HOME, the test secret, `overrides`)."""
        values = {"tutor_home": self.home / ".tutor", "jwt_secret": SECRET, **overrides}
        settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
        context = make_context(index, settings, chat_model, saver)
        server, task, url = await serve(create_app(settings, context=context))
        api = Api(url, context, server)
        self.running.append((api, task))
        return api

    async def stop(self) -> None:
        for api, task in self.running:
            for client in api.clients:
                await client.aclose()
            api.server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)


@pytest.fixture
async def make_api(api_index: BookIndex, tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Api]]]:
    servers = Servers(tmp_path)
    saver = AsyncPostgresSaver(api_index.db.pool)  # type: ignore[arg-type]
    await saver.setup()

    async def make(chat_model: BaseChatModel | None = None, **overrides: Any) -> Api:
        return await servers.start(api_index, saver, chat_model, **overrides)

    yield make
    await servers.stop()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the whole session."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: CI must run the browser tests")
        pytest.skip(f"{CHROMIUM} not installed")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A tab in a fresh browser context (its own cookies and localStorage); fails the test on an
    uncaught JavaScript error."""
    context = await browser.new_context(viewport={"width": 1100, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    tab = await context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    await context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def console_errors(page: Page) -> list[str]:
    """What the page logs to the console as errors (failed requests included), as it happens."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    return errors

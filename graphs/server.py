"""The tutor graph for the LangGraph CLI (`langgraph dev`) and LangGraph Platform.

The platform brings its own checkpointer and thread management, so the graph is compiled without
one. The stores and models are opened once per process, on first use, and live as long as it does
(embedded Qdrant allows one process: stop `tutor serve` first, or set QDRANT_URL).
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph

from core.runtime import open_book_index
from core.settings import get_settings
from graphs.graph import build_graph
from graphs.tutor import make_services

_graph: CompiledStateGraph[Any, Any, Any, Any] | None = None
_lock = asyncio.Lock()
_resources = AsyncExitStack()


async def make_graph(config: RunnableConfig | None = None) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Graph factory named in langgraph.json."""
    global _graph
    async with _lock:
        if _graph is None:
            settings = get_settings()
            index = await _resources.enter_async_context(open_book_index(settings))
            await index.require()
            _graph = build_graph(make_services(settings, index))
    return _graph

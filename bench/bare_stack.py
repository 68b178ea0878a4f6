"""The bare-stack baseline of `bench/api_stream.py`: what LangGraph + langchain-openai cost alone.

    uv run python bench/bare_stack.py --base-url URL --streams 10 --rounds 3

A one-node LangGraph graph whose node streams `ChatOpenAI` (the model settings `tutor serve` uses:
`gpt-4o-mini`, the default `LLM_TIMEOUT`, no retries) from the benchmark's fake OpenAI server,
consumed with `stream_mode="messages"`, in a process of its own. Nothing of ours runs: no
retrieval, no checkpointer, no HTTP service. `--streams` graphs run at once, `--rounds` times after
one warm-up round; prints one JSON object: this process's CPU ms per stream (user + system), time
to first token and tokens per stream. `api_stream.py` runs it in the same invocation as the server
and reports our CPU per streamed turn as a ratio to it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from typing import Any, TypedDict

from langchain_core.messages import AIMessageChunk, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from langgraph.graph import START, StateGraph

# The fake answers a system prompt containing this with the paced 200-token answer.
BASELINE_PROMPT = "bare-stack baseline: answer the question."
DEFAULT_LLM_TIMEOUT = 60.0  # core.settings.Settings.llm_timeout; not imported, to stay bare


class State(TypedDict, total=False):
    """The graph's state: the question in, the answer out."""

    question: str
    answer: str


def build_graph(base_url: str) -> Any:
    """One node streaming the chat model; its tokens reach the caller through `messages` mode."""
    model = ChatOpenAI(
        model="gpt-4o-mini",
        base_url=base_url,
        api_key="test",  # type: ignore[arg-type]
        timeout=DEFAULT_LLM_TIMEOUT,
        max_retries=0,
    )

    async def answer(state: State) -> State:
        text = ""
        messages = [SystemMessage(BASELINE_PROMPT), HumanMessage(state["question"])]
        async for chunk in model.astream(messages):
            text += str(chunk.content)
        return {"answer": text}

    graph = StateGraph(State)
    graph.add_node("answer", answer)
    graph.add_edge(START, "answer")
    return graph.compile()


async def one_stream(graph: Any, n: int) -> dict[str, float]:
    """Send → first token (ms) and the number of tokens of one run."""
    started, first, tokens = time.monotonic(), None, 0
    async for chunk, _meta in graph.astream({"question": f"question {n}"}, stream_mode="messages"):
        if isinstance(chunk, AIMessageChunk) and chunk.content:
            first = first or time.monotonic()
            tokens += 1
    return {"ttft_ms": ((first or started) - started) * 1000, "tokens": tokens}


async def measure(base_url: str, streams: int, rounds: int) -> dict[str, Any]:
    """CPU per stream of `rounds` rounds of `streams` graphs run at once (after one warm-up round)."""
    graph = build_graph(base_url)
    await asyncio.gather(*(one_stream(graph, i) for i in range(streams)))  # warm-up
    results: list[dict[str, float]] = []
    cpu = os.times()
    for r in range(rounds):
        results += await asyncio.gather(*(one_stream(graph, r * streams + i) for i in range(streams)))
    spent = os.times()
    cpu_s = (spent.user - cpu.user) + (spent.system - cpu.system)
    ttft = sorted(x["ttft_ms"] for x in results)
    return {
        "streams_at_once": streams,
        "streams": len(results),
        "cpu_ms_per_stream": round(cpu_s * 1000 / len(results), 1),
        "ttft_ms_p50": round(statistics.median(ttft), 1),
        "tokens_min": min(int(x["tokens"]) for x in results),
    }


def main() -> None:
    """Parse the arguments, measure, print the result as JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base-url", required=True, help="the fake OpenAI server's /v1 URL")
    parser.add_argument("--streams", type=int, default=1, help="graphs streaming at once")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.base_url, args.streams, args.rounds))))


if __name__ == "__main__":
    main()

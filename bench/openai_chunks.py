"""Client CPU per streamed answer: langchain-openai's typed chunks against our raw ones.

    uv run python bench/openai_chunks.py [--streams 5] [--batches 5]

`ChatOpenAI.astream` over `bench/api_stream.py`'s fake OpenAI server (its own process; the bare
stack's prompt, so 200 tokens, the first after 300 ms, then one every 20 ms), in
alternating batches of `--streams` streams at once: the library's client (`stream_chunk_timeout`
off, so that only the chunk type differs) against `TutorChatOpenAI` with its stall guard off
(`core.chat_models.RawChunkAsyncOpenAI`: the SDK's parsed JSON, not `ChatCompletionChunk`s). Both
streams' chunks are compared first. Prints this process's CPU ms per stream for each batch and
the medians; the fake's CPU is not billed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI

from bench.api_stream import fake_model
from bench.bare_stack import BASELINE_PROMPT
from core.chat_models import TutorChatOpenAI

QUESTION = [SystemMessage(BASELINE_PROMPT), HumanMessage("What is a topic?")]


async def batch(model: ChatOpenAI, streams: int) -> tuple[float, list[Any]]:
    """CPU ms per stream of `streams` streams at once, and the first stream's chunks."""

    async def one() -> list[Any]:
        return [chunk async for chunk in model.astream(QUESTION)]

    started = time.process_time()
    results = await asyncio.gather(*(one() for _ in range(streams)))
    return (time.process_time() - started) * 1000 / streams, results[0]


async def measure(base_url: str, streams: int, batches: int) -> None:
    options: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "base_url": base_url,
        "api_key": "test",
        "max_retries": 0,
    }
    typed = ChatOpenAI(**options, stream_chunk_timeout=None)
    raw = TutorChatOpenAI(**options, stall_timeout=None)
    (_, typed_chunks), (_, raw_chunks) = await batch(typed, 1), await batch(raw, 1)  # warm-up
    same = [c.model_dump(exclude={"id"}) for c in typed_chunks] == [
        c.model_dump(exclude={"id"}) for c in raw_chunks
    ]
    print(f"{len(raw_chunks)} chunks per stream; the same chunks: {same}")
    cpu: dict[str, list[float]] = {"typed": [], "raw": []}
    for _ in range(batches):
        cpu["typed"].append(round((await batch(typed, streams))[0], 1))
        cpu["raw"].append(round((await batch(raw, streams))[0], 1))
    for name, values in cpu.items():
        print(f"{name}: {values} CPU ms/stream, median {statistics.median(values)}")
    print(f"raw ÷ typed: {statistics.median(cpu['raw']) / statistics.median(cpu['typed']):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=5)
    parser.add_argument("--batches", type=int, default=5)
    args = parser.parse_args()
    with fake_model() as (base_url, _streaming, _arrivals):
        asyncio.run(measure(base_url, args.streams, args.batches))


if __name__ == "__main__":
    main()

"""Run a fake model server on its own, answering every call the tutor makes, for trying `tutor serve`
against it by hand:

    uv run python -m tests.fakes.serve gemini --port 8151 &
    CHAT_MODEL=google_genai:gemini-2.5-flash GOOGLE_API_KEY=test \\
      GOOGLE_BASE_URL=http://127.0.0.1:8151/ uv run tutor serve --port 8152
    curl -N http://127.0.0.1:8152/chat/stream -H 'content-type: application/json' \\
      -d '{"message": "What does a ROS 2 topic do?", "mode": "ask"}'

(`openai` instead of `gemini` serves the OpenAI wire format: `OPENAI_BASE_URL=http://127.0.0.1:8151/v1`.)
Replies are `tests.graphs.conftest.tutor_responder`'s, streamed a token every `--token-delay` seconds.
It prints its base URL, then runs until interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from typing import Any

from tests.fakes.gemini_server import FakeGemini
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.replies import Reply, Text
from tests.graphs.conftest import tutor_responder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("provider", choices=["gemini", "openai"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token-delay", type=float, default=0.02, help="seconds between streamed tokens")
    args = parser.parse_args(argv)

    fake = (FakeGemini if args.provider == "gemini" else FakeOpenAI)(port=args.port)
    scripted = tutor_responder()

    def respond(request: Any) -> Reply | None:
        reply = scripted(request) or Text("A fake reply.")
        if isinstance(reply, Text):
            return Text(reply.content, token_delay=args.token_delay)
        return reply

    fake.responder = respond
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with fake:
        print(fake.base_url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()

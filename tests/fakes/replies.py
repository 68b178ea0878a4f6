"""Scripted replies for the fake model servers, and the OpenAI wire objects they turn into.

A test says *what* the model should do (answer with text, return structured output, fail, hang, drop
the stream, be blocked); the reply types are the same for every provider, so one responder script
drives `FakeOpenAI` and `FakeGemini` alike. This module knows *how* OpenAI would say it (`gemini_wire`
knows Gemini's), so the real `openai` SDK and
`langchain-openai` parse the fake's answers exactly as they parse the real service's.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Text:
    """A plain assistant message, streamed one whitespace-delimited token per SSE chunk."""

    content: str
    first_token_delay: float = 0.0
    token_delay: float = 0.0


@dataclass(frozen=True)
class Json:
    """Structured output: JSON text as content when the request sets `response_format`, else a call of
    the forced (`tool_choice`) or first offered tool, else JSON text.

    Lets one script serve every `with_structured_output` method (json_schema, json_mode,
    function_calling) without the test knowing which one the code under test picked.
    """

    obj: Any
    first_token_delay: float = 0.0
    token_delay: float = 0.0


@dataclass(frozen=True)
class ToolCall:
    """An explicit call of the named function with these arguments (`id` is generated if omitted)."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    first_token_delay: float = 0.0
    token_delay: float = 0.0


@dataclass(frozen=True)
class Error:
    """An OpenAI-style error response.

    `retry_after` is sent both as `retry-after-ms` (which the SDK prefers, so sub-second waits work)
    and as a whole-second `Retry-After`. The SDK ignores a wait of 0 and falls back to its own ~0.5 s
    backoff, so 0 is sent as 1 ms. `should_retry` sets `x-should-retry`, which overrides the SDK's
    status-based choice.
    """

    status: int
    message: str = "Fake error from FakeOpenAI"
    retry_after: float | None = None
    type: str | None = None
    code: str | None = None
    should_retry: bool | None = None


@dataclass(frozen=True)
class Hang:
    """Accept the request, send nothing for `seconds`, then close the connection: client timeouts."""

    seconds: float


@dataclass(frozen=True)
class Disconnect:
    """Stream `after_tokens` tokens of `content`, then drop the connection without `[DONE]`.

    The body is chunked, so the client sees an incomplete message and raises instead of treating
    the drop as a normal end of stream. A non-streaming request is dropped before any response.
    """

    after_tokens: int = 0
    content: str = "this answer is cut off before it is finished"
    token_delay: float = 0.0


@dataclass(frozen=True)
class Blocked:
    """The provider's safety filter withholds the answer: Gemini ends the reply with
    `finishReason: SAFETY` (or `reason`) and no text; OpenAI-compatible servers with
    `finish_reason: content_filter`. A stream first sends `after_tokens` tokens of `content`."""

    reason: str = "SAFETY"
    after_tokens: int = 0
    content: str = ""


@dataclass(frozen=True)
class Stall:
    """Stream `after_tokens` tokens of `content`, then only SSE keep-alive comments, one every
    `every` seconds, for `seconds`, then drop: a reply alive at the TCP and HTTP level (the read
    timeout never fires) that sends no content. Not streaming: no response for `seconds`, as `Hang`."""

    after_tokens: int = 0
    seconds: float = 30.0
    every: float = 0.1
    content: str = "this answer stalls before it is finished"


Reply = Text | Json | ToolCall | Error | Hang | Disconnect | Blocked | Stall


def tokenize(text: str) -> list[str]:
    """Split into OpenAI-looking tokens (leading whitespace kept) whose concatenation is `text`."""
    return re.findall(r"\s*\S+|\s+", text)


@dataclass(frozen=True)
class Completion:
    """What one chat completion says, independent of streaming or not."""

    content: str | None
    tool_calls: list[dict[str, Any]]
    first_token_delay: float
    token_delay: float
    stopped_by: str | None = None  # a finish reason other than the natural one (content_filter)

    @property
    def finish_reason(self) -> str:
        return self.stopped_by or ("tool_calls" if self.tool_calls else "stop")


def _requested_tool(body: dict[str, Any]) -> str | None:
    """The function the request forces (`tool_choice`), else the first one it offers."""
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if name:
            return str(name)
    tools = body.get("tools") or []
    for tool in tools:
        name = (tool.get("function") or {}).get("name") if isinstance(tool, dict) else None
        if name:
            return str(name)
    return None


def _tool_call(call_id: str, name: str, arguments: Any) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


def plan_completion(reply: Text | Json | ToolCall, body: dict[str, Any], call_id: str) -> Completion:
    """Decide content or tool call for a chat request; `Json` auto-detects from the request."""
    delays = (reply.first_token_delay, reply.token_delay)
    if isinstance(reply, Text):
        return Completion(reply.content, [], *delays)
    if isinstance(reply, ToolCall):
        return Completion(None, [_tool_call(reply.id or call_id, reply.name, reply.arguments)], *delays)
    tool = _requested_tool(body)
    wants_text = "response_format" in body or body.get("tool_choice") == "none"
    if tool is not None and not wants_text:
        return Completion(None, [_tool_call(call_id, tool, reply.obj)], *delays)
    return Completion(json.dumps(reply.obj), [], *delays)


def usage(body: dict[str, Any], completion_text: str) -> dict[str, int]:
    """Whitespace-token counts: not tiktoken, but stable and non-zero, which is what tests check."""
    texts = [m["content"] for m in body.get("messages", []) if isinstance(m.get("content"), str)]
    prompt = sum(len(tokenize(text)) for text in texts)
    completion = len(tokenize(completion_text))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _envelope(completion_id: str, body: dict[str, Any], obj: str) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": obj,
        "created": int(time.time()),
        "model": body.get("model", "gpt-4o-mini"),
        "system_fingerprint": "fp_fake",
    }


def _completion_text(completion: Completion) -> str:
    calls = "".join(call["function"]["arguments"] for call in completion.tool_calls)
    return (completion.content or "") + calls


def completion_body(completion_id: str, body: dict[str, Any], completion: Completion) -> dict[str, Any]:
    """The non-streaming `chat.completion` object."""
    message: dict[str, Any] = {"role": "assistant", "content": completion.content, "refusal": None}
    if completion.tool_calls:
        message["tool_calls"] = completion.tool_calls
    return {
        **_envelope(completion_id, body, "chat.completion"),
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": completion.finish_reason}
        ],
        "usage": usage(body, _completion_text(completion)),
    }


def chunk_body(
    completion_id: str, body: dict[str, Any], delta: dict[str, Any], finish_reason: str | None = None
) -> dict[str, Any]:
    """One `chat.completion.chunk` carrying `delta`."""
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
    return {**_envelope(completion_id, body, "chat.completion.chunk"), "choices": [choice]}


def usage_chunk(completion_id: str, body: dict[str, Any], completion: Completion) -> dict[str, Any]:
    """The extra last chunk (empty `choices`) sent when `stream_options.include_usage` is set."""
    chunk = {**_envelope(completion_id, body, "chat.completion.chunk"), "choices": []}
    return {**chunk, "usage": usage(body, _completion_text(completion))}


def content_deltas(completion: Completion) -> list[dict[str, Any]]:
    """The streamed deltas after the opening role chunk: one per token of content or arguments."""
    if not completion.tool_calls:
        return [{"content": token} for token in tokenize(completion.content or "")]
    deltas: list[dict[str, Any]] = []
    for index, call in enumerate(completion.tool_calls):
        function = call["function"]
        opening = {"index": index, "id": call["id"], "type": "function"}
        deltas.append({"tool_calls": [{**opening, "function": {"name": function["name"], "arguments": ""}}]})
        for piece in tokenize(function["arguments"]):
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    return deltas


def error_body(reply: Error) -> dict[str, Any]:
    """OpenAI's error shape: `{"error": {"message", "type", "param", "code"}}`."""
    default_type, default_code = {
        400: ("invalid_request_error", None),
        401: ("invalid_request_error", "invalid_api_key"),
        404: ("invalid_request_error", "model_not_found"),
        429: ("requests", "rate_limit_exceeded"),
    }.get(reply.status, ("server_error" if reply.status >= 500 else "invalid_request_error", None))
    return {
        "error": {
            "message": reply.message,
            "type": reply.type or default_type,
            "param": None,
            "code": reply.code or default_code,
        }
    }


def error_headers(reply: Error) -> dict[str, str]:
    headers: dict[str, str] = {}
    if reply.retry_after is not None:
        headers["retry-after-ms"] = str(max(1, round(reply.retry_after * 1000)))
        headers["Retry-After"] = str(max(1, math.ceil(reply.retry_after)))
    if reply.should_retry is not None:
        headers["x-should-retry"] = "true" if reply.should_retry else "false"
    return headers

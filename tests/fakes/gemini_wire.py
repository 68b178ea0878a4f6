"""The Gemini Developer API's wire objects for the provider-agnostic replies of `replies.py`.

What `google-genai` sends and expects (camelCase JSON, as on generativelanguage.googleapis.com):
a request has `contents` (`role` user/model, `parts` of `text` / `functionCall` /
`functionResponse`), an optional `systemInstruction`, `generationConfig` (structured output sets
`responseMimeType: application/json` and `responseJsonSchema`), `tools` (`functionDeclarations`)
and `toolConfig`. A response is a `GenerateContentResponse`: `candidates[0].content.parts`,
`finishReason`, `usageMetadata`, `modelVersion`; a stream is a series of them as SSE `data:` lines.
Errors are `{"error": {"code", "message", "status"}}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tests.fakes.embeddings import DEFAULT_DIMENSIONS, fake_embedding
from tests.fakes.replies import Blocked, Error, Json, Text, ToolCall, tokenize

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def part_text(parts: Any) -> str:
    """The text of a content's parts (function calls and responses as their JSON)."""
    texts = []
    for part in parts or []:
        if not isinstance(part, dict):
            continue
        if "text" in part:
            texts.append(str(part["text"]))
        elif "functionCall" in part or "functionResponse" in part:
            texts.append(json.dumps(part.get("functionCall") or part.get("functionResponse")))
    return "".join(texts)


def openai_like_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request as OpenAI-style `{"role", "content"}` messages (system, user, assistant), so
    responders and assertions written against `FakeOpenAI`'s requests read Gemini's the same way."""
    messages = []
    system = body.get("systemInstruction")
    if isinstance(system, dict):
        messages.append({"role": "system", "content": part_text(system.get("parts"))})
    for content in body.get("contents") or []:
        role = "assistant" if content.get("role") == "model" else "user"
        messages.append({"role": role, "content": part_text(content.get("parts"))})
    return messages


@dataclass(frozen=True)
class Candidate:
    """What one reply says: text (streamed token by token) or one function call, and why it ended."""

    text: str
    function_call: dict[str, Any] | None = None
    finish_reason: str = "STOP"


def _wants_json_text(body: dict[str, Any]) -> bool:
    config = body.get("generationConfig") or {}
    return config.get("responseMimeType") == "application/json"


def _offered_function(body: dict[str, Any]) -> str | None:
    """The function the request forces (`allowedFunctionNames`), else the first one it declares."""
    calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    if calling.get("mode") == "NONE":
        return None
    allowed = calling.get("allowedFunctionNames") or []
    if allowed:
        return str(allowed[0])
    for tool in body.get("tools") or []:
        for declaration in tool.get("functionDeclarations") or []:
            return str(declaration["name"])
    return None


def plan_candidate(reply: Text | Json | ToolCall | Blocked, body: dict[str, Any]) -> Candidate:
    """Text, JSON text (`responseMimeType: application/json`), or a function call for `Json` when
    the request offers a function (`with_structured_output(method="function_calling")`)."""
    if isinstance(reply, Text):
        return Candidate(reply.content)
    if isinstance(reply, Blocked):
        return Candidate("".join(tokenize(reply.content)[: reply.after_tokens]), finish_reason=reply.reason)
    if isinstance(reply, ToolCall):
        return Candidate("", {"name": reply.name, "args": reply.arguments})
    function = None if _wants_json_text(body) else _offered_function(body)
    if function is not None:
        return Candidate("", {"name": function, "args": reply.obj})
    return Candidate(json.dumps(reply.obj))


def usage_metadata(body: dict[str, Any], output: str) -> dict[str, int]:
    """Whitespace-token counts (stable and non-zero, which is what tests check)."""
    prompt = sum(len(tokenize(m["content"])) for m in openai_like_messages(body))
    completion = len(tokenize(output))
    return {
        "promptTokenCount": prompt,
        "candidatesTokenCount": completion,
        "totalTokenCount": prompt + completion,
    }


def response_body(
    model: str,
    response_id: str,
    parts: list[dict[str, Any]],
    finish_reason: str | None,
    usage: dict[str, int] | None = None,
) -> dict[str, Any]:
    """One `GenerateContentResponse` (a whole reply, or one chunk of a stream)."""
    candidate: dict[str, Any] = {"index": 0}
    if parts:
        candidate["content"] = {"role": "model", "parts": parts}
    if finish_reason:
        candidate["finishReason"] = finish_reason
        if finish_reason != "STOP":
            candidate["safetyRatings"] = [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
            ]
    payload: dict[str, Any] = {"candidates": [candidate], "modelVersion": model, "responseId": response_id}
    if usage is not None:
        payload["usageMetadata"] = usage
    return payload


def candidate_parts(candidate: Candidate) -> list[dict[str, Any]]:
    if candidate.function_call is not None:
        return [{"functionCall": candidate.function_call}]
    return [{"text": candidate.text}] if candidate.text else []


def stream_parts(candidate: Candidate) -> list[list[dict[str, Any]]]:
    """The parts of each streamed chunk: one token of text each, or the whole function call."""
    if candidate.function_call is not None:
        return [[{"functionCall": candidate.function_call}]]
    return [[{"text": token}] for token in tokenize(candidate.text)]


def error_body(reply: Error) -> dict[str, Any]:
    """Google's error shape, e.g. `{"error": {"code": 429, "message": …, "status": "RESOURCE_EXHAUSTED"}}`."""
    status = reply.type or STATUS_NAMES.get(reply.status, "INTERNAL" if reply.status >= 500 else "UNKNOWN")
    return {"error": {"code": reply.status, "message": reply.message, "status": status}}


def embed_values(content: dict[str, Any], dimensions: int | None) -> dict[str, Any]:
    """One `ContentEmbedding`: the same deterministic vector `FakeOpenAI` gives the same text."""
    return {"values": fake_embedding(part_text(content.get("parts")), dimensions or DEFAULT_DIMENSIONS)}


def batch_embed_body(body: dict[str, Any]) -> dict[str, Any]:
    """`batchEmbedContents`: one embedding per request, in order."""
    requests = body.get("requests") or []
    return {
        "embeddings": [embed_values(r.get("content") or {}, r.get("outputDimensionality")) for r in requests]
    }

"""Test fakes for external services; `FakeOpenAI` stands in for the OpenAI HTTP API."""

from tests.fakes.embeddings import DEFAULT_DIMENSIONS, fake_embedding
from tests.fakes.openai_server import CapturedRequest, FakeOpenAI
from tests.fakes.replies import Disconnect, Error, Hang, Json, Reply, Stall, Text, ToolCall, tokenize

__all__ = [
    "DEFAULT_DIMENSIONS",
    "CapturedRequest",
    "Disconnect",
    "Error",
    "FakeOpenAI",
    "Hang",
    "Json",
    "Reply",
    "Stall",
    "Text",
    "ToolCall",
    "fake_embedding",
    "tokenize",
]

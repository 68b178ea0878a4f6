"""`tutor serve`'s log lines: the format chosen for where they go, and library chatter kept out."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest

from api.logs import configure_logging, log_handler


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def record(logger: str, level: int, message: str, **extra: Any) -> logging.LogRecord:
    return logging.getLogger(logger).makeRecord(logger, level, __file__, 1, message, (), None, extra=extra)


def emit(log_format: Any, stream: io.StringIO, logger: str, message: str, **extra: Any) -> str:
    """What a handler of `log_format` writes to `stream` for one INFO record."""
    log_handler(log_format, stream).handle(record(logger, logging.INFO, message, **extra))
    return stream.getvalue()


def passes(logger: str, level: int, message: str, capsys: pytest.CaptureFixture[str]) -> bool:
    """Whether the root handler `configure_logging` installed writes this record to stderr."""
    capsys.readouterr()
    logging.getLogger().handlers[0].handle(record(logger, level, message))
    return message in capsys.readouterr().err


@pytest.fixture
def root_handlers() -> Iterator[None]:
    """configure_logging replaces the root logger's handlers: put the test run's back."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = saved, level


def test_auto_is_text_on_a_terminal_and_json_elsewhere() -> None:
    text = re.sub(r"\x1b\[[0-9;]*m", "", emit("auto", Terminal(), "api.app", "book indexed", pages=20))
    assert "book indexed" in text and "pages=20" in text and "INFO" in text and not text.startswith("{")

    entry = json.loads(emit("auto", io.StringIO(), "api.app", "book indexed", pages=20))
    assert entry["message"] == "book indexed" and entry["pages"] == 20 and entry["level"] == "INFO"


def test_the_setting_overrides_the_terminal_check() -> None:
    assert json.loads(emit("json", Terminal(), "api.app", "hello"))["message"] == "hello"
    assert not emit("text", io.StringIO(), "api.app", "hello").startswith("{")


def test_text_lines_do_not_repeat_what_the_message_says() -> None:
    access = emit("text", io.StringIO(), "api.access", "GET /health 200 3ms", status=200, path="/health")
    assert "GET /health 200 3ms" in access and "status=" not in access and "path=" not in access


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_library_info_is_dropped_and_its_warnings_kept(
    root_handlers: None, log_format: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(log_format)
    assert not passes("pgserver", logging.INFO, "Running commandline: initdb", capsys)
    # onnxruntime's quantizer logs on the root logger
    assert not passes("root", logging.INFO, "Quantization parameters for tensor", capsys)
    assert not passes("qdrant_client", logging.INFO, "collection opened", capsys)
    assert passes("qdrant_client", logging.WARNING, "Local mode is not recommended", capsys)
    assert passes("pgserver", logging.ERROR, "could not start", capsys)
    assert passes("api.app", logging.INFO, "book indexed", capsys)
    assert passes("uvicorn.error", logging.INFO, "Uvicorn running on", capsys)


def test_debug_lets_everything_through(root_handlers: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "DEBUG")
    assert passes("pgserver", logging.INFO, "Running commandline: initdb", capsys)

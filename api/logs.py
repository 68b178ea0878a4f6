"""Log lines: short text for a person at a terminal, JSON lines for everything else.

`LOG_FORMAT=auto` (the default) picks text when stderr is a terminal, else JSON; `text` and `json`
force one. Both carry the request id (JSON always, text on warnings and errors). Below WARNING only
our own loggers and uvicorn's speak: third-party INFO chatter (pgserver's command lines,
onnxruntime's quantization notes, httpx's URLs, ...) is dropped, their warnings and errors kept.
`--log-level debug` lets everything through.

What never goes into a log at INFO: tokens, profile fields, selected text, message content. The
access line (api.middleware) has method, path, status and duration only.
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from datetime import UTC, datetime
from typing import Any, Literal

from rich.console import Console
from rich.logging import RichHandler

from api.middleware import request_id_var

LOG_LEVEL_VARIABLE = "TUTOR_SERVE_LOG_LEVEL"  # `tutor serve --log-level`, read by each worker process
OURS = ("api", "core", "graphs", "chains", "ingest", "cli", "uvicorn")
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}


def extras(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a call added with `extra=` (uvicorn's `color_message` left out)."""
    return {key: value for key, value in record.__dict__.items() if key not in _STANDARD}


class JsonFormatter(logging.Formatter):
    """Log records as one JSON object a line (time, level, logger, message, request id, extras)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": request_id_var.get(),
            "message": record.getMessage(),
        }
        entry.update(extras(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The message, then the `extra=` fields it does not already say, as `key=value`."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a short line for people: time, level, message, extras."""
        message = record.getMessage()
        fields = [f"{key}={value}" for key, value in extras(record).items() if str(value) not in message]
        if record.levelno >= logging.WARNING and (request_id := request_id_var.get()) != "-":
            fields.append(f"request_id={request_id}")
        return "  ".join([message, " ".join(fields)]) if fields else message


class OursOrWarnings(logging.Filter):
    """Records from our loggers (and uvicorn's), or anyone's at WARNING and above."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether to let the record through: ours at any level, libraries' from WARNING."""
        return record.levelno >= logging.WARNING or record.name.split(".")[0] in OURS


def log_handler(log_format: Literal["auto", "json", "text"], stream: Any = None) -> logging.Handler:
    """A handler writing to `stream` (stderr) in the chosen format; `auto` asks whether it is a TTY."""
    stream = stream or sys.stderr
    if log_format == "text" or (log_format == "auto" and stream.isatty()):
        console = Console(file=stream)
        handler: logging.Handler = RichHandler(
            console=console, show_path=False, markup=False, log_time_format="%H:%M:%S"
        )
        handler.setFormatter(TextFormatter())
    else:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(JsonFormatter())
    return handler


def configure_logging(log_format: Literal["auto", "json", "text"] = "auto", level: str = "INFO") -> None:
    """Install the one logging handler the service uses.

    One handler on the root logger for ours, uvicorn's and the libraries' records (uvicorn's own
    access log is replaced by ours, api.middleware).
    """
    handler = log_handler(log_format)
    if logging.getLevelName(level.upper()) != logging.DEBUG:
        handler.addFilter(OursOrWarnings())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry full URLs, even at debug
    # langchain-openai's structured output stores the parsed object in a message field typed `None`,
    # so pydantic warns on every classifier call (2,079 times in a 5-minute soak): noise, not news.
    warnings.filterwarnings("ignore", message="Pydantic serializer warnings", category=UserWarning)

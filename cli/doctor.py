"""`tutor doctor`: one tiny live request to the configured chat model and embedding model.

It costs nothing unless run (a handful of tokens when it is), and says in plain words what works
and what does not: a missing key, a wrong model name (404), an unreachable base URL, a rejected key
(401/403), quota (429). Exit status 1 when a check fails.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from typing import Annotated, Any

import typer
from rich.console import Console

from core.settings import Settings, get_settings

PROVIDER_KEYS = {"openai": ("OPENAI_API_KEY",), "google_genai": ("GOOGLE_API_KEY", "GEMINI_API_KEY")}
DEFAULT_ENDPOINTS = {
    "openai": "https://api.openai.com/v1",
    "google_genai": "https://generativelanguage.googleapis.com/",
}
# A doctor waits less than a reader would, and does not retry: it reports, it does not insist.
CHECK_TIMEOUT = 20.0


@dataclass
class Check:
    """The outcome of one check: what was checked, whether it works, and what was said."""

    what: str  # "chat model" or "embeddings"
    name: str  # what is configured
    ok: bool
    detail: str


def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Check the chat model and the embedding model with one tiny live request each."""
    settings = get_settings().model_copy(
        update={"llm_max_retries": 0, "llm_timeout": min(get_settings().llm_timeout, CHECK_TIMEOUT)}
    )
    checks = [check_chat_model(settings), check_embeddings(settings)]
    if as_json:
        typer.echo(json.dumps([asdict(check) for check in checks]))
    else:
        console = Console()
        for check in checks:
            mark = "[green]ok[/]" if check.ok else "[bold red]FAILED[/]"
            console.print(f"{check.what:<11} {check.name:<45} {mark}  {check.detail}", highlight=False)
    if not all(check.ok for check in checks):
        raise typer.Exit(1)


def check_chat_model(settings: Settings) -> Check:
    """Send one tiny request to the configured chat model."""
    from core.providers import AnswerBlocked, make_chat_model

    name = settings.chat_model
    if not name:
        return Check("chat model", "(none)", True, "CHAT_MODEL is not set: answers are extractive")
    if missing := missing_key(name):
        return Check("chat model", name, False, missing)
    started = time.monotonic()
    try:
        model = make_chat_model(settings)
        assert model is not None
        model.invoke("Reply with the single word OK.")
    except AnswerBlocked:
        pass  # it answered; its safety filter just did not like the probe
    except Exception as exc:
        return Check("chat model", name, False, explain(exc, name, endpoint(settings, name)))
    return Check("chat model", name, True, f"answered in {time.monotonic() - started:.1f} s")


def check_embeddings(settings: Settings) -> Check:
    """Embed one short text with the configured embedding model."""
    from core.providers import LOCAL_MODEL, make_embeddings

    name = settings.embeddings
    if name != "local" and (missing := missing_key(name)):
        return Check("embeddings", name, False, missing)
    try:
        embeddings, _ = make_embeddings(settings)
        vector = embeddings.embed_query("doctor")
    except Exception as exc:
        return Check("embeddings", name, False, explain(exc, name, endpoint(settings, name)))
    shown = f"local ({LOCAL_MODEL})" if name == "local" else name
    return Check("embeddings", shown, True, f"{len(vector)} dimensions")


def missing_key(model: str) -> str | None:
    """A sentence naming the key a provider needs when none of its variables is set."""
    provider = model.split(":", 1)[0]
    keys = PROVIDER_KEYS.get(provider, ())
    if keys and not any(os.environ.get(key) for key in keys):
        return f"no API key: set {' or '.join(keys)}"
    return None


def endpoint(settings: Settings, model: str) -> str:
    """The endpoint a request for `model` goes to (the base URL, or the provider's default)."""
    provider = model.split(":", 1)[0]
    configured = {"openai": settings.openai_base_url, "google_genai": settings.google_base_url}.get(provider)
    return configured or DEFAULT_ENDPOINTS.get(provider, "the provider")


def explain(exc: BaseException, model: str, url: str) -> str:
    """One sentence for a failed probe, from the HTTP status or the transport error behind `exc`."""
    status = http_status(exc)
    if status in (401, 403):
        return f"the provider refused the API key (HTTP {status}): check it and the model's access"
    if status == 404:
        return f"model not found (HTTP 404): check the name in {model!r}"
    if status == 429:
        return "quota or rate limit reached (HTTP 429)"
    if status == 400 and "api key" in str(exc).lower():
        return "the provider refused the API key (HTTP 400: API key not valid)"
    if status is not None:
        return f"the provider answered HTTP {status}: {first_line(exc)}"
    names = {type(e).__name__ for e in causes(exc)}
    if any("Timeout" in n for n in names):
        return f"no answer from {url} within the timeout"
    if any("Connect" in n for n in names):
        return f"cannot reach {url}: is the base URL right and the service up?"
    return f"{type(exc).__name__}: {first_line(exc)}"


def causes(exc: BaseException) -> list[BaseException]:
    """`exc` and the exceptions it was raised from (SDK wrappers hide the transport error)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def http_status(exc: BaseException) -> int | None:
    """The HTTP status an SDK error carries, if any."""
    for error in causes(exc):
        for attribute in ("status_code", "code"):
            value: Any = getattr(error, attribute, None)
            if isinstance(value, int) and 400 <= value < 600:
                return value
    return None


def first_line(exc: BaseException) -> str:
    """The first line of the error's message."""
    return (str(exc).strip().splitlines() or [""])[0][:200]

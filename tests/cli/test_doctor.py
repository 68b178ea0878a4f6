"""`tutor doctor` against both fakes and an unreachable port: what works, what does not, in words."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from core.settings import get_settings
from tests.fakes import Error, Text

runner = CliRunner()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[pytest.MonkeyPatch]:
    for key in ("OPENAI_API_KEY", "GOOGLE_API_KEY", "GEMINI_API_KEY", "OPENAI_BASE_URL", "GOOGLE_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("TUTOR_HOME", str(tmp_path / ".tutor"))
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def use_openai(env: pytest.MonkeyPatch, fake: Any) -> None:
    env.setenv("OPENAI_API_KEY", "test")
    env.setenv("OPENAI_BASE_URL", fake.base_url)
    env.setenv("CHAT_MODEL", "openai:gpt-4o-mini")
    env.setenv("EMBEDDINGS", "openai:text-embedding-3-small")


def use_gemini(env: pytest.MonkeyPatch, base_url: str, key: str | None = "test") -> None:
    if key:
        env.setenv("GOOGLE_API_KEY", key)
    env.setenv("GOOGLE_BASE_URL", base_url)
    env.setenv("CHAT_MODEL", "google_genai:gemini-2.5-flash")
    env.setenv("EMBEDDINGS", "google_genai:models/gemini-embedding-001")


def doctor() -> tuple[int, dict[str, dict[str, Any]]]:
    result = runner.invoke(app, ["doctor", "--json"])
    checks = {check["what"]: check for check in json.loads(result.stdout)}
    return result.exit_code, checks


def test_both_models_answer_on_openai(clean_env: pytest.MonkeyPatch, fake_openai: Any) -> None:
    use_openai(clean_env, fake_openai)
    fake_openai.script(Text("OK"))
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0, result.stdout
    assert "openai:gpt-4o-mini" in result.stdout and "answered in" in result.stdout
    assert "64 dimensions" in result.stdout and "FAILED" not in result.stdout
    assert len(fake_openai.chat_requests) == 1 and len(fake_openai.embedding_requests) == 1


def test_both_models_answer_on_gemini(clean_env: pytest.MonkeyPatch, fake_gemini: Any) -> None:
    use_gemini(clean_env, fake_gemini.base_url)
    fake_gemini.script(Text("OK"))
    code, checks = doctor()
    assert code == 0 and checks["chat model"]["ok"] and checks["embeddings"]["ok"]
    assert checks["embeddings"]["detail"] == "64 dimensions"
    assert fake_gemini.chat_requests[0].model == "gemini-2.5-flash"


def test_wrong_model_name_and_refused_key_are_named(clean_env: pytest.MonkeyPatch, fake_gemini: Any) -> None:
    use_gemini(clean_env, fake_gemini.base_url)
    fake_gemini.script(Error(404, "models/gemini-9 is not found for API version v1beta"))
    fake_gemini.script_embeddings(Error(403, "Permission denied"))
    code, checks = doctor()
    assert code == 1
    assert checks["chat model"]["detail"].startswith("model not found (HTTP 404)")
    assert checks["embeddings"]["detail"].startswith("the provider refused the API key (HTTP 403)")
    assert len(fake_gemini.chat_requests) == 1  # no retries: the doctor reports, it does not insist


def test_openai_auth_error(clean_env: pytest.MonkeyPatch, fake_openai: Any) -> None:
    use_openai(clean_env, fake_openai)
    fake_openai.script(Error(401, "Incorrect API key provided"))
    code, checks = doctor()
    assert code == 1 and "HTTP 401" in checks["chat model"]["detail"] and checks["embeddings"]["ok"]


def test_missing_key_sends_nothing(clean_env: pytest.MonkeyPatch, fake_gemini: Any) -> None:
    use_gemini(clean_env, fake_gemini.base_url, key=None)
    code, checks = doctor()
    assert code == 1
    assert checks["chat model"]["detail"] == "no API key: set GOOGLE_API_KEY or GEMINI_API_KEY"
    assert not checks["embeddings"]["ok"] and fake_gemini.requests == []


def test_unreachable_base_url(clean_env: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    use_gemini(clean_env, f"http://127.0.0.1:{port}/")
    code, checks = doctor()
    assert code == 1
    for check in checks.values():
        assert check["detail"].startswith(f"cannot reach http://127.0.0.1:{port}/"), check


def test_no_chat_model_is_not_a_failure(clean_env: pytest.MonkeyPatch, fake_openai: Any) -> None:
    use_openai(clean_env, fake_openai)
    clean_env.delenv("CHAT_MODEL")
    code, checks = doctor()
    assert code == 0 and "extractive" in checks["chat model"]["detail"]

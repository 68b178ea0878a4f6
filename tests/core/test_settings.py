"""`.env.example` documents every setting, and its values are valid settings."""

from __future__ import annotations

import re

from core.settings import Settings
from tests.conftest import ROOT


def test_env_example_documents_every_setting() -> None:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    named = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, re.M))
    fields = {(field.alias or name).upper() for name, field in Settings.model_fields.items()}
    assert fields - named == set()


def test_env_example_values_load(tmp_path: object) -> None:
    settings = Settings(_env_file=ROOT / ".env.example")  # type: ignore[call-arg]
    assert settings.auth_mode == "hs256" and settings.personalize_daily_quota == 50
    assert settings.cors_origins == [] and settings.accepted_algorithms == ["HS256"]

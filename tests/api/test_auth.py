"""Bearer-token authentication: hs256 and jwks modes, the secret file, `tutor token`."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import typer
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from api.auth import SECRET_FILE, AuthConfigError, Authenticator, AuthError, mint_token, parse_ttl
from cli.token import token as token_command
from core.settings import Settings, get_settings
from tests.api.jwks import JWKSServer, ec_key, rsa_key, serve_jwks

SECRET = "s3cret-" + "x" * 40


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings with every auth field explicit, so the environment and .env cannot leak in."""
    values: dict[str, Any] = {
        "tutor_home": tmp_path / ".tutor",
        "auth_mode": "hs256",
        "jwt_secret": SECRET,
        "jwks_url": None,
        "jwt_issuer": None,
        "jwt_audience": None,
        "jwt_algorithms": [],
        "jwt_leeway": 30,
    }
    return Settings(_env_file=None, **(values | overrides))  # type: ignore[call-arg]


def claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "alice", "exp": int(time.time()) + 600} | extra


def b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hmac_token(header: dict[str, Any], payload: dict[str, Any], key: bytes) -> str:
    """Signed by hand: pyjwt itself refuses to use a PEM public key as an HMAC secret."""
    signing_input = f"{b64(header)}.{b64(payload)}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


@pytest.fixture
def hs(tmp_path: Path) -> Authenticator:
    return Authenticator.from_settings(settings(tmp_path))


async def test_valid_token_gives_sub(hs: Authenticator) -> None:
    token = jwt.encode(claims(), SECRET, algorithm="HS256")
    assert await hs.authenticate(f"Bearer {token}") == "alice"
    assert await hs.authenticate(f"bearer {token}") == "alice"
    assert await hs.authenticate(f"  BEARER   {token}  ") == "alice"


async def test_no_header_is_anonymous(hs: Authenticator) -> None:
    assert await hs.authenticate(None) is None


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(claims(exp=int(time.time()) - 120), id="expired-beyond-leeway"),
        pytest.param({"sub": "alice"}, id="no-exp"),
        pytest.param({"exp": int(time.time()) + 600}, id="no-sub"),
        pytest.param(claims(sub=""), id="empty-sub"),
        pytest.param(claims(sub=42), id="int-sub"),
        pytest.param(claims(nbf=int(time.time()) + 600), id="not-yet-valid"),
        pytest.param(claims(iat=int(time.time()) + 600), id="issued-in-future"),
        pytest.param(claims(exp="tomorrow"), id="exp-not-a-number"),
    ],
)
async def test_bad_claims_rejected(hs: Authenticator, payload: dict[str, Any]) -> None:
    token = jwt.encode(payload, SECRET, algorithm="HS256")
    with pytest.raises(AuthError):
        await hs.authenticate(f"Bearer {token}")


async def test_expiry_within_leeway_accepted(hs: Authenticator) -> None:
    token = jwt.encode(claims(exp=int(time.time()) - 10), SECRET, algorithm="HS256")
    assert await hs.authenticate(f"Bearer {token}") == "alice"


async def test_signature_and_algorithm_checks(hs: Authenticator) -> None:
    forged = [
        jwt.encode(claims(), "another-secret-" + "y" * 40, algorithm="HS256"),
        jwt.encode(claims(), SECRET + SECRET, algorithm="HS512"),  # not in the accepted list
        f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}.",
        f"{b64({'alg': 'None'})}.{b64(claims())}.",
        hmac_token({"alg": "HS256"}, claims(sub="mallory"), b"wrong"),
    ]
    for token in forged:
        with pytest.raises(AuthError):
            await hs.authenticate(f"Bearer {token}")


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Bearer ", "Bearer abc", "Bearer a.b.c", "Basic dXNlcjpwYXNz", "Token abc", "x" * 100],
)
async def test_malformed_headers_rejected(hs: Authenticator, header: str) -> None:
    with pytest.raises(AuthError):
        await hs.authenticate(header)


async def test_oversized_token_rejected(hs: Authenticator) -> None:
    token = jwt.encode(claims(pad="p" * 20_000), SECRET, algorithm="HS256")
    with pytest.raises(AuthError):
        await hs.authenticate(f"Bearer {token}")


async def test_issuer_and_audience_when_configured(tmp_path: Path) -> None:
    auth = Authenticator.from_settings(settings(tmp_path, jwt_issuer="https://idp", jwt_audience="tutor"))
    good = claims(iss="https://idp", aud="tutor")
    assert await auth.authenticate(f"Bearer {jwt.encode(good, SECRET, algorithm='HS256')}") == "alice"
    in_list = good | {"aud": ["other", "tutor"]}
    assert await auth.authenticate(f"Bearer {jwt.encode(in_list, SECRET, algorithm='HS256')}") == "alice"
    for bad in (
        good | {"iss": "https://evil"},
        good | {"aud": "other"},
        {k: v for k, v in good.items() if k != "iss"},
        {k: v for k, v in good.items() if k != "aud"},
    ):
        with pytest.raises(AuthError):
            await auth.authenticate(f"Bearer {jwt.encode(bad, SECRET, algorithm='HS256')}")


async def test_aud_ignored_when_not_configured(hs: Authenticator) -> None:
    # pyjwt alone would reject this token ("Invalid audience") since no audience was given.
    token = jwt.encode(claims(aud="someone-else", iss="anyone"), SECRET, algorithm="HS256")
    assert await hs.authenticate(f"Bearer {token}") == "alice"


def test_secret_file_created_once_private_and_reused(tmp_path: Path) -> None:
    config = settings(tmp_path, jwt_secret=None)
    first = Authenticator.from_settings(config)
    path = config.tutor_home / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = path.read_text()
    assert len(secret) >= 64
    token = mint_token(config, "bob", 60)
    second = Authenticator.from_settings(config)
    assert path.read_text() == secret
    assert asyncio.run(second.authenticate(f"Bearer {token}")) == "bob"
    assert asyncio.run(first.authenticate(f"Bearer {token}")) == "bob"
    assert os.listdir(config.tutor_home) == [SECRET_FILE]  # no temp files left behind


def test_concurrent_first_starts_agree_on_the_secret(tmp_path: Path) -> None:
    config = settings(tmp_path, jwt_secret=None)
    barrier = threading.Barrier(8)
    tokens: list[str] = []

    def start() -> None:
        barrier.wait()
        tokens.append(mint_token(config, "carol", 60))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    auth = Authenticator.from_settings(config)
    assert all(asyncio.run(auth.authenticate(f"Bearer {t}")) == "carol" for t in tokens)
    assert os.listdir(config.tutor_home) == [SECRET_FILE]


def test_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Authenticator.from_settings(settings(tmp_path, jwt_secret="short"))
    with pytest.raises(ValueError, match="at least 64 bytes"):
        Authenticator.from_settings(settings(tmp_path, jwt_algorithms=["HS512"]))
    home = tmp_path / "weak"
    home.mkdir()
    (home / SECRET_FILE).write_text("tiny")
    with pytest.raises(ValueError, match="jwt_secret is too short"):
        Authenticator.from_settings(settings(tmp_path, tutor_home=home, jwt_secret=None))
    with pytest.raises(ValueError, match="not allowed"):
        Authenticator.from_settings(settings(tmp_path, jwt_algorithms=["HS256", "RS256"]))
    with pytest.raises(ValueError, match="not allowed"):
        Authenticator.from_settings(
            settings(
                tmp_path, auth_mode="jwks", jwks_url="http://127.0.0.1:9/j", jwt_algorithms=["RS256", "HS256"]
            )
        )
    with pytest.raises(ValueError, match="JWKS_URL"):
        Authenticator.from_settings(settings(tmp_path, auth_mode="jwks"))


async def test_mint_token_round_trip(tmp_path: Path) -> None:
    config = settings(tmp_path, jwt_issuer="https://tutor", jwt_audience="widget")
    token = mint_token(config, "dave", 120, extra_claims={"role": "teacher", "sub": "ignored"})
    payload = jwt.decode(token, SECRET, algorithms=["HS256"], audience="widget", issuer="https://tutor")
    assert payload["sub"] == "dave" and payload["role"] == "teacher"
    assert payload["exp"] - payload["iat"] == 120
    assert await Authenticator.from_settings(config).authenticate(f"Bearer {token}") == "dave"
    with pytest.raises(ValueError):
        mint_token(config, "dave", 0)
    with pytest.raises(ValueError):
        mint_token(config, " ", 60)
    with pytest.raises(AuthConfigError, match="identity provider"):
        mint_token(settings(tmp_path, auth_mode="jwks", jwks_url="http://127.0.0.1:9/j"), "dave", 60)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("1h", 3600), ("7d", 604800), ("3600", 3600), (" 2H ", 7200)],
)
def test_parse_ttl(text: str, seconds: int) -> None:
    assert parse_ttl(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "0s", "-5", "1.5h", "h", "10w", "1h30m", "abc"])
def test_parse_ttl_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid ttl"):
        parse_ttl(text)


# --- jwks mode -------------------------------------------------------------------------------------


@pytest.fixture
def idp() -> Iterator[JWKSServer]:
    with serve_jwks() as server:
        server.add("rsa-1", rsa_key("a"))
        server.add("ec-1", ec_key("a"))
        yield server


def jwks_auth(tmp_path: Path, url: str, **kwargs: float) -> Authenticator:
    return Authenticator.from_settings(
        settings(tmp_path, auth_mode="jwks", jwks_url=url, jwt_secret=None), **kwargs
    )


async def test_jwks_valid_rsa_and_ec_tokens(tmp_path: Path, idp: JWKSServer) -> None:
    auth = jwks_auth(tmp_path, idp.url)
    assert await auth.authenticate(f"Bearer {idp.sign(claims(), 'rsa-1')}") == "alice"
    assert await auth.authenticate(f"Bearer {idp.sign(claims(sub='erin'), 'ec-1')}") == "erin"
    assert idp.hits == 1  # the key set is fetched once and cached


async def test_jwks_forgeries_rejected(tmp_path: Path, idp: JWKSServer) -> None:
    auth = jwks_auth(tmp_path, idp.url)
    public_pem = (
        rsa_key("a")
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    forged = [
        # HS256 with the RSA public key (which anyone can download) as the HMAC secret.
        hmac_token({"alg": "HS256", "kid": "rsa-1"}, claims(sub="mallory"), public_pem),
        f"{b64({'alg': 'none', 'kid': 'rsa-1'})}.{b64(claims())}.",
        idp.sign(claims(), "rsa-1", key=rsa_key("other")),  # right kid, wrong private key
        idp.sign(claims(), "ec-1", key=rsa_key("a")),  # RS256 token naming the EC key
        idp.sign({"sub": "alice"}, "rsa-1"),  # no exp
        jwt.encode(claims(), rsa_key("a"), algorithm="RS256"),  # no kid
        f"{b64({'alg': 'RS256', 'kid': ['rsa-1']})}.{b64(claims())}.c2ln",  # unhashable kid
    ]
    for token in forged:
        with pytest.raises(AuthError):
            await auth.authenticate(f"Bearer {token}")
    assert await auth.authenticate(f"Bearer {idp.sign(claims(), 'rsa-1')}") == "alice"
    assert idp.hits == 1  # none of the forgeries caused an extra fetch


async def test_unknown_kids_cannot_stampede_the_idp(tmp_path: Path, idp: JWKSServer) -> None:
    auth = jwks_auth(tmp_path, idp.url, jwks_min_interval=5.0)
    tokens = [idp.sign(claims(), f"nope-{i}", key=rsa_key("a")) for i in range(60)]
    results = await asyncio.gather(
        *(auth.authenticate(f"Bearer {t}") for t in tokens), return_exceptions=True
    )
    assert all(isinstance(r, AuthError) for r in results)
    assert 1 <= idp.hits <= 2
    results = await asyncio.gather(
        *(auth.authenticate(f"Bearer {t}") for t in tokens), return_exceptions=True
    )
    assert all(isinstance(r, AuthError) for r in results)
    assert idp.hits <= 2


async def test_rotated_key_picked_up_after_min_interval(tmp_path: Path, idp: JWKSServer) -> None:
    auth = jwks_auth(tmp_path, idp.url, jwks_min_interval=0.5)
    assert await auth.authenticate(f"Bearer {idp.sign(claims(), 'rsa-1')}") == "alice"
    idp.add("rsa-2", rsa_key("b"))
    rotated = f"Bearer {idp.sign(claims(sub='frank'), 'rsa-2')}"
    with pytest.raises(AuthError):
        await auth.authenticate(rotated)  # fetched moments ago: not asked again yet
    assert idp.hits == 1
    await asyncio.sleep(0.6)
    assert await auth.authenticate(rotated) == "frank"
    assert idp.hits == 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_jwks_down_fails_fast(tmp_path: Path) -> None:
    auth = jwks_auth(tmp_path, f"http://127.0.0.1:{free_port()}/jwks.json")
    token = jwt.encode(claims(), rsa_key("a"), algorithm="RS256", headers={"kid": "rsa-1"})
    started = time.monotonic()
    for _ in range(3):
        with pytest.raises(AuthError, match="signing keys unavailable"):
            await auth.authenticate(f"Bearer {token}")
    assert time.monotonic() - started < 2


async def test_jwks_hanging_server_times_out(tmp_path: Path, idp: JWKSServer) -> None:
    idp.delay = 10
    auth = jwks_auth(tmp_path, idp.url, jwks_timeout=0.5)
    token = f"Bearer {idp.sign(claims(), 'rsa-1')}"
    started = time.monotonic()
    with pytest.raises(AuthError):
        await auth.authenticate(token)
    assert time.monotonic() - started < 2
    started = time.monotonic()
    with pytest.raises(AuthError):  # failed attempts are spaced too: this one does not wait again
        await auth.authenticate(token)
    assert time.monotonic() - started < 0.3
    assert idp.hits == 1


async def test_jwks_bad_answer_is_an_auth_error(tmp_path: Path, idp: JWKSServer) -> None:
    idp.body = b"<html>not json"
    auth = jwks_auth(tmp_path, idp.url)
    with pytest.raises(AuthError):
        await auth.authenticate(f"Bearer {idp.sign(claims(), 'rsa-1')}")


async def test_known_key_served_from_cache_while_idp_down(tmp_path: Path) -> None:
    with serve_jwks() as idp:
        idp.add("rsa-1", rsa_key("a"))
        auth = jwks_auth(tmp_path, idp.url)
        token = f"Bearer {idp.sign(claims(), 'rsa-1')}"
        assert await auth.authenticate(token) == "alice"
    assert await auth.authenticate(token) == "alice"


async def test_jwks_fetch_does_not_block_the_event_loop(tmp_path: Path, idp: JWKSServer) -> None:
    idp.delay = 1.0
    auth = jwks_auth(tmp_path, idp.url)
    gaps: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        last = time.monotonic()
        while not done.is_set():
            await asyncio.sleep(0.02)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    try:
        assert await auth.authenticate(f"Bearer {idp.sign(claims(), 'rsa-1')}") == "alice"
    finally:
        done.set()
        await ticker
    assert len(gaps) >= 20 and max(gaps) < 0.5


# --- tutor token -----------------------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    monkeypatch.chdir(tmp_path)  # no .env from the checkout
    for name in ("JWT_SECRET", "JWT_ISSUER", "JWT_AUDIENCE", "JWT_ALGORITHMS", "AUTH_MODE", "JWKS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TUTOR_HOME", str(tmp_path / ".tutor"))
    get_settings.cache_clear()
    app = typer.Typer()
    app.command()(token_command)
    yield app
    get_settings.cache_clear()


async def test_cli_prints_only_a_verifiable_token(cli: typer.Typer) -> None:
    result = CliRunner().invoke(cli, ["--sub", "alice", "--ttl", "15m"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert result.stdout == token + "\n" and token.count(".") == 2
    auth = Authenticator.from_settings(get_settings())
    assert await auth.authenticate(f"Bearer {token}") == "alice"
    payload = jwt.decode(token, options={"verify_signature": False})
    assert payload["exp"] - payload["iat"] == 900


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--sub", "alice", "--ttl", "soon"], {}, "invalid ttl"),
        (["--sub", "alice"], {"AUTH_MODE": "jwks", "JWKS_URL": "http://127.0.0.1:9/j"}, "identity provider"),
        (["--sub", "alice"], {"JWT_SECRET": "short"}, "at least 32 bytes"),
    ],
)
def test_cli_errors_exit_2(
    cli: typer.Typer, monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr

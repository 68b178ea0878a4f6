"""Bearer-token authentication: HS256 with a shared secret, or keys from an identity provider's JWKS."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import jwt

from core.settings import Settings

log = logging.getLogger(__name__)

SECRET_FILE = "jwt_secret"
JWKS_LIFESPAN = 300.0  # seconds a fetched key set is trusted before it is fetched again
MAX_TOKEN_CHARS = 16_384  # far above any real JWT; stops giant headers from being parsed at all
_HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}  # RFC 7518 §3.2: key >= hash size
_TTL = re.compile(r"(\d+)([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class AuthError(Exception):
    """A request's credentials were rejected; the message names the reason, never the token."""


class AuthConfigError(ValueError):
    """The authentication settings cannot work (raised at start-up, not per request)."""


class _JWKSClient(jwt.PyJWKClient):
    """PyJWKClient with one network attempt per `min_interval`, failed attempts included.

    pyjwt's own cooldown only starts after a *successful* fetch: with the provider down, every
    request would try again (and wait for the timeout). Here the attempts themselves are spaced,
    and malformed answers become PyJWKClientError instead of escaping as ValueError.
    """

    def __init__(self, uri: str, *, timeout: float, min_interval: float) -> None:
        super().__init__(
            uri, cache_keys=True, lifespan=JWKS_LIFESPAN, timeout=timeout, cooldown_duration=min_interval
        )
        self._min_interval = min_interval
        self._last_attempt: float | None = None
        self._attempt_lock = threading.Lock()

    def fetch_data(self) -> Any:
        with self._attempt_lock:
            now = time.monotonic()
            if self._last_attempt is not None and now - self._last_attempt < self._min_interval:
                raise jwt.PyJWKClientConnectionError("JWKS fetched moments ago; not asking again yet")
            self._last_attempt = now
        try:
            return super().fetch_data()
        except (jwt.PyJWTError, ValueError, OSError) as exc:
            log.warning("JWKS fetch from %s failed: %s", self.uri, type(exc).__name__)
            if isinstance(exc, jwt.PyJWTError):
                raise
            raise jwt.PyJWKClientConnectionError(f"bad JWKS answer: {type(exc).__name__}") from exc


class Authenticator:
    """Turns an `Authorization` header into a verified user id (`sub`)."""

    def __init__(
        self,
        *,
        algorithms: list[str],
        leeway: int,
        secret: str | None = None,
        jwks: jwt.PyJWKClient | None = None,
        issuer: str | None = None,
        audience: str | None = None,
    ) -> None:
        if (secret is None) == (jwks is None):
            raise AuthConfigError("give exactly one of a secret (hs256) or a JWKS client (jwks)")
        _check_algorithms(algorithms, symmetric=secret is not None)
        if secret is not None:
            _check_secret(secret, algorithms, "JWT_SECRET")
        self.algorithms = list(algorithms)
        self._secret = secret or ""
        self._jwks = jwks
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway

    @classmethod
    def from_settings(
        cls, settings: Settings, *, jwks_timeout: float = 3.0, jwks_min_interval: float = 5.0
    ) -> Authenticator:
        """The authenticator the settings describe: HS256 with `JWT_SECRET`, or keys from `JWKS_URL`."""
        common: dict[str, Any] = {
            "algorithms": settings.accepted_algorithms,
            "leeway": settings.jwt_leeway,
            "issuer": settings.jwt_issuer,
            "audience": settings.jwt_audience,
        }
        if settings.auth_mode == "hs256":
            return cls(secret=hs256_secret(settings), **common)
        if not settings.jwks_url:
            raise AuthConfigError("AUTH_MODE=jwks needs JWKS_URL (the identity provider's key set)")
        jwks = _JWKSClient(settings.jwks_url, timeout=jwks_timeout, min_interval=jwks_min_interval)
        return cls(jwks=jwks, **common)

    async def authenticate(self, authorization: str | None) -> str | None:
        """None without a header (anonymous); the token's `sub` when valid; AuthError otherwise."""
        if authorization is None:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS:
            raise AuthError("expected 'Authorization: Bearer <token>'")
        try:
            key: str | jwt.PyJWK = self._secret if self._jwks is None else await self._signing_key(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options={
                    "require": ["exp", "sub"],
                    # pyjwt rejects any token carrying `aud` when no audience is expected; an
                    # unconfigured audience means "don't check", so verification is switched off.
                    "verify_aud": self._audience is not None,
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.PyJWKClientConnectionError as exc:
            raise AuthError("signing keys unavailable") from exc
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token ({type(exc).__name__})") from exc
        sub = claims["sub"]
        if not isinstance(sub, str) or not sub.strip():  # `require` lets "" through
            raise AuthError("invalid token (empty sub)")
        return sub

    async def _signing_key(self, token: str) -> jwt.PyJWK:
        assert self._jwks is not None
        header = jwt.get_unverified_header(token)
        # Checked before any key lookup so junk tokens never cause a JWKS fetch (and an unhashable
        # kid never reaches pyjwt's lru_cache, which would raise TypeError).
        if header.get("alg") not in self.algorithms:
            raise jwt.InvalidAlgorithmError("algorithm not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise jwt.InvalidTokenError("no kid")
        # urllib blocks: the lookup (a network fetch on a cache miss) runs in a worker thread.
        return await asyncio.to_thread(self._jwks.get_signing_key, kid)


def hs256_secret(settings: Settings) -> str:
    """JWT_SECRET, else the secret in TUTOR_HOME/jwt_secret (created on first use)."""
    source, secret = "JWT_SECRET", settings.jwt_secret
    if not secret:
        path = settings.tutor_home / SECRET_FILE
        if not path.exists():
            _create_secret(path)
        source, secret = str(path), path.read_text(encoding="utf-8").strip()
    _check_secret(secret, settings.accepted_algorithms, source)
    return secret


def _create_secret(path: Path) -> None:
    # Written in full to a private temp file, then hard-linked into place: the link fails if another
    # process got there first, so every process ends up reading the same, complete secret.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(secrets.token_urlsafe(48))
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _check_algorithms(algorithms: list[str], *, symmetric: bool) -> None:
    # Never mix HS* with asymmetric algorithms: a public key used as an HMAC secret forges tokens.
    if not algorithms:
        raise AuthConfigError("JWT_ALGORITHMS is empty")
    bad = [alg for alg in algorithms if (alg in _HMAC_MIN_BYTES) != symmetric or alg.lower() == "none"]
    if bad:
        mode, expected = ("hs256", "HS256/HS384/HS512") if symmetric else ("jwks", "RS*/PS*/ES*/EdDSA")
        raise AuthConfigError(f"JWT_ALGORITHMS {bad} not allowed with AUTH_MODE={mode} (use {expected})")


def _check_secret(secret: str, algorithms: list[str], source: str) -> None:
    need = max(_HMAC_MIN_BYTES.get(alg, 32) for alg in algorithms)
    if len(secret.encode()) < need:
        raise AuthConfigError(f"{source} is too short: at least {need} bytes are needed")


def mint_token(
    settings: Settings, sub: str, ttl_seconds: int, extra_claims: dict[str, Any] | None = None
) -> str:
    """A signed dev token for `sub` (hs256 mode only: in jwks mode the identity provider issues them)."""
    if settings.auth_mode != "hs256":
        raise AuthConfigError("AUTH_MODE=jwks: tokens come from the identity provider, not `tutor token`")
    if not sub.strip():
        raise ValueError("sub must not be empty")
    if ttl_seconds <= 0:
        raise ValueError("ttl must be positive")
    algorithm = "HS256" if "HS256" in settings.accepted_algorithms else settings.accepted_algorithms[0]
    _check_algorithms([algorithm], symmetric=True)
    now = int(time.time())
    claims: dict[str, Any] = {**(extra_claims or {}), "sub": sub, "iat": now, "exp": now + ttl_seconds}
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, hs256_secret(settings), algorithm=algorithm)


def parse_ttl(text: str) -> int:
    """Seconds from "90s", "15m", "1h", "7d" or a plain number of seconds."""
    match = _TTL.fullmatch(text.strip().lower())
    seconds = int(match[1]) * _UNITS[match[2]] if match else 0
    if seconds <= 0:
        raise ValueError(f"invalid ttl {text!r}: use a positive number with s, m, h or d (e.g. 15m, 1h)")
    return seconds

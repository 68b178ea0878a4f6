"""A real JWKS endpoint on 127.0.0.1 for the auth tests: keys can be added, delayed or broken."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm


@cache
def rsa_key(name: str = "a") -> rsa.RSAPrivateKey:
    """RSA keys are slow to generate: one per name for the whole session."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def ec_key(name: str = "a") -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@dataclass
class JWKSServer:
    url: str = ""
    keys: dict[str, Any] = field(default_factory=dict)  # kid -> private key
    hits: int = 0
    delay: float = 0.0
    body: bytes | None = None  # when set, served instead of the key set (to break the answer)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kid: str, key: Any) -> None:
        with self.lock:
            self.keys[kid] = key

    def jwks(self) -> bytes:
        entries = []
        for kid, key in self.keys.items():
            if isinstance(key, rsa.RSAPrivateKey):
                jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True) | {"alg": "RS256"}
            else:
                jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True) | {"alg": "ES256"}
            entries.append(jwk | {"kid": kid, "use": "sig"})
        return json.dumps({"keys": entries}).encode()

    def sign(self, claims: dict[str, Any], kid: str, key: Any | None = None) -> str:
        """A token for `kid`, signed with its key (or another `key`, to forge one)."""
        key = key or self.keys[kid]
        alg = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


@contextmanager
def serve_jwks() -> Iterator[JWKSServer]:
    """Run a JWKS server in a thread for the duration of the block."""
    state = JWKSServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with state.lock:
                state.hits += 1
                body = state.body if state.body is not None else state.jwks()
            time.sleep(state.delay)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)

"""All configuration, in one place.

Every setting is an environment variable (or a line in `.env`) with the same name in upper case;
`.env.example` documents each one. Nothing needs to be set for a laptop run: the defaults give an
embedded Postgres, the book's vectors (`VECTOR_STORE`) and the local embedding model, all under
`TUTOR_HOME`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting of the tutor, from the environment or `.env` (see `.env.example`)."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # --- local state -------------------------------------------------------------------------------
    tutor_home: Path = Field(
        default=Path(".tutor"),
        description="Folder for all local state: embedded Postgres, embedded Qdrant, built models.",
    )

    models_dir_override: Path | None = Field(
        default=None,
        alias="models_dir",
        description="Where built model files are cached (default TUTOR_HOME/models).",
    )

    # --- Postgres ----------------------------------------------------------------------------------
    database_url: str | None = Field(
        default=None,
        description="Postgres URL (any Postgres >= 14, e.g. Neon). Unset: embedded server under TUTOR_HOME.",
    )
    db_pool_min_size: int = Field(default=1, ge=0)
    db_pool_max_size: int = Field(default=20, ge=1)
    db_pool_timeout: float = Field(
        default=3.0,
        gt=0,
        description="Seconds a request waits for a database connection; then 503 database_unavailable "
        "(what a request gets while Postgres is down).",
    )

    # --- vector store ------------------------------------------------------------------------------
    vector_store: Literal["qdrant", "pgvector"] = Field(
        default="pgvector",
        description="Where the book's vectors live: pgvector (tables in the same Postgres: one service, "
        "several `tutor serve` workers on embedded defaults) or qdrant (embedded local mode, one process; "
        "or a server/cluster at QDRANT_URL, the path for large deployments).",
    )
    qdrant_url: str | None = Field(
        default=None, description="Qdrant server or cluster URL. Unset: local mode under TUTOR_HOME/qdrant."
    )
    qdrant_api_key: str | None = None
    qdrant_collection: str = Field(
        default="book",
        description="The book's collection: Qdrant collection name, or pgvector table prefix (vec_book...).",
    )

    # --- the book ----------------------------------------------------------------------------------
    book_path: Path = Field(default=Path("book/docs"), description="Docusaurus docs folder to index.")
    book_base_url: str = Field(
        default="http://localhost:3000", description="Site root used to build deep links to sections."
    )
    book_docs_route: str = Field(default="docs", description="Docusaurus routeBasePath of the docs plugin.")
    chunk_size: int = Field(default=1000, ge=100, description="Target chunk size in characters.")
    chunk_overlap: int = Field(default=150, ge=0, description="Characters of prose repeated between chunks.")

    # --- embeddings and retrieval ------------------------------------------------------------------
    embeddings: str = Field(
        default="local",
        description="'local' (all-MiniLM-L6-v2, offline) or provider:model for init_embeddings, "
        "e.g. openai:text-embedding-3-small or google_genai:models/gemini-embedding-001.",
    )
    local_embedding_precision: Literal["fp32", "int8"] = Field(
        default="int8", description="Weights of the local model: int8 is ~2x faster, fp32 is exact."
    )
    hybrid_fusion: Literal["zscore", "rrf", "dbsf"] = Field(
        default="zscore",
        description="How hybrid search combines its legs: zscore (each leg's scores standardized "
        "against the whole collection, then weighted; at least as good as any single leg on both "
        "of the sample book's question sets) or Qdrant's rank fusion rrf / score fusion dbsf.",
    )
    sentence_vectors: bool = Field(
        default=True,
        description="Also embed every sentence of the book and search them as a third hybrid leg "
        "(sample-book Recall@5 0.74 -> 0.80; twice the embedding work at ingest). Applies when "
        "a collection is built: change it with `tutor ingest PATH --recreate`.",
    )
    search_k: int = Field(default=5, ge=1, le=100, description="Passages returned by a search.")

    # --- chat model and the tutor --------------------------------------------------------------------
    chat_model: str | None = Field(
        default=None,
        description="provider:model for init_chat_model, e.g. openai:gpt-4o-mini or "
        "google_genai:gemini-2.5-flash. Unset: extractive answers, no personalize/translate.",
    )
    openai_base_url: str | None = Field(
        default=None, description="Any OpenAI-compatible endpoint (Gemini's included) for openai: models."
    )
    google_base_url: str | None = Field(
        default=None,
        description="Another endpoint (gateway, proxy, test server) speaking the Gemini Developer API, "
        "for google_genai: chat models and embeddings.",
    )
    llm_timeout: float = Field(default=60.0, gt=0, description="Seconds before a model call is abandoned.")
    llm_max_retries: int = Field(default=3, ge=0, description="Retries (with backoff) on 429/5xx/timeouts.")
    llm_stall_timeout: float = Field(
        default=120.0,
        ge=0,
        description="Seconds an `openai:` model's streamed reply may go without content (keep-alives do not "
        "count) before it is abandoned as a model timeout; 0 turns the guard off.",
    )
    relevance_floor: float = Field(
        default=0.3,
        description="Cosine similarity the best passage must reach, else the tutor says the book does not "
        "cover the question (tuned for the local model; hosted models may want another value).",
    )
    selection_support_floor: float = Field(
        default=0.47,
        description="Without a chat model: the score (cosine + word overlap) the selection's best sentence "
        "must reach for the question, else the tutor says the selected text does not cover it "
        "(tuned on book/selections.jsonl: `tutor eval --selections`).",
    )
    window_messages: int = Field(default=10, ge=2, description="Messages of history the model sees.")
    glossary_path: Path = Field(
        default=Path("book/glossary.txt"), description="Technical terms kept intact by translation."
    )

    # --- the service (tutor serve) ---------------------------------------------------------------------
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser, comma-separated "
        "(e.g. the book's site: http://localhost:3000). Empty: no cross-origin access.",
    )
    playground_enabled: bool = Field(
        default=True, description="Serve LangServe's playground at /tutor/playground/."
    )
    ingest_on_start: bool = Field(
        default=True,
        description="`tutor serve` indexes BOOK_PATH on start (incremental: fast when unchanged).",
    )
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto",
        description="`tutor serve`'s log lines: `text` (short, for people), `json` (one object a line, "
        "for collectors), `auto` (text on a terminal, else JSON).",
    )
    max_body_bytes: int = Field(default=1_000_000, ge=1024, description="Larger request bodies get 413.")
    sse_keepalive_seconds: float = Field(
        default=15.0, gt=0, description="Keep-alive comment interval on streams."
    )
    thread_busy_wait: float = Field(
        default=10.0, ge=0, description="Seconds a turn waits for another turn on the same thread, then 409."
    )
    turn_lease_seconds: float = Field(
        default=15.0,
        ge=1,
        description="A running turn's hold on its thread, renewed every third of it while the turn "
        "runs: a server that dies mid-turn leaves the thread locked for at most this long.",
    )
    turn_concurrency: int = Field(
        default=32,
        ge=0,
        description="Turns (anything that runs the graph or calls a model) one worker process runs at "
        "once when a chat model answers; they mostly wait for tokens. More wait in arrival order "
        "(api.admission). 0: no bound.",
    )
    extractive_turn_concurrency: int = Field(
        default=4,
        ge=0,
        description="The same bound without a chat model: extractive turns are mostly CPU, so a few "
        "at once keep a core busy (covering their waits on Postgres) and finish them in arrival "
        "order. 0: no bound.",
    )
    turn_queue: int = Field(
        default=200,
        ge=0,
        description="Turns that may wait for a place per worker; one more gets 503 server_busy with "
        "Retry-After at once.",
    )
    turn_queue_wait_seconds: float = Field(
        default=20.0,
        gt=0,
        description="Longest a turn waits for a place, then 503 server_busy with Retry-After (below "
        "the usual 30 s client timeout, so a reader hears why).",
    )
    token_event_interval: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Seconds between `token` events of a streamed answer: the first goes out at once, "
        "text arriving sooner after an event is joined into the next (each event is a write to the "
        "reader's socket). 0: one event per model token.",
    )
    personalize_daily_quota: int = Field(default=50, ge=0, description="Personalize calls per user per day.")
    translate_daily_quota: int = Field(default=100, ge=0, description="Translate calls per user per day.")
    anonymous_turn_limit: int = Field(
        default=300,
        ge=0,
        description="Turns an anonymous client address may start per window (0: no limit). High on "
        "purpose: a whole class may sit behind one school NAT address.",
    )
    anonymous_turn_window_seconds: int = Field(
        default=60, ge=1, description="Length of the anonymous rate-limit window, seconds."
    )
    concurrent_turns_per_user: int = Field(
        default=4, ge=0, description="Turns (streams included) a signed-in user may run at once (0: no cap)."
    )
    concurrent_turns_per_anonymous_client: int = Field(
        default=60,
        ge=0,
        description="Turns anonymous readers behind one address may run at once (0: no cap).",
    )
    trusted_proxy_header: str | None = Field(
        default=None,
        description="Header your reverse proxies set with the client address (e.g. X-Forwarded-For). "
        "Unset: the socket peer is the client, and such headers are ignored.",
    )
    trusted_proxy_hops: int = Field(
        default=1,
        ge=1,
        description="How many proxies of yours append to TRUSTED_PROXY_HEADER: the client is that "
        "many entries from the right.",
    )

    # --- authentication --------------------------------------------------------------------------------
    auth_mode: Literal["hs256", "jwks"] = Field(
        default="hs256",
        description="hs256: tokens signed with JWT_SECRET; jwks: verified with JWKS_URL's keys.",
    )
    jwt_secret: str | None = Field(
        default=None,
        description="HS256 secret (at least 32 bytes). Unset: a random one is created in "
        "TUTOR_HOME/jwt_secret, so `tutor token` works on a laptop; set it for anything shared.",
    )
    jwks_url: str | None = Field(
        default=None, description="JWKS endpoint of the identity provider (jwks mode)."
    )
    jwt_issuer: str | None = Field(default=None, description="Required `iss` claim, when set.")
    jwt_audience: str | None = Field(default=None, description="Required `aud` claim, when set.")
    jwt_algorithms: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Accepted signing algorithms, comma-separated (default HS256 in hs256 mode, RS256,ES256 "
        "in jwks mode). Never taken from the token.",
    )
    jwt_leeway: int = Field(
        default=30, ge=0, le=60, description="Clock skew tolerated on exp/nbf/iat, seconds."
    )
    allow_anonymous: bool = Field(
        default=True, description="Chat without a token (threads then belong to whoever holds their id)."
    )

    @field_validator("cors_origins", "jwt_algorithms", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("book_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def qdrant_path(self) -> Path:
        """Folder of the embedded Qdrant."""
        return self.tutor_home / "qdrant"

    @property
    def postgres_dir(self) -> Path:
        """Folder of the embedded Postgres."""
        return self.tutor_home / "postgres"

    @property
    def accepted_algorithms(self) -> list[str]:
        """JWT algorithms accepted: `JWT_ALGORITHMS`, else the mode's default."""
        if self.jwt_algorithms:
            return self.jwt_algorithms
        return ["HS256"] if self.auth_mode == "hs256" else ["RS256", "ES256"]

    @property
    def models_dir(self) -> Path:
        """Folder of the built ONNX models."""
        return self.models_dir_override or self.tutor_home / "models"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests build their own `Settings(...)` instead)."""
    return Settings()

"""Failures a user can fix: the CLI prints their message, never a traceback."""

from pydantic import ValidationError

from core.db import DatabaseUnavailable
from core.embeddings.local import ModelIntegrityError
from core.index import IndexMismatch, IndexNotReady, VectorStoreLocked
from core.vector_backends.pgvector import VectorExtensionMissing
from graphs.nodes.intake import InvalidTurn
from graphs.rewrite_policy import RewriteRefused
from ingest.evaluate import BadQuestions
from ingest.loader import BookError

USER_ERRORS: tuple[type[Exception], ...] = (
    BookError,
    DatabaseUnavailable,
    IndexMismatch,
    IndexNotReady,
    ModelIntegrityError,
    VectorStoreLocked,
    VectorExtensionMissing,
    BadQuestions,
    InvalidTurn,
    RewriteRefused,
    ValidationError,
    FileNotFoundError,
)

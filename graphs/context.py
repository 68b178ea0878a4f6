"""What the nodes work with besides the state.

- `TutorServices`: the process's shared resources (retriever, models, database), built once and
  bound into the graph by `build_graph`. Never part of the state, never from a client.
- `ServerContext`: who is asking, in which thread, with which learner profile. The server puts these
  in the run's `configurable` (the API from the request's token and headers, overwriting whatever a
  client sent; the CLI from its flags); they are never read from the graph input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig

from chains.retriever import BookRetriever
from core.db import Database
from core.profile import LearnerProfile
from core.settings import Settings


@dataclass
class TutorServices:
    """The process's shared resources the nodes use, bound into the graph by `build_graph`."""

    settings: Settings
    db: Database
    retriever: BookRetriever
    embeddings: Embeddings  # the index's model: extractive answers rank sentences with it
    chat_model: BaseChatModel | None  # None: extractive mode
    glossary: tuple[str, ...] = ()
    checkpointer: Any = field(default=None, repr=False)  # set by build_graph; pruned after each turn

    @cached_property
    def quiet_model(self) -> BaseChatModel | None:
        """The chat model for calls whose tokens no reader sees, asked for the whole reply at once.

        The same model and client, for the classifier, the query rewrite, the selection judgement,
        titles and summaries. Under LangGraph's `messages` stream a chat model otherwise streams
        every call, and relaying a token costs CPU (bench/api_stream.py) for text nobody is shown.
        """
        if self.chat_model is None:
            return None
        return self.chat_model.model_copy(update={"disable_streaming": True})

    @property
    def namespace(self) -> str:
        """The index's namespace (one per collection and embedding model)."""
        return self.retriever.index.namespace


@dataclass(frozen=True)
class ServerContext:
    """Who is asking, in which thread, with which learner profile: server-set, never from input."""

    thread_id: str
    user_id: str | None = None
    profile: LearnerProfile | None = None
    new_thread: bool = False  # this turn created the thread: it has no checkpoints to prune yet

    @classmethod
    def from_config(cls, config: RunnableConfig) -> ServerContext:
        """The context the server put in the run's `configurable`."""
        configurable = config.get("configurable") or {}
        thread_id = configurable.get("thread_id")
        if not thread_id:
            raise ValueError("the run has no thread_id in its configurable")
        profile = configurable.get("profile")
        if isinstance(profile, dict):
            profile = LearnerProfile.model_validate(profile)
        return cls(
            thread_id=str(thread_id),
            user_id=configurable.get("user_id"),
            profile=profile,
            new_thread=configurable.get("new_thread") is True,
        )


def run_config(
    thread_id: str,
    user_id: str | None = None,
    profile: LearnerProfile | dict[str, Any] | None = None,
    *,
    new_thread: bool = False,
) -> RunnableConfig:
    """The config a trusted caller (CLI, API) runs a turn with; `new_thread`: the caller just created it."""
    if isinstance(profile, LearnerProfile):
        profile = profile.model_dump(exclude_none=True)
    configurable = {"thread_id": thread_id, "user_id": user_id, "profile": profile, "new_thread": new_thread}
    return {"configurable": configurable}

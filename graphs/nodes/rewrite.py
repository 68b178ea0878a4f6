"""The personalize and translate routes: rewrite a subject for the reader, keeping code and facts.

Who may, what the subject is, the language, the quota and the cache are all decided by
`graphs.rewrite_policy` (the same policy `POST /personalize` and `POST /translate` use). A refusal
raises `RewriteRefused` out of the run: the turn stops before `remember`, so it leaves nothing in
the transcript.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig

from graphs import rewrite_policy as policy
from graphs.context import ServerContext, TutorServices
from graphs.state import TutorState


async def personalize(
    state: TutorState, config: RunnableConfig, *, services: TutorServices
) -> dict[str, Any]:
    """Personalize the subject for the reader's profile, under the rewrite policy."""
    return await _rewrite("personalize", state, config, services)


async def translate(state: TutorState, config: RunnableConfig, *, services: TutorServices) -> dict[str, Any]:
    """Translate the subject into the target language, under the rewrite policy."""
    return await _rewrite("translate", state, config, services)


async def _rewrite(
    action: policy.Action, state: TutorState, config: RunnableConfig, services: TutorServices
) -> dict[str, Any]:
    context = ServerContext.from_config(config)
    # The cheap rules first: a refused turn must not even reassemble a chapter.
    await policy.check(services, action, context.user_id, context.profile)
    last_answer = next(
        (str(m.content) for m in reversed(state.get("messages", [])) if isinstance(m, AIMessage)), None
    )
    subject = await policy.find_subject(
        services,
        action,
        content=state.get("content"),
        selected_text=state.get("selected_text"),
        last_answer=last_answer,
        page=state.get("page"),
    )
    result = await policy.rewrite(
        services,
        action,
        subject,
        user=context.user_id,
        profile=context.profile,
        language=state.get("target_language"),
        config=config,
    )
    return {"answer": result.text, "language": result.language}

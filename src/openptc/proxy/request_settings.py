"""What a client's request says about sampling, as the backend's ``ModelSettings``.

``thinking``, ``output_config.effort``, ``temperature``, ``top_p``, ``top_k``,
``stop_sequences`` and ``metadata.user_id`` are passed on; each backend adapter says them in its
API's words, or refuses one it has no equivalent for (the client then gets a 400 naming it).

Prompt caching follows the client, as the Messages API does: a request that marks anything with
``cache_control`` (a system block, a tool, a message block, or the top-level field) has the
backend cache its stable prefix (system, tools, the conversation so far — the adapter places the
markers, since the backend's view of the request is not the client's); a request that marks
nothing is not cached, so it never pays for cache writes it did not ask for.
"""

from __future__ import annotations

from typing import Any

from openptc.models.settings import Effort, ModelSettings, Reasoning
from openptc.proxy.errors import invalid
from openptc.proxy.wire import (
    MessagesRequest,
    ThinkingAdaptive,
    ThinkingEnabled,
    ToolResultContent,
)

# The Messages API's efforts as openptc's: its default is "high", and "xhigh"/"max" go past it.
EFFORT: dict[str, Effort] = {
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
    "max": "high",
}
BUDGET_OVER_MAX_TOKENS = (
    "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
    "documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
    "#max-tokens-and-context-window-size"
)


def reasoning(request: MessagesRequest) -> Reasoning | None:
    """``enabled`` is its budget; ``adaptive`` is an effort (``output_config.effort``, "high"
    when unsaid); ``disabled``, ``between_tools`` or nothing leave the backend's default."""
    thinking = request.thinking
    if isinstance(thinking, ThinkingEnabled):
        if thinking.budget_tokens >= request.max_tokens:
            raise invalid(BUDGET_OVER_MAX_TOKENS)
        return Reasoning(budget_tokens=thinking.budget_tokens)
    if isinstance(thinking, ThinkingAdaptive):
        effort = request.output_config.effort if request.output_config else None
        return Reasoning(effort=EFFORT[effort or "high"])
    return None


def backend_max_tokens(request: MessagesRequest) -> int:
    """The client's ``max_tokens`` holds its thinking budget; the backend request's is the room
    for the answer, the budget on top (``Reasoning``), so the total is what the client said."""
    if isinstance(request.thinking, ThinkingEnabled):
        return request.max_tokens - request.thinking.budget_tokens
    return request.max_tokens


def _marked(item: Any) -> bool:
    extra = getattr(item, "model_extra", None) or {}
    return extra.get("cache_control") is not None


def asks_for_cache(request: MessagesRequest) -> bool:
    """Whether the client marked anything for the prompt cache."""
    if request.cache_control is not None:
        return True
    items: list[Any] = [*(request.tools or ())]
    if not isinstance(request.system, str | None):
        items += request.system
    for message in request.messages:
        for block in message.blocks():
            items.append(block)
            if isinstance(block, ToolResultContent) and isinstance(block.content, list):
                items += block.content
    return any(_marked(item) for item in items)


def backend_settings(request: MessagesRequest) -> ModelSettings:
    """The request's settings for the backend; a thinking budget over ``max_tokens`` is a 400
    in the API's words."""
    return ModelSettings(
        reasoning=reasoning(request),
        cache=asks_for_cache(request),
        temperature=request.temperature,
        top_p=request.top_p,
        top_k=request.top_k,
        stop_sequences=tuple(request.stop_sequences or ()),
        user=request.metadata.user_id if request.metadata else None,
    )

"""``ModelSettings`` in the Messages API's words: thinking, sampling, metadata, cache marks.

Shared by Anthropic's own API and Bedrock's InvokeModel, which take the same body. What the API
would refuse is refused here first, before any request, with what to change instead.

Reasoning takes the form the model's name says it accepts (``thinking_style``): manual
extended thinking, ``{"type": "enabled", "budget_tokens": B}``, up to Claude 4.5 and for names
openptc does not know (compatible servers, proxies); adaptive thinking, ``{"type": "adaptive"}``
with ``output_config.effort``, on Claude 4.7 and later and the unnumbered newer families, which
refuse a budget; on Claude 4.6, which takes both, an effort asks adaptively and a budget
manually. Either way the budget comes on top of the request's ``max_tokens``, since the API
counts thinking inside it. ``ModelSettings(extra={"thinking": ...})`` overrides the choice:
``extra`` is merged into the body last and wins. Interleaved thinking (reasoning between tool
calls) is a beta with manual thinking on Claude 4 (adaptive thinking interleaves by itself):
``beta_flags`` names it, for the ``anthropic-beta`` header (or InvokeModel's ``anthropic_beta``).
What each Claude version takes is ``claude_models``'; this module adds the API's own fields.
"""

from __future__ import annotations

from typing import Any, Literal

from openptc.models import claude_models
from openptc.models.base import ModelRequest
from openptc.models.claude_models import (
    INTERLEAVED_THINKING_BETA,
    NEWEST,
    claude_version,
    is_adaptive,
)
from openptc.models.settings import ModelSettings, UnsupportedSetting

EPHEMERAL: dict[str, str] = {"type": "ephemeral"}
MAX_CACHE_BREAKPOINTS = 4  # the API refuses a fifth
_UNCACHEABLE = frozenset({"thinking", "redacted_thinking"})  # the API takes no cache_control here

ThinkingStyle = Literal["budget", "both", "adaptive"]


def thinking_style(model: str | None) -> ThinkingStyle:
    """How the model takes thinking (``claude_models.thinking_form``), with what Anthropic's
    API alone decides: a name that says nothing (a compatible server's, a proxy's) gets a
    budget, and so does a model without thinking, which the API then refuses itself."""
    version = claude_version(model)
    form = "budget" if version is None else claude_models.thinking_form(version)
    return "budget" if form == "none" else form


def _adaptive(settings: ModelSettings, style: ThinkingStyle) -> bool:
    return settings.reasoning is not None and is_adaptive(settings.reasoning, style)


def check(request: ModelRequest, provider: str, model: str | None = None) -> None:
    """Refuse what the Messages API has no equivalent for, what the named ``model`` does not
    take, and what the API refuses with thinking on."""
    s = request.settings
    claude_models.check_sampling(s, claude_version(model), model or "", provider)
    if s.temperature is not None and s.temperature > 1:
        raise UnsupportedSetting(
            "temperature",
            provider,
            f"the Messages API takes a temperature from 0 to 1, not {s.temperature:g}; "
            "pass one in that range",
        )
    extra_keys = sorted(set(s.metadata) - {"user_id"})
    if extra_keys:
        raise UnsupportedSetting(
            "metadata",
            provider,
            f"the Messages API keeps only metadata.user_id, not {', '.join(extra_keys)}; pass "
            "the end user's id as ModelSettings(user=...) and drop the other keys",
        )
    given = s.metadata.get("user_id")
    if given is not None and s.user is not None and given != s.user:
        raise UnsupportedSetting(
            "metadata",
            provider,
            f"user={s.user!r} and metadata user_id={given!r} disagree, and the API keeps one "
            "user id; pass it once, as ModelSettings(user=...)",
        )
    if s.reasoning is not None:
        claude_models.check_thinking(request, provider)


def settings_fields(request: ModelRequest, style: ThinkingStyle = "budget") -> dict[str, Any]:
    """Top-level body fields for the settings (``max_tokens`` raised by a thinking budget)."""
    s = request.settings
    fields: dict[str, Any] = {}
    if s.reasoning is not None:
        fields.update(claude_models.thinking_fields(s.reasoning, style))
        fields["max_tokens"] = request.max_tokens + s.reasoning.budget()
    for name in ("temperature", "top_p", "top_k"):
        value = getattr(s, name)
        if value is not None:
            fields[name] = value
    if s.stop_sequences:
        fields["stop_sequences"] = list(s.stop_sequences)
    user = s.user if s.user is not None else s.metadata.get("user_id")
    if user is not None:
        fields["metadata"] = {"user_id": user}
    return fields


def beta_flags(settings: ModelSettings, model: str | None = None) -> tuple[str, ...]:
    """Betas the request needs: interleaved thinking when reasoning is on with a budget (for
    ``model`` named as in ``request_body``)."""
    if settings.reasoning is None or _adaptive(settings, thinking_style(model)):
        return ()
    return (INTERLEAVED_THINKING_BETA,)


def mark_cache(body: dict[str, Any]) -> None:
    """Mark the stable prefix for the prompt cache, in place: tools, system, conversation.

    The cache reads a prefix in the API's order (tools, then system, then messages) up to a
    marked block. Three marks: the last tool, the system prompt (made a list of one text block,
    the only form that takes a mark) and the last block of the last message that takes one (a
    thinking block does not; empty text never gets this far), so the next call reads all that
    was sent this time: three of the four marks the API allows.
    """
    if body.get("tools"):
        body["tools"][-1] = {**body["tools"][-1], "cache_control": dict(EPHEMERAL)}
    if isinstance(body.get("system"), str) and body["system"]:
        text = body["system"]
        body["system"] = [{"type": "text", "text": text, "cache_control": dict(EPHEMERAL)}]
    messages = body.get("messages") or []
    if not messages:
        return
    content = messages[-1]["content"]
    for k in range(len(content) - 1, -1, -1):
        if content[k]["type"] not in _UNCACHEABLE:
            content[k] = {**content[k], "cache_control": dict(EPHEMERAL)}
            return


__all__ = [
    "EPHEMERAL",
    "INTERLEAVED_THINKING_BETA",
    "MAX_CACHE_BREAKPOINTS",
    "NEWEST",
    "ThinkingStyle",
    "beta_flags",
    "check",
    "claude_version",
    "mark_cache",
    "settings_fields",
    "thinking_style",
]

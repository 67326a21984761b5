"""``ModelSettings`` in the Messages API's words: thinking, sampling, metadata, cache marks.

Shared by Anthropic's own API and Bedrock's InvokeModel, which take the same body. What the API
would refuse is refused here first, before any request, with what to change instead.

Reasoning is manual extended thinking, ``{"type": "enabled", "budget_tokens": B}``, which
every thinking Claude model took for a year; its budget comes on top of the request's
``max_tokens`` since the API counts thinking inside ``max_tokens``. Models that accept only
adaptive thinking (Claude Opus 4.7 and later) are asked for it with
``ModelSettings(extra={"thinking": {"type": "adaptive"}, "output_config": {"effort": ...}})``:
``extra`` is merged into the body last and wins. Interleaved thinking (reasoning between tool
calls) is a beta on Claude 4 models with manual thinking: ``beta_flags`` names it, for the
``anthropic-beta`` header (or InvokeModel's ``anthropic_beta`` body field).
"""

from __future__ import annotations

from typing import Any

from openptc.models.base import ModelRequest
from openptc.models.settings import ModelSettings, UnsupportedSetting

INTERLEAVED_THINKING_BETA = "interleaved-thinking-2025-05-14"
EPHEMERAL: dict[str, str] = {"type": "ephemeral"}
MAX_CACHE_BREAKPOINTS = 4  # the API refuses a fifth
_UNCACHEABLE = frozenset({"thinking", "redacted_thinking"})  # the API takes no cache_control here
_THINKING_DOCS = "see docs.claude.com/en/docs/build-with-claude/extended-thinking"


def check(request: ModelRequest, provider: str) -> None:
    """Refuse what the Messages API has no equivalent for, or refuses with thinking on."""
    s = request.settings
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
        _check_thinking(request, provider)


def _check_thinking(request: ModelRequest, provider: str) -> None:
    s = request.settings
    off = "or turn reasoning off (ModelSettings(reasoning=None))"
    if s.temperature is not None and s.temperature != 1:
        raise UnsupportedSetting(
            "temperature",
            provider,
            f"with reasoning on, the API allows only temperature 1; leave temperature unset "
            f"{off} ({_THINKING_DOCS})",
        )
    if s.top_k is not None:
        raise UnsupportedSetting(
            "top_k", provider, f"with reasoning on, the API refuses top_k; leave it unset {off}"
        )
    if s.top_p is not None and s.top_p < 0.95:
        raise UnsupportedSetting(
            "top_p",
            provider,
            f"with reasoning on, the API takes top_p only from 0.95 to 1, not {s.top_p:g}; "
            f"raise it, leave it unset {off}",
        )
    choice = request.tool_choice
    if request.tools and choice is not None and choice.mode in ("any", "tool"):
        raise UnsupportedSetting(
            "tool_choice",
            provider,
            f"with reasoning on, the API refuses a forced tool choice ({choice.mode!r}); use "
            f"ToolChoice('auto') or ToolChoice('none') {off}",
        )


def settings_fields(request: ModelRequest) -> dict[str, Any]:
    """Top-level body fields for the settings (``max_tokens`` raised by a thinking budget)."""
    s = request.settings
    fields: dict[str, Any] = {}
    if s.reasoning is not None:
        budget = s.reasoning.budget()
        fields["thinking"] = {"type": "enabled", "budget_tokens": budget}
        fields["max_tokens"] = request.max_tokens + budget
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


def beta_flags(settings: ModelSettings) -> tuple[str, ...]:
    """Betas the request needs: interleaved thinking when reasoning is on."""
    return (INTERLEAVED_THINKING_BETA,) if settings.reasoning is not None else ()


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
    "beta_flags",
    "check",
    "mark_cache",
    "settings_fields",
]

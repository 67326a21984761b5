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
"""

from __future__ import annotations

import re
from typing import Any, Literal

from openptc.models.base import ModelRequest
from openptc.models.settings import Effort, ModelSettings, UnsupportedSetting

INTERLEAVED_THINKING_BETA = "interleaved-thinking-2025-05-14"
EPHEMERAL: dict[str, str] = {"type": "ephemeral"}
MAX_CACHE_BREAKPOINTS = 4  # the API refuses a fifth
_UNCACHEABLE = frozenset({"thinking", "redacted_thinking"})  # the API takes no cache_control here
_THINKING_DOCS = "see docs.claude.com/en/docs/build-with-claude/extended-thinking"

ThinkingStyle = Literal["budget", "both", "adaptive"]
_NUMBERED = re.compile(r"claude-[a-z]+-(\d{1,2})(?:-(\d{1,2}))?(?=$|[-@:.])")
"""``claude-sonnet-4-5-20250929``: major and minor (a date is no minor)."""
_UNNUMBERED_NEW = ("claude-mythos", "claude-fable")
NEWEST = (99, 0)
"""The version of the unnumbered families (Mythos, Fable): newer than every numbered one."""


def claude_version(model: str | None) -> tuple[int, int] | None:
    """(major, minor) of a Claude model named as Anthropic's API names it; ``NEWEST`` for the
    unnumbered new families; None for a name that says nothing (``claude-3-7-sonnet``'s old
    style, a compatible server's own names): nothing is assumed about it."""
    name = (model or "").rsplit("/", 1)[-1].lower()
    if name.startswith(_UNNUMBERED_NEW):
        return NEWEST
    found = _NUMBERED.match(name)
    return (int(found.group(1)), int(found.group(2) or 0)) if found else None


def thinking_style(model: str | None) -> ThinkingStyle:
    """How the model takes thinking: ``budget`` only (up to Claude 4.5, and names that say
    nothing), ``both`` (4.6, where the budget is deprecated) or ``adaptive`` only (4.7 and
    later, Mythos, Fable: a budget is a 400 there)."""
    version = claude_version(model)
    if version is None or version < (4, 6):
        return "budget"
    return "both" if version < (4, 7) else "adaptive"


def _adaptive(settings: ModelSettings, style: ThinkingStyle) -> bool:
    reasoning = settings.reasoning
    return reasoning is not None and (
        style == "adaptive" or (style == "both" and reasoning.effort is not None)
    )


def check(request: ModelRequest, provider: str, model: str | None = None) -> None:
    """Refuse what the Messages API has no equivalent for, what the named ``model`` does not
    take, and what the API refuses with thinking on."""
    s = request.settings
    _check_sampling(request, provider, model)
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


def _check_sampling(request: ModelRequest, provider: str, model: str | None) -> None:
    s, version = request.settings, claude_version(model)
    if version is None:
        return
    if version >= (4, 7):
        for name in ("temperature", "top_p", "top_k"):
            if getattr(s, name) is not None:
                raise UnsupportedSetting(
                    name,
                    provider,
                    f"{model} takes no sampling parameters (Claude 4.7 and later: the API "
                    f"answers that `{name}` is deprecated for this model); leave it unset",
                )
    if version >= (4, 5) and s.temperature is not None and s.top_p is not None:
        raise UnsupportedSetting(
            "temperature with top_p",
            provider,
            f"{model} takes one of the two, not both (Claude 4.5 and later); drop one",
        )


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


def settings_fields(request: ModelRequest, style: ThinkingStyle = "budget") -> dict[str, Any]:
    """Top-level body fields for the settings (``max_tokens`` raised by a thinking budget)."""
    s = request.settings
    fields: dict[str, Any] = {}
    if s.reasoning is not None:
        budget = s.reasoning.budget()
        if _adaptive(s, style):
            fields["thinking"] = {"type": "adaptive"}
            level: Effort = s.reasoning.level()
            # The API's efforts are low, medium, high (and above); it has no "minimal".
            fields["output_config"] = {"effort": "low" if level == "minimal" else level}
        else:
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

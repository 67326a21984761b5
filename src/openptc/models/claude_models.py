"""What each Claude version takes: thinking and sampling, the facts every Claude API shares.

Anthropic's API and Bedrock (Converse and InvokeModel) serve the same models, which refuse the
same things, so the rules are said once, here, by version. What differs is how each API names
a model and what it assumes of a name that says nothing; that stays with the API
(``anthropic_settings``, ``bedrock_models``).

Two naming styles: ``claude-sonnet-4-5-20250929`` (Claude 4 and later) and the older
``claude-3-7-sonnet-20250219``; Bedrock adds a suffix (``-v1:0``) and has ``claude-v2`` and
``claude-instant-v1``. The newest families (Mythos, Fable) carry no number.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from openptc.models.base import ModelRequest
from openptc.models.settings import ModelSettings, Reasoning, UnsupportedSetting

Version = tuple[int, int]
ThinkingForm = Literal["none", "budget", "both", "adaptive"]

NEWEST: Version = (99, 0)
"""The version of the unnumbered families (Mythos, Fable): newer than every numbered one."""
LEGACY: Version = (2, 0)
"""``claude-v2``, ``claude-instant-v1``: the oldest, before numbered names."""
INTERLEAVED_THINKING_BETA = "interleaved-thinking-2025-05-14"
"""The beta for manual thinking between tool calls (Claude 4 and later)."""

_NEW_STYLE = re.compile(r"claude-[a-z]+-(\d{1,2})(?:-(\d{1,2}))?(?=$|[-@:.])")
"""``claude-sonnet-4-5-20250929``: family, major, minor (a date is no minor)."""
_OLD_STYLE = re.compile(r"claude-(\d)(?:-(\d))?-[a-z]+")
"""``claude-3-7-sonnet-20250219``: major, minor, family."""
_LEGACY = re.compile(r"claude-(?:v\d|instant)")
_UNNUMBERED_NEW = ("claude-mythos", "claude-fable")
_THINKING_DOCS = "see docs.claude.com/en/docs/build-with-claude/extended-thinking"


def written_version(model: str | None) -> Version | None:
    """(major, minor) as a Claude model's name writes it, in either style (``LEGACY`` for
    ``claude-v2`` and ``claude-instant``); None for a name that writes no version."""
    name = (model or "").rsplit("/", 1)[-1].lower()
    found = _NEW_STYLE.match(name) or _OLD_STYLE.match(name)
    if found is not None:
        return (int(found.group(1)), int(found.group(2) or 0))
    return LEGACY if _LEGACY.match(name) else None


def claude_version(model: str | None) -> Version | None:
    """The version a name writes, or ``NEWEST`` for the unnumbered new families; None for a
    name that says nothing (a compatible server's own names)."""
    name = (model or "").rsplit("/", 1)[-1].lower()
    return NEWEST if name.startswith(_UNNUMBERED_NEW) else written_version(name)


def thinking_form(version: Version) -> ThinkingForm:
    """How this version takes extended thinking: ``none`` before 3.7; ``budget``,
    ``{"type": "enabled", "budget_tokens": B}``, from 3.7 Sonnet up to 4.5; ``both`` that or
    ``{"type": "adaptive"}`` with ``output_config.effort`` on 4.6 (where the budget is
    deprecated); ``adaptive`` only on 4.7 and later (a budget is a 400 there)."""
    if version < (3, 7):
        return "none"
    if version < (4, 6):
        return "budget"
    return "both" if version < (4, 7) else "adaptive"


def is_adaptive(reasoning: Reasoning, form: ThinkingForm) -> bool:
    """Adaptive thinking when the model takes only that, or takes both and an effort is asked."""
    return form == "adaptive" or (form == "both" and reasoning.effort is not None)


def thinking_fields(reasoning: Reasoning, form: ThinkingForm) -> dict[str, Any]:
    """``thinking`` (and ``output_config`` when adaptive) in the Messages API's words."""
    if is_adaptive(reasoning, form):
        level = reasoning.level()
        # The API's efforts are low, medium, high (and above); it has no "minimal".
        effort = "low" if level == "minimal" else level
        return {"thinking": {"type": "adaptive"}, "output_config": {"effort": effort}}
    return {"thinking": {"type": "enabled", "budget_tokens": reasoning.budget()}}


def check_has_thinking(form: ThinkingForm, where: str) -> None:
    """Refuse reasoning for a model without extended thinking (before Claude 3.7)."""
    if form == "none":
        raise UnsupportedSetting(
            "reasoning",
            where,
            "this Claude model has no extended thinking (Claude 3.7 Sonnet and Claude 4 and "
            "later have it)",
        )


def check_sampling(
    settings: ModelSettings, version: Version | None, model: str, where: str
) -> None:
    """Refuse the sampling this version refuses: none at all on 4.7 and later (the API answers
    that they are deprecated), temperature with top_p on 4.5 and later. Nothing is assumed of
    an unknown version."""
    if version is None:
        return
    if version >= (4, 7):
        for name in ("temperature", "top_p", "top_k"):
            if getattr(settings, name) is not None:
                raise UnsupportedSetting(
                    name,
                    where,
                    f"{model} takes no sampling parameters (Claude 4.7 and later: the API "
                    f"answers that `{name}` is deprecated for this model); leave it unset",
                )
    if version >= (4, 5) and settings.temperature is not None and settings.top_p is not None:
        raise UnsupportedSetting(
            "temperature with top_p",
            where,
            f"{model} takes one of the two, not both (Claude 4.5 and later); drop one",
        )


def check_thinking(request: ModelRequest, where: str) -> None:
    """Refuse what Claude refuses with thinking on: a temperature other than 1, top_k, top_p
    below 0.95 and a forced tool choice."""
    s = request.settings
    off = "or turn reasoning off (ModelSettings(reasoning=None))"
    if s.temperature is not None and s.temperature != 1:
        raise UnsupportedSetting(
            "temperature",
            where,
            f"with reasoning on, the API allows only temperature 1; leave temperature unset "
            f"{off} ({_THINKING_DOCS})",
        )
    if s.top_k is not None:
        raise UnsupportedSetting(
            "top_k", where, f"with reasoning on, the API refuses top_k; leave it unset {off}"
        )
    if s.top_p is not None and s.top_p < 0.95:
        raise UnsupportedSetting(
            "top_p",
            where,
            f"with reasoning on, the API takes top_p only from 0.95 to 1, not {s.top_p:g}; "
            f"raise it, leave it unset {off}",
        )
    choice = request.tool_choice
    if request.tools and choice is not None and choice.mode in ("any", "tool"):
        raise UnsupportedSetting(
            "tool_choice",
            where,
            f"with reasoning on, the API refuses a forced tool choice ({choice.mode!r}); use "
            f"ToolChoice('auto') or ToolChoice('none') {off}",
        )


__all__ = [
    "INTERLEAVED_THINKING_BETA",
    "LEGACY",
    "NEWEST",
    "ThinkingForm",
    "Version",
    "check_has_thinking",
    "check_sampling",
    "check_thinking",
    "claude_version",
    "is_adaptive",
    "thinking_fields",
    "thinking_form",
    "written_version",
]

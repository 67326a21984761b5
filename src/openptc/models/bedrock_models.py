"""Which Bedrock model is which: the family and version behind a model id, and what each takes.

Converse is provider-neutral for the basics, but reasoning, ``top_k`` and prompt caching are
each family's own, and a field a model does not know fails the whole request (a ``cachePoint``
sent to a model without prompt caching is a 400 "You invoked an unsupported model or your
request did not allow prompt caching"). So the model id decides, here, once.

A model id is a base model (``anthropic.claude-sonnet-4-5-20250929-v1:0``), a cross-region
inference profile (``us.``/``eu.``/``apac.``/``global.`` + base model), or an ARN ending in one
of these. An application inference profile ARN names no model: it is treated as unknown, so
nothing model-specific is sent and reasoning asks for ``ModelSettings(extra=...)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

PROVIDERS = frozenset(
    {"anthropic", "amazon", "openai", "deepseek", "meta", "mistral", "cohere", "ai21", "qwen"}
)

_NEW_STYLE = re.compile(r"^claude-[a-z]+-(\d{1,2})(?:-(\d{1,2}))?(?=$|[-:@])")
"""``claude-sonnet-4-5-20250929-v1:0``: family, major, minor (a date is no minor)."""
_OLD_STYLE = re.compile(r"^claude-(\d)(?:-(\d))?-[a-z]+")
"""``claude-3-7-sonnet-20250219-v1:0``: major, minor, family."""


@dataclass(frozen=True)
class BedrockModel:
    """The provider (``anthropic``, ``amazon``, ...; empty when unknown) and the base name."""

    provider: str
    name: str

    @property
    def is_claude(self) -> bool:
        return self.provider == "anthropic" and self.name.startswith("claude")

    @property
    def claude_version(self) -> tuple[int, int] | None:
        """(major, minor) of a Claude model; None for one whose name carries no version
        (``claude-mythos-preview``: a model newer than the numbered ones) or that is not
        Claude. The oldest ones (``claude-v2``, ``claude-instant-v1``) are (2, 0)."""
        if not self.is_claude:
            return None
        if self.name.startswith(("claude-v", "claude-instant")):
            return (2, 0)
        found = _NEW_STYLE.match(self.name) or _OLD_STYLE.match(self.name)
        if found is None:
            return None
        return (int(found.group(1)), int(found.group(2) or 0))


def bedrock_model(model_id: str) -> BedrockModel:
    """The family behind a model id, inference profile or ARN."""
    name = model_id.rsplit("/", 1)[-1]
    parts = name.split(".")
    if len(parts) > 2 and parts[0] not in PROVIDERS and parts[1] in PROVIDERS:
        parts = parts[1:]  # a cross-region prefix: us., eu., apac., global., ...
    if len(parts) >= 2 and parts[0] in PROVIDERS:
        return BedrockModel(parts[0], ".".join(parts[1:]))
    return BedrockModel("", name)


ThinkingStyle = Literal["none", "budget", "both", "adaptive"]


def claude_thinking(model: BedrockModel) -> ThinkingStyle:
    """How a Claude model takes extended thinking on Bedrock.

    ``budget``: ``{"type": "enabled", "budget_tokens": B}`` (Claude 3.7 Sonnet up to 4.5);
    ``both``: that, or ``{"type": "adaptive"}`` with ``output_config.effort`` (4.6, where the
    budget is deprecated); ``adaptive`` only (4.7 and later, and the unnumbered newer models:
    a budget is a 400 there); ``none`` before 3.7.
    """
    version = model.claude_version
    if version is None:
        return "adaptive"
    if version < (3, 7):
        return "none"
    if version < (4, 6):
        return "budget"
    return "both" if version < (4, 7) else "adaptive"


def prompt_cache_places(model_id: str) -> frozenset[str]:
    """Where Converse may put a ``cachePoint`` for this model; empty when it has no prompt
    caching on Bedrock (then none is sent, since a cache point fails the request).

    Claude 3.5 Haiku, 3.7 Sonnet, 4 and later: after the system prompt, the tools and the
    messages. Amazon Nova Micro, Lite, Pro and Premier: system and messages (Nova does not take
    a cache point among the tools). Claude 3.5 Sonnet v2 had caching in a closed preview only.
    """
    model = bedrock_model(model_id)
    if model.is_claude:
        version = model.claude_version
        cached = version is None or version >= (3, 7) or model.name.startswith("claude-3-5-haiku")
        return frozenset({"system", "tools", "messages"}) if cached else frozenset()
    if model.provider == "amazon" and re.match(r"nova-(micro|lite|pro|premier)-", model.name):
        return frozenset({"system", "messages"})
    return frozenset()


def is_gpt_oss(model: BedrockModel) -> bool:
    return model.provider == "openai" and model.name.startswith("gpt-oss")


def is_deepseek_r1(model: BedrockModel) -> bool:
    return model.provider == "deepseek" and model.name.startswith("r1")


__all__ = [
    "BedrockModel",
    "ThinkingStyle",
    "bedrock_model",
    "claude_thinking",
    "is_deepseek_r1",
    "is_gpt_oss",
    "prompt_cache_places",
]

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

from openptc.models.claude_models import (
    NEWEST,
    ThinkingForm,
    Version,
    thinking_form,
    written_version,
)

PROVIDERS = frozenset(
    {"anthropic", "amazon", "openai", "deepseek", "meta", "mistral", "cohere", "ai21", "qwen"}
)


@dataclass(frozen=True)
class BedrockModel:
    """The provider (``anthropic``, ``amazon``, ...; empty when unknown) and the base name."""

    provider: str
    name: str

    @property
    def is_claude(self) -> bool:
        return self.provider == "anthropic" and self.name.startswith("claude")

    @property
    def claude_version(self) -> Version | None:
        """(major, minor) of a Claude model; None for one whose name carries no version
        (``claude-mythos-preview``: a model newer than the numbered ones) or that is not
        Claude. The oldest ones (``claude-v2``, ``claude-instant-v1``) are (2, 0)."""
        return written_version(self.name) if self.is_claude else None

    @property
    def claude_generation(self) -> Version:
        """The version a Claude model's rules go by: ``claude_version``, or ``NEWEST`` when the
        name has no number. Bedrock serves only Anthropic's own models, so a Claude without a
        number is one of the families newer than the numbered ones, not a name that says
        nothing (as it may be on Anthropic's API, behind a compatible server)."""
        return self.claude_version or NEWEST


def bedrock_model(model_id: str) -> BedrockModel:
    """The family behind a model id, inference profile or ARN."""
    name = model_id.rsplit("/", 1)[-1]
    parts = name.split(".")
    if len(parts) > 2 and parts[0] not in PROVIDERS and parts[1] in PROVIDERS:
        parts = parts[1:]  # a cross-region prefix: us., eu., apac., global., ...
    if len(parts) >= 2 and parts[0] in PROVIDERS:
        return BedrockModel(parts[0], ".".join(parts[1:]))
    return BedrockModel("", name)


ThinkingStyle = ThinkingForm


def claude_thinking(model: BedrockModel) -> ThinkingStyle:
    """How a Claude model takes extended thinking on Bedrock (``claude_models.thinking_form``
    of its ``claude_generation``): ``none`` before 3.7, which Bedrock refuses up front."""
    return thinking_form(model.claude_generation)


def prompt_cache_places(model_id: str) -> frozenset[str]:
    """Where Converse may put a ``cachePoint`` for this model; empty when it has no prompt
    caching on Bedrock (then none is sent, since a cache point fails the request).

    Claude 3.5 Haiku, 3.7 Sonnet, 4 and later: after the system prompt, the tools and the
    messages. Amazon Nova Micro, Lite, Pro and Premier: system and messages (Nova does not take
    a cache point among the tools). Claude 3.5 Sonnet v2 had caching in a closed preview only.
    """
    model = bedrock_model(model_id)
    if model.is_claude:
        cached = model.claude_generation >= (3, 7) or model.name.startswith("claude-3-5-haiku")
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

"""How to sample: reasoning, caching and sampling settings, said once for every provider.

``ModelSettings`` travels in every ``ModelRequest``; each adapter says it in its API's own words
(``thinking`` for Anthropic, ``reasoning`` for OpenAI's Responses API, ``inferenceConfig`` and
``additionalModelRequestFields`` for Bedrock, ...) and refuses, before any request, a setting its
API has no equivalent for: ``UnsupportedSetting`` names the setting and the provider.

Reasoning is asked for with an effort or a token budget; an adapter whose API wants the other
converts with ``Reasoning.budget()``/``Reasoning.level()`` so one setting reads the same
everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from openptc.models.errors import ModelBadRequest

Effort = Literal["minimal", "low", "medium", "high"]
EFFORTS: tuple[Effort, ...] = ("minimal", "low", "medium", "high")

# Effort as a thinking budget (APIs that take tokens) and back (APIs that take a level).
# Anthropic's minimum budget is 1,024 tokens.
BUDGET_OF_EFFORT: dict[Effort, int] = {
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 24576,
}


@dataclass(frozen=True)
class Reasoning:
    """Ask the model to reason before it answers: with an ``effort`` or a ``budget_tokens``.

    The budget is on top of the request's ``max_tokens``: adapters whose API counts thinking
    inside ``max_tokens`` (Anthropic, Bedrock) raise it by the budget, so the answer keeps the
    room it had without reasoning.
    """

    effort: Effort | None = None
    budget_tokens: int | None = None

    def __post_init__(self) -> None:
        if (self.effort is None) == (self.budget_tokens is None):
            raise ValueError("Reasoning takes an effort or a budget_tokens, exactly one")
        if self.effort is not None and self.effort not in EFFORTS:
            raise ValueError(f"unknown reasoning effort {self.effort!r}; one of {EFFORTS}")
        if self.budget_tokens is not None and self.budget_tokens < 1024:
            raise ValueError(
                f"a reasoning budget of {self.budget_tokens} tokens is too small: at least 1024"
            )

    def budget(self) -> int:
        """The budget in tokens (an effort maps to ``BUDGET_OF_EFFORT``)."""
        if self.budget_tokens is not None:
            return self.budget_tokens
        assert self.effort is not None
        return BUDGET_OF_EFFORT[self.effort]

    def level(self) -> Effort:
        """The effort (a budget maps to the smallest effort whose budget holds it)."""
        if self.effort is not None:
            return self.effort
        assert self.budget_tokens is not None
        for effort in EFFORTS:
            if self.budget_tokens <= BUDGET_OF_EFFORT[effort]:
                return effort
        return "high"

    @classmethod
    def parse(cls, text: str) -> Reasoning:
        """``"high"`` (an effort) or ``"8000"`` (a budget), as the CLI and model strings say it."""
        text = text.strip().lower()
        if text.isdigit():
            return cls(budget_tokens=int(text))
        if text in EFFORTS:
            return cls(effort=text)
        raise ValueError(
            f"reasoning {text!r}: give an effort ({', '.join(EFFORTS)}) or a budget in tokens"
        )


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class ModelSettings:
    """Sampling and control settings; ``None`` (or empty) leaves the provider's default.

    - ``reasoning``: think first, with an effort or a budget (see ``Reasoning``);
    - ``cache``: mark the stable prefix (system prompt, tools, conversation so far) for the
      provider's prompt cache where asking is free; on by default;
    - ``temperature``, ``top_p``, ``top_k``, ``stop_sequences``: sampling;
    - ``user``: who the end user is, for the provider's abuse monitoring;
    - ``metadata``: string pairs the provider keeps with the request;
    - ``extra``: raw fields merged into the provider's request body as they are, for what
      openptc does not model (a provider's own parameter). Nothing checks them.
    """

    reasoning: Reasoning | None = None
    cache: bool = True
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop_sequences: tuple[str, ...] = ()
    user: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stop_sequences", tuple(self.stop_sequences))
        object.__setattr__(self, "metadata", _frozen(self.metadata))
        object.__setattr__(self, "extra", _frozen(self.extra))
        if self.temperature is not None and not 0 <= self.temperature <= 2:
            raise ValueError(f"temperature {self.temperature} is out of range: 0 to 2")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"top_p {self.top_p} is out of range: above 0, at most 1")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k {self.top_k} must be at least 1")
        if any(not isinstance(s, str) or not s for s in self.stop_sequences):
            raise ValueError("stop sequences must be non-empty strings")


DEFAULT_SETTINGS = ModelSettings()


class UnsupportedSetting(ModelBadRequest):
    """A setting the provider's API has no equivalent for: refused before any request."""

    def __init__(self, setting: str, provider: str, why: str) -> None:
        super().__init__(f"{setting} is not supported by {provider}: {why}", provider=provider)
        self.setting = setting


__all__ = [
    "BUDGET_OF_EFFORT",
    "DEFAULT_SETTINGS",
    "EFFORTS",
    "Effort",
    "ModelSettings",
    "Reasoning",
    "UnsupportedSetting",
]

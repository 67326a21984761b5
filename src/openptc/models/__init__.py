"""Models: the normalized protocol, the offline scripted model, token counting, and a resolver."""

from __future__ import annotations

from collections.abc import Callable

from openptc.models.base import (
    Block,
    Message,
    Model,
    ModelError,
    ModelRequest,
    ModelResponse,
    ModelUsage,
    StopReason,
    TextBlock,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
)
from openptc.models.scripted import SCRIPTED_LABEL, Policy, ScriptedModel, Turn
from openptc.models.tokens import count_request_tokens, count_response_tokens


def _scripted(rest: str) -> Model:
    # Imported here: the brains belong to the benchmark, which imports models, not the reverse.
    from openptc.bench import brains

    known: dict[str, Callable[[], Model]] = {
        "expense-audit": lambda: ScriptedModel(
            brains.expense_audit_brain, name="scripted:expense-audit"
        ),
    }
    if rest not in known:
        raise ValueError(
            f"unknown scripted model {rest!r}; known: "
            + ", ".join(f"scripted:{k}" for k in sorted(known))
        )
    return known[rest]()


def model_from_string(spec: str) -> Model:
    """Resolve ``"provider:model"`` to a model, e.g. ``"scripted:expense-audit"``.

    A plain mapping from prefix to constructor, no registry: adding a provider is one line here.
    """
    constructors: dict[str, Callable[[str], Model]] = {"scripted": _scripted}
    prefix, sep, rest = spec.partition(":")
    if not sep or prefix not in constructors:
        raise ValueError(
            f"unknown model {spec!r}: expected '<provider>:<model>' with provider one of "
            + ", ".join(sorted(constructors))
            + " (e.g. 'scripted:expense-audit')"
        )
    return constructors[prefix](rest)


__all__ = [
    "SCRIPTED_LABEL",
    "Block",
    "Message",
    "Model",
    "ModelError",
    "ModelRequest",
    "ModelResponse",
    "ModelUsage",
    "Policy",
    "ScriptedModel",
    "StopReason",
    "TextBlock",
    "ToolResultBlock",
    "ToolSpec",
    "ToolUseBlock",
    "Turn",
    "count_request_tokens",
    "count_response_tokens",
    "model_from_string",
]

"""The model boundary: normalized, wire-neutral messages in, content blocks and usage out.

Every adapter (Anthropic, Bedrock, OpenAI, scripted) translates its provider's wire format to and
from these types, so the agent loop never sees a provider's shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from openptc.models.errors import ModelError
from openptc.models.settings import DEFAULT_SETTINGS, ModelSettings

__all__ = ["ModelError", "ModelSettings"]  # re-exported: ModelError lived here first


@dataclass(frozen=True)
class TextBlock:
    """Plain text written by the model or the user."""

    text: str


@dataclass(frozen=True)
class ToolUseBlock:
    """The model asks for one tool call; ``id`` pairs it with its ``ToolResultBlock``."""

    id: str
    name: str
    input: dict[str, Any] = field(default_factory=dict)
    # When the provider sent arguments that are not a JSON object: the raw text (re-sent
    # verbatim in later requests) and what was wrong. The agent answers such a call with an
    # error so the model can try again; ``input`` is then empty.
    raw_input: str | None = None
    input_error: str | None = None


@dataclass(frozen=True)
class ToolResultBlock:
    """The application's answer to one ``ToolUseBlock``, as text the model reads."""

    tool_use_id: str
    content: str
    is_error: bool = False


def tool_use_from_input(id_: str, name: str, value: object) -> ToolUseBlock:
    """A tool use from the arguments a provider sent: an object, or JSON text (streamed, or a
    Chat Completions string). Anything that is not a JSON object becomes an input error for the
    agent to feed back, with the raw text kept so that it is re-sent verbatim."""
    if isinstance(value, str):
        raw = value
        if not raw.strip():  # local servers send "" for a call without arguments
            return ToolUseBlock(id_, name, {})
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            error = f"invalid JSON: {exc.msg} at character {exc.pos}"
            return ToolUseBlock(id_, name, {}, raw_input=raw, input_error=error)
    else:
        raw = json.dumps(value)
    if isinstance(value, dict):
        return ToolUseBlock(id_, name, value)
    kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )
    error = f"the arguments are {kind}, not a JSON object"
    return ToolUseBlock(id_, name, {}, raw_input=raw, input_error=error)


ReasoningWire = Literal["anthropic", "bedrock", "openai-responses", "openai-chat"]


@dataclass(frozen=True)
class ReasoningBlock:
    """What a model thought before it answered, kept to be sent back as its API requires.

    ``text`` is the readable reasoning (a summary with some providers; empty when all of it is
    redacted or encrypted). The rest is opaque and goes back unchanged: ``signature`` (Anthropic,
    Bedrock), ``redacted`` (Anthropic's ``redacted_thinking`` data, Bedrock's redacted content),
    ``id`` and ``encrypted`` (an OpenAI Responses reasoning item). ``wire`` names the API that
    made it: only that API takes it back, other adapters leave it out of their requests.
    """

    text: str
    wire: ReasoningWire
    signature: str | None = None
    redacted: str | None = None
    id: str | None = None
    encrypted: str | None = None


Block = TextBlock | ToolUseBlock | ToolResultBlock | ReasoningBlock
Role = Literal["user", "assistant"]
StopReason = Literal["end_turn", "tool_use", "max_tokens", "refusal", "stop_sequence"]


@dataclass(frozen=True)
class Message:
    """One turn: tool uses travel in assistant turns, their results in the next user turn."""

    role: Role
    content: tuple[Block, ...]

    @classmethod
    def user(cls, text: str) -> Message:
        return cls("user", (TextBlock(text),))

    @classmethod
    def assistant(cls, content: str | Iterable[Block]) -> Message:
        blocks = (TextBlock(content),) if isinstance(content, str) else tuple(content)
        return cls("assistant", blocks)

    @classmethod
    def tool_results(cls, results: Iterable[ToolResultBlock]) -> Message:
        return cls("user", tuple(results))

    @property
    def text(self) -> str:
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))

    @property
    def tool_uses(self) -> tuple[ToolUseBlock, ...]:
        return tuple(b for b in self.content if isinstance(b, ToolUseBlock))

    @property
    def results(self) -> tuple[ToolResultBlock, ...]:
        return tuple(b for b in self.content if isinstance(b, ToolResultBlock))

    @property
    def reasoning(self) -> tuple[ReasoningBlock, ...]:
        return tuple(b for b in self.content if isinstance(b, ReasoningBlock))


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the model sees it: name, prose, and JSON Schema of its input."""

    name: str
    description: str
    input_schema: dict[str, Any]

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> ToolSpec:
        """Accept ``Toolbox.specs()`` entries (``{"name", "description", "input_schema"}``)."""
        return cls(spec["name"], spec.get("description", ""), spec["input_schema"])


@dataclass(frozen=True)
class ModelUsage:
    """Tokens the provider billed for one call.

    ``input_tokens`` is fresh input only: cache reads and writes are counted apart, so the
    three add up to what went in. ``reasoning_tokens`` are part of ``output_tokens``: as the
    provider reports them, or (Anthropic, Bedrock, which do not) counted from the returned
    reasoning text with the offline tokenizer.
    """

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True)
class ToolChoice:
    """Whether the model must call a tool: ``auto`` (its choice), ``any`` (some tool),
    ``none`` (no tool) or ``tool`` (the one named)."""

    mode: Literal["auto", "any", "none", "tool"]
    name: str | None = None

    def __post_init__(self) -> None:
        if (self.mode == "tool") != (self.name is not None):
            raise ValueError("a tool name goes with mode 'tool', and only with it")


@dataclass(frozen=True)
class ModelRequest:
    """Everything one model call needs; the conversation so far travels whole each time."""

    system: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    max_tokens: int = 4096
    tool_choice: ToolChoice | None = None  # None: the provider's default (auto)
    settings: ModelSettings = DEFAULT_SETTINGS


@dataclass(frozen=True)
class ModelResponse:
    """One assistant turn, normalized. ``usage`` is None when the model reports none."""

    content: tuple[Block, ...]
    stop_reason: StopReason
    usage: ModelUsage | None
    model: str
    stop_sequence: str | None = None  # which one, when ``stop_reason`` is "stop_sequence"

    @property
    def text(self) -> str:
        return self.to_message().text

    @property
    def reasoning(self) -> tuple[ReasoningBlock, ...]:
        return self.to_message().reasoning

    @property
    def tool_uses(self) -> tuple[ToolUseBlock, ...]:
        return self.to_message().tool_uses

    def to_message(self) -> Message:
        return Message("assistant", self.content)


TextSink = Callable[[str], None]
"""Receives pieces of the model's text as they arrive, when the provider streams."""


@runtime_checkable
class Model(Protocol):
    """A chat model with tool use. ``label`` tells a human what is really answering.

    With ``on_text`` a model that can stream does, handing over text as it arrives; the
    complete response is returned either way. ``aclose`` lets go of the connections the model
    opened (a client passed in is borrowed, not closed).
    """

    @property
    def name(self) -> str: ...

    @property
    def label(self) -> str: ...

    async def generate(
        self, request: ModelRequest, *, on_text: TextSink | None = None
    ) -> ModelResponse: ...

    async def aclose(self) -> None: ...


async def close_model(model: object) -> None:
    """``model.aclose()`` when it has one: models written before ``aclose`` need none."""
    aclose = getattr(model, "aclose", None)
    if aclose is not None:
        await aclose()

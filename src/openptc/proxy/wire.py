"""The Anthropic Messages API on the wire, as pydantic models (the subset a PTC proxy serves).

Field names and literals follow the official SDK's types (``anthropic.types``: ``ToolParam``
with ``allowed_callers``, ``CodeExecutionTool20260120Param``, ``ToolUseBlock.caller``,
``CodeExecutionToolResultBlock``, ``Container``). Requests are validated strictly where a
mistake would change behaviour and leniently where the SDK adds fields over time (unknown
top-level fields are accepted and ignored, as the SDK may send newer ones).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

CODE_EXECUTION_TYPES = (
    "code_execution_20250825",
    "code_execution_20260120",
    "code_execution_20260521",
)
CodeExecutionType = Literal[
    "code_execution_20250825", "code_execution_20260120", "code_execution_20260521"
]
CallerName = Literal[
    "direct", "code_execution_20250825", "code_execution_20260120", "code_execution_20260521"
]
CODE_TOOL_NAME = "code_execution"


class _Lenient(BaseModel):
    """Blocks echo back what responses carried (``citations``, ``cache_control``...): keep them."""

    model_config = ConfigDict(extra="allow")


def _type_required(schema: dict[str, Any]) -> None:
    """A block's ``type`` has a default for building responses, yet requests must send it."""
    required = schema.setdefault("required", [])
    if "type" not in required:
        required.insert(0, "type")


class _Block(_Lenient):
    """A content block: discriminated by its ``type``, which the documented schema requires."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_type_required)


# -- request: tools ------------------------------------------------------------------------------
class CacheControl(_Lenient):
    type: Literal["ephemeral"] = "ephemeral"


class CodeExecutionTool(_Lenient):
    """``{"type": "code_execution_20260120", "name": "code_execution"}`` and its versions."""

    type: CodeExecutionType
    name: Literal["code_execution"] = "code_execution"


class InputSchema(_Lenient):
    type: Literal["object"]
    properties: dict[str, Any] | None = None
    required: list[str] | None = None


class CustomTool(_Lenient):
    """A client tool; ``allowed_callers`` says whether the model, programs, or both call it."""

    name: str = Field(min_length=1, max_length=128, pattern=r"^[a-zA-Z0-9_-]{1,128}$")
    input_schema: InputSchema
    type: Literal["custom"] | None = None
    description: str | None = None
    allowed_callers: list[CallerName] | None = None
    strict: bool | None = None

    @property
    def callable_directly(self) -> bool:
        return self.allowed_callers is None or "direct" in self.allowed_callers

    @property
    def callable_from_code(self) -> bool:
        return any(c != "direct" for c in self.allowed_callers or ())


def _tool_kind(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if kind in (None, "custom"):
        return "custom"
    if kind in CODE_EXECUTION_TYPES:
        return "code_execution"
    return "unsupported"


class UnsupportedTool(_Lenient):
    """Any other server tool (web search, bash, memory...): refused with a clear message."""

    type: str = Field(json_schema_extra={"not": {"enum": ["custom", *CODE_EXECUTION_TYPES]}})


ToolParam = Annotated[
    Annotated[CustomTool, Tag("custom")]
    | Annotated[CodeExecutionTool, Tag("code_execution")]
    | Annotated[UnsupportedTool, Tag("unsupported")],
    Discriminator(_tool_kind),
]


class ToolChoice(_Lenient):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = Field(default=None, strict=True)


# -- request and response: content blocks --------------------------------------------------------
class DirectCaller(BaseModel):
    type: Literal["direct"] = "direct"


class CodeCaller(BaseModel):
    type: Literal["code_execution_20250825", "code_execution_20260120"]
    tool_id: str


Caller = Annotated[DirectCaller | CodeCaller, Field(discriminator="type")]


class TextContent(_Block):
    type: Literal["text"] = "text"
    text: str


class ImageContent(_Block):
    type: Literal["image"]
    source: dict[str, Any]


class DocumentContent(_Block):
    type: Literal["document"]
    source: dict[str, Any]


class ToolUseContent(_Block):
    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict[str, Any]
    caller: Caller | None = None


class ServerToolUseContent(_Block):
    type: Literal["server_tool_use"] = "server_tool_use"
    id: str
    name: str
    input: dict[str, Any]


class ToolResultContent(_Block):
    type: Literal["tool_result"] = "tool_result"
    tool_use_id: str
    content: str | list[TextContent | ImageContent | DocumentContent] | None = None
    is_error: bool | None = None

    def text(self) -> str:
        """The result as the one string a program receives."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(b.text for b in self.content if isinstance(b, TextContent))


class CodeExecutionOutput(BaseModel):
    type: Literal["code_execution_output"] = "code_execution_output"
    file_id: str


class CodeExecutionResult(_Lenient):
    type: Literal["code_execution_result"] = "code_execution_result"
    stdout: str
    stderr: str
    return_code: int
    content: list[CodeExecutionOutput] = Field(default_factory=list)


class CodeExecutionError(_Lenient):
    type: Literal["code_execution_tool_result_error"] = "code_execution_tool_result_error"
    error_code: str


class CodeExecutionToolResultContent(_Block):
    type: Literal["code_execution_tool_result"] = "code_execution_tool_result"
    tool_use_id: str
    content: Annotated[CodeExecutionResult | CodeExecutionError, Field(discriminator="type")]


class ThinkingContent(_Block):
    """Reasoning the backend showed; ``signature`` carries what its API needs back (see
    ``proxy.reasoning``), so it must come back exactly as it was sent."""

    type: Literal["thinking"] = "thinking"
    thinking: str
    signature: str


class RedactedThinkingContent(_Block):
    type: Literal["redacted_thinking"] = "redacted_thinking"
    data: str


ContentBlock = Annotated[
    TextContent
    | ImageContent
    | DocumentContent
    | ToolUseContent
    | ServerToolUseContent
    | ToolResultContent
    | CodeExecutionToolResultContent
    | ThinkingContent
    | RedactedThinkingContent,
    Field(discriminator="type"),
]


class MessageParam(_Lenient):
    role: Literal["user", "assistant"]
    content: str | list[ContentBlock]

    def blocks(self) -> list[Any]:
        if isinstance(self.content, str):
            return [TextContent(text=self.content)]
        return list(self.content)


class ContainerParam(_Lenient):
    id: str | None = None


# -- request: how to sample ----------------------------------------------------------------------
class ThinkingEnabled(_Lenient):
    type: Literal["enabled"]
    budget_tokens: int = Field(ge=1024)
    display: Literal["summarized", "omitted"] | None = None


class ThinkingDisabled(_Lenient):
    type: Literal["disabled"]


class ThinkingAdaptive(_Lenient):
    """The model decides how much to think; ``output_config.effort`` says how hard."""

    type: Literal["adaptive"]
    display: Literal["summarized", "omitted"] | None = None


class ThinkingBetweenTools(_Lenient):
    """Thinking off (short progress notes between tool calls may come back as thinking)."""

    type: Literal["between_tools"]


ThinkingConfig = Annotated[
    ThinkingEnabled | ThinkingDisabled | ThinkingAdaptive | ThinkingBetweenTools,
    Field(discriminator="type"),
]
Effort = Literal["low", "medium", "high", "xhigh", "max"]


class OutputConfig(_Lenient):
    effort: Effort | None = None


class Metadata(_Lenient):
    user_id: str | None = None


StopSequence = Annotated[str, Field(min_length=1)]


def _system_text(system: str | list[TextContent] | None) -> str:
    if system is None:
        return ""
    if isinstance(system, str):
        return system
    return "\n\n".join(block.text for block in system)


class MessagesRequest(_Lenient):
    """``POST /v1/messages``."""

    model: str = Field(min_length=1)
    max_tokens: int = Field(ge=1)
    messages: list[MessageParam] = Field(min_length=1)
    system: str | list[TextContent] | None = None
    tools: list[ToolParam] | None = None
    tool_choice: ToolChoice | None = None
    stream: bool = Field(default=False, strict=True)
    container: str | ContainerParam | None = None
    thinking: ThinkingConfig | None = None
    output_config: OutputConfig | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=1)
    stop_sequences: list[StopSequence] | None = None
    metadata: Metadata | None = None
    cache_control: CacheControl | None = None

    @property
    def container_id(self) -> str | None:
        if isinstance(self.container, ContainerParam):
            return self.container.id
        return self.container

    def system_text(self) -> str:
        return _system_text(self.system)


class CountTokensRequest(_Lenient):
    """``POST /v1/messages/count_tokens``: a message request without ``max_tokens``."""

    model: str = Field(min_length=1)
    messages: list[MessageParam] = Field(min_length=1)
    system: str | list[TextContent] | None = None
    tools: list[ToolParam] | None = None
    tool_choice: ToolChoice | None = None

    def system_text(self) -> str:
        return _system_text(self.system)


# -- response ------------------------------------------------------------------------------------
StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"]


class OutputTokensDetails(BaseModel):
    thinking_tokens: int


class Usage(BaseModel):
    """``input_tokens`` is fresh input only: cache reads and writes are counted apart."""

    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int | None = 0
    cache_read_input_tokens: int | None = 0
    service_tier: Literal["standard"] | None = "standard"
    output_tokens_details: OutputTokensDetails | None = None


class Container(BaseModel):
    id: str
    expires_at: str  # ISO 8601, as the API sends it


ResponseBlock = (
    TextContent
    | ThinkingContent
    | RedactedThinkingContent
    | ToolUseContent
    | ServerToolUseContent
    | CodeExecutionToolResultContent
)


class MessageResponse(BaseModel):
    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    model: str
    content: list[ResponseBlock]
    stop_reason: StopReason | None
    stop_sequence: str | None = None
    usage: Usage
    container: Container | None = None


class TokenCount(BaseModel):
    input_tokens: int


class ModelInfo(BaseModel):
    id: str
    type: Literal["model"] = "model"
    display_name: str
    created_at: str


class ModelList(BaseModel):
    data: list[ModelInfo]
    has_more: bool = False
    first_id: str | None = None
    last_id: str | None = None


class ErrorDetail(BaseModel):
    type: str
    message: str


class ErrorResponse(BaseModel):
    type: Literal["error"] = "error"
    error: ErrorDetail
    request_id: str | None = None

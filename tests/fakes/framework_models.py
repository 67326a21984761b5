"""Offline models for the agent-framework adapters, each built on its framework's own test model
or model extension point: they call ``execute_code`` with a program, then answer with what the
program printed ("From the audit:" and the output), so a broken sandbox, bridge or tool shows up
as a wrong answer. Each records the tools it was offered, as the framework handed them over."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from agents.testing import ModelCall, ModelStep, ScriptedModel, assistant_message, function_call
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from smolagents.models import (
    ChatMessage,
    ChatMessageToolCall,
    ChatMessageToolCallFunction,
    MessageRole,
    Model,
)

ANSWER_PREFIX = "From the audit:\n"


# -- pydantic-ai: FunctionModel ----------------------------------------------------------------
def tool_returns(messages: Sequence[ModelMessage]) -> list[ToolReturnPart]:
    return [
        part
        for message in messages
        if isinstance(message, ModelRequest)
        for part in message.parts
        if isinstance(part, ToolReturnPart)
    ]


class PydanticAiAuditor:
    """The function of a ``FunctionModel``: runs ``programs`` in turn, then answers with the
    first one's output."""

    def __init__(self, *programs: str) -> None:
        self.programs = programs
        self.seen: list[AgentInfo] = []

    def __call__(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        self.seen.append(info)
        done = tool_returns(messages)
        if len(done) < len(self.programs):
            program = self.programs[len(done)]
            call = ToolCallPart("execute_code", {"code": program}, tool_call_id=f"c{len(done)}")
            return ModelResponse(parts=[call])
        return ModelResponse(parts=[TextPart(ANSWER_PREFIX + str(done[0].content))])

    def model(self) -> FunctionModel:
        return FunctionModel(self)


# -- OpenAI Agents SDK: agents.testing.ScriptedModel ---------------------------------------------
def function_outputs(call: ModelCall) -> dict[str, str]:
    """The function-call outputs the model has been given so far, by call id."""
    items: list[Any] = call.input if isinstance(call.input, list) else []
    return {
        item["call_id"]: str(item["output"])
        for item in items
        if isinstance(item, dict) and item.get("type") == "function_call_output"
    }


def agents_auditor(program: str) -> ScriptedModel:
    def answer(call: ModelCall) -> list[Any]:
        return [assistant_message(ANSWER_PREFIX + function_outputs(call)["audit"])]

    first = [function_call("execute_code", {"code": program}, call_id="audit")]
    return ScriptedModel([first, ModelStep.respond(answer)])


# -- LangChain: GenericFakeChatModel -----------------------------------------------------------
class LangChainAuditor(GenericFakeChatModel):
    """LangChain's fake chat model, binding tools as provider models do (OpenAI tool dicts) and
    answering a tool result with its content, as a model reading it would."""

    bound: list[dict[str, Any]] = Field(default_factory=list)

    def bind_tools(
        self, tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool], **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        self.bound = [convert_to_openai_tool(t) for t in tools]
        return self.bind(tools=self.bound, **kwargs)

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        if isinstance(messages[-1], ToolMessage):
            self.messages = iter([AIMessage(ANSWER_PREFIX + str(messages[-1].content))])
        return super()._generate(messages, *args, **kwargs)


def langchain_auditor(program: str) -> LangChainAuditor:
    call = {"name": "execute_code", "args": {"code": program}, "id": "call_1", "type": "tool_call"}
    return LangChainAuditor(messages=iter([AIMessage("", tool_calls=[call])]))


# -- smolagents: a Model subclass --------------------------------------------------------------
def _smolagents_call(name: str, arguments: dict[str, Any], call_id: str) -> ChatMessage:
    function = ChatMessageToolCallFunction(name=name, arguments=arguments)
    call = ChatMessageToolCall(function=function, id=call_id, type="function")
    return ChatMessage(role=MessageRole.ASSISTANT, content="", tool_calls=[call])


class SmolagentsAuditor(Model):  # type: ignore[misc]  # smolagents is untyped
    """Runs one program, then calls ``final_answer`` with what the program printed."""

    def __init__(self, program: str) -> None:
        super().__init__(model_id="scripted-auditor")
        self.program = program
        self.offered: list[Any] = []

    def generate(
        self,
        messages: list[ChatMessage],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, str] | None = None,
        tools_to_call_from: list[Any] | None = None,
        **kwargs: Any,
    ) -> ChatMessage:
        self.offered.append(tools_to_call_from)
        observations = [
            part["text"]
            for m in messages
            if m.role == MessageRole.TOOL_RESPONSE and isinstance(m.content, list)
            for part in m.content
        ]
        if not observations:
            return _smolagents_call("execute_code", {"code": self.program}, "call_1")
        output = observations[-1].removeprefix("Observation:\n")
        return _smolagents_call("final_answer", {"answer": ANSWER_PREFIX + output}, "call_2")

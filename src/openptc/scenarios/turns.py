"""What a scripted brain needs to read a conversation and write its next turn, as a model would.

Shared by every scenario's brains: the tool calls made so far, their results, a new call with a
deterministic id, whether the code tool is on offer, and the program's printed output.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from openptc.models.base import Message, ModelRequest, ToolResultBlock, ToolUseBlock
from openptc.models.scripted import Turn
from openptc.prompts import CODE_TOOL_NAME

SERVICE_CODE_TOOL = "code_execution"
"""The code tool's name on Anthropic's API (and so behind ``ptc serve``)."""


def tool_uses(messages: tuple[Message, ...]) -> Iterator[ToolUseBlock]:
    """Every tool use of the conversation, in order."""
    for message in messages:
        yield from message.tool_uses


def results_by_id(messages: tuple[Message, ...]) -> dict[str, ToolResultBlock]:
    """Every tool result of the conversation, by the id of the call it answers."""
    return {r.tool_use_id: r for m in messages for r in m.results}


def call(request: ModelRequest, name: str, **arguments: Any) -> list[ToolUseBlock]:
    """One tool use with an id that is unique and deterministic within the conversation."""
    return calls(request, [(name, arguments)])


def calls(request: ModelRequest, wanted: list[tuple[str, dict[str, Any]]]) -> list[ToolUseBlock]:
    """Several tool uses in one turn (parallel tool calls, as strong models make them)."""
    n = sum(1 for _ in tool_uses(request.messages))
    return [
        ToolUseBlock(id=f"toolu_{n + i:03d}", name=name, input=arguments)
        for i, (name, arguments) in enumerate(wanted, start=1)
    ]


def offers_code_tool(request: ModelRequest) -> bool:
    """True in ptc and hybrid mode (and behind the proxy): the model may write a program."""
    return any(spec.name in (CODE_TOOL_NAME, SERVICE_CODE_TOOL) for spec in request.tools)


def run_program(request: ModelRequest, code: str) -> list[ToolUseBlock]:
    """A call of the code tool on offer with ``code``."""
    name = next(s.name for s in request.tools if s.name in (CODE_TOOL_NAME, SERVICE_CODE_TOOL))
    return call(request, name, code=code)


def last_result(request: ModelRequest) -> ToolResultBlock | None:
    """The newest tool result, when the last message carries one (a program's output in ptc)."""
    results = request.messages[-1].results
    return results[-1] if results else None


class Results:
    """The results of one conversation's calls, parsed as JSON, found by tool and argument."""

    def __init__(self, request: ModelRequest) -> None:
        self._uses = list(tool_uses(request.messages))
        self._results = results_by_id(request.messages)

    def failed(self) -> str | None:
        """The text of the newest failed call, if any failed."""
        errors = [self._results[u.id] for u in self._uses if u.id in self._results]
        bad = [r for r in errors if r.is_error]
        return bad[-1].content if bad else None

    def of(self, name: str, key: str | None = None) -> dict[str, Any]:
        """Parsed results of tool ``name``, by the value of argument ``key`` (or by call id)."""
        found: dict[str, Any] = {}
        for use in self._uses:
            if use.name == name and use.id in self._results:
                k = str(use.input.get(key, "")) if key else use.id
                found[k] = json.loads(self._results[use.id].content)
        return found

    def called(self, name: str) -> bool:
        return any(u.name == name for u in self._uses)


def program_turn(
    request: ModelRequest, program: str, task: str, answer: Callable[[str], Turn]
) -> Turn:
    """A ptc-mode brain's two turns: run ``program``, then ``answer`` from what it printed (or
    say that ``task``, e.g. "the lookup", failed, with the program's error)."""
    result = last_result(request)
    if result is None:
        return run_program(request, program)
    if result.is_error:
        return f"I could not finish {task}; the program failed:\n{result.content}"
    return answer(result.content.strip())

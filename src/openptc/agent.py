"""The agent loop: ask the model, run what it asks for, feed the results back, until it answers.

One loop serves the three modes, so PTC and direct figures come from the same code path:
- ptc: the model sees one tool, ``execute_code``, whose description lists the tools as stubs;
- direct: the model sees the direct-callable tools and calls them one round trip at a time;
- hybrid: both, each tool offered to the callers it allows.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from openptc.code_tool import REOPENED_NOTICE
from openptc.events import (
    EventSink,
    ExecutionFinished,
    ModelCallFinished,
    ModelCallStarted,
    ProgramStarted,
    RunFinished,
    RunStarted,
)
from openptc.models.base import (
    Message,
    Model,
    ModelError,
    ModelRequest,
    ModelResponse,
    ModelSettings,
    TextSink,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
    close_model,
)
from openptc.models.tokens import (
    count_message_tokens,
    count_response_tokens,
    count_spec_tokens,
    count_text,
)
from openptc.observing import Emitter, ObservedTools, one_line
from openptc.prompts import (
    CODE_TOOL_NAME,
    Mode,
    code_tool_spec,
    session_lost_text,
    system_prompt,
)
from openptc.runs import RunResult, RunUsage, StopKind
from openptc.sandbox.base import Execution, Limits, Sandbox, ToolCallError, ToolHost
from openptc.sandbox.held_session import HeldSession, SessionLost
from openptc.tools import Toolbox, wire_name

__all__ = ["Agent", "RunResult", "RunUsage", "StopKind"]  # results re-exported from ``runs``


@dataclass
class _Ledger:
    """Mutable accounting of one run; frozen into ``RunUsage`` at the end."""

    started: float = field(default_factory=time.perf_counter)
    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    tool_calls: int = 0
    program_errors: int = 0
    failed_in_a_row: int = 0
    tiktoken_used: bool = False
    programs: list[str] = field(default_factory=list)
    executions: list[Execution] = field(default_factory=list)

    def usage(self) -> RunUsage:
        return RunUsage(
            model_calls=self.model_calls,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            tool_calls=self.tool_calls,
            executions=len(self.executions),
            program_errors=self.program_errors,
            wall_time_s=time.perf_counter() - self.started,
            tokens_counted="tiktoken" if self.tiktoken_used else "provider",
            cache_read_tokens=self.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens,
            reasoning_tokens=self.reasoning_tokens,
        )

    def finished(self, stop: str, error: str | None) -> RunFinished:
        return RunFinished(
            stop, self.model_calls, self.tool_calls, self.input_tokens, self.output_tokens, error
        )


class _InputCounter:
    """Counts a request's input tokens with tiktoken, each message of the growing conversation
    only once (a direct run re-sends thousands of records on every call).

    System prompt and tool specs are the same on every call of a run, so they are counted once.
    """

    def __init__(self, system: str, tools: tuple[ToolSpec, ...]) -> None:
        self._fixed = count_text(system) + sum(count_spec_tokens(s) for s in tools)
        self._messages: list[int] = []

    def count(self, request: ModelRequest) -> int:
        fresh = request.messages[len(self._messages) :]
        self._messages.extend(count_message_tokens(m) for m in fresh)
        return self._fixed + sum(self._messages[: len(request.messages)])


def _json_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Agent:
    """Runs a model against a toolbox in one mode and accounts for every call it makes.

    ``settings`` say how to sample (reasoning, caching, temperature, ...; see
    ``ModelSettings``). A model given as a string is the agent's own: ``aclose()`` (or leaving
    ``async with Agent(...)``) closes its connections. A model object passed in is borrowed.
    """

    def __init__(
        self,
        model: Model | str,
        tools: Toolbox | Iterable[Any],
        sandbox: Sandbox | None = None,
        *,
        mode: Mode = "ptc",
        max_turns: int = 40,
        limits: Limits | None = None,
        max_program_retries: int = 3,
        max_tokens: int = 4096,
        settings: ModelSettings | None = None,
    ) -> None:
        if mode not in ("ptc", "direct", "hybrid"):
            raise ValueError(f"unknown mode {mode!r}; expected 'ptc', 'direct' or 'hybrid'")
        if isinstance(model, str):
            from openptc.models import model_from_string

            model = model_from_string(model)
            self._owns_model = True
        else:
            self._owns_model = False
        self.model = model
        self.settings = settings or ModelSettings()
        self.toolbox = tools if isinstance(tools, Toolbox) else Toolbox(tools)
        self.mode: Mode = mode
        self.sandbox = sandbox
        self.max_turns = max_turns
        self.limits = limits
        self.max_program_retries = max_program_retries
        self.max_tokens = max_tokens
        self.system = system_prompt(mode)
        self._offer_tools()

    def _offer_tools(self) -> None:
        """What the model is offered, from the toolbox as it is now (rendered again when its
        ``version`` moves: an MCP server changed its list)."""
        self._tools_version = self.toolbox.version
        uses_code = self.mode != "direct"
        self._code_tools = self.toolbox.for_caller("code") if uses_code else Toolbox([])
        direct = self.mode != "ptc"
        self._direct_tools = self.toolbox.for_caller("direct") if direct else Toolbox([])
        specs = [ToolSpec.from_dict(s) for s in self._direct_tools.specs()]
        self._direct_names = frozenset(s.name for s in specs)  # as the model names them
        self._direct_by_wire = {wire_name(t.name): t.name for t in self._direct_tools}
        offered = set(self._code_tools.names) | set(self._direct_tools.names)
        self._offered = tuple(n for n in self.toolbox.names if n in offered)  # for RunStarted
        if uses_code and CODE_TOOL_NAME in self._direct_names:
            raise ValueError(f"a tool may not be named {CODE_TOOL_NAME!r}: that is the code tool")
        if uses_code:
            specs.insert(0, code_tool_spec(self._code_tools.render_stubs()))
        self.tool_specs: tuple[ToolSpec, ...] = tuple(specs)

    async def aclose(self) -> None:
        """Close the model's connections if the agent made the model (from a string)."""
        if self._owns_model:
            await close_model(self.model)

    async def __aenter__(self) -> Agent:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    @property
    def callable_names(self) -> tuple[str, ...]:
        """What the model may call as a tool use, in the order it is offered."""
        return tuple(s.name for s in self.tool_specs)

    async def run(
        self,
        prompt: str,
        *,
        on_text: TextSink | None = None,
        on_event: EventSink | None = None,
    ) -> RunResult:
        """Run the loop for one prompt; the sandbox session lives exactly as long as the run.

        A model error on the first call raises (nothing happened yet: a missing key, a wrong
        model). Later, the run ends with ``stop="model_error"`` and keeps what was done: the
        transcript, the programs, the tool calls that ran and the tokens spent.

        ``on_event`` gets the run's events (``openptc.events``) as they happen, each tool call
        of a program while the program runs; ``RunFinished`` comes last, also when the run
        raises. An exception from ``on_event`` is logged and the run goes on
        (``openptc.observing`` says why).
        """
        if self.toolbox.version != self._tools_version:
            self._offer_tools()
        emit = Emitter(on_event)
        ledger = _Ledger()
        # The run's session: a sandbox made here (none was lent) is the run's and ends with it.
        code = HeldSession(self.sandbox, notice=REOPENED_NOTICE, limits=self.limits, label="a run")
        messages: list[Message] = [Message.user(prompt)]
        failure: str | None = None
        emit(RunStarted(self.model.name, self.mode, self._offered))
        try:
            try:
                answer, stop = await self._loop(messages, ledger, code, on_text, emit)
            except ModelError as exc:
                if ledger.model_calls == 0:
                    raise
                answer, stop = f"Stopped: the model call failed: {exc}", "model_error"
                failure = one_line(exc)
            finally:
                await code.aclose()
        except BaseException as exc:
            emit(ledger.finished("error", one_line(exc)))
            emit.report()
            raise
        emit(ledger.finished(stop, failure))
        emit.report()
        return RunResult(
            answer=answer,
            transcript=tuple(messages),
            usage=ledger.usage(),
            programs=tuple(ledger.programs),
            executions=tuple(ledger.executions),
            mode=self.mode,
            model_label=self.model.label,
            stop=stop,
        )

    async def _loop(
        self,
        messages: list[Message],
        ledger: _Ledger,
        code: HeldSession,
        on_text: TextSink | None,
        emit: Emitter,
    ) -> tuple[str, StopKind]:
        """Sample, answer tool uses, repeat; ``messages`` grows in place (kept on failure)."""
        counter = _InputCounter(self.system, self.tool_specs)

        for _ in range(self.max_turns):
            request = ModelRequest(
                self.system,
                tuple(messages),
                self.tool_specs,
                self.max_tokens,
                settings=self.settings,
            )
            number = ledger.model_calls + 1
            emit(ModelCallStarted(number))
            started = time.perf_counter()
            response = await self.model.generate(request, on_text=on_text)
            self._account(ledger, request, response, counter)
            messages.append(response.to_message())

            uses = response.tool_uses
            took = time.perf_counter() - started
            emit(ModelCallFinished(number, response.usage, response.stop_reason, len(uses), took))
            if not uses:
                stop: StopKind = "answered"
                if response.stop_reason in ("max_tokens", "refusal"):  # a stop sequence answers
                    stop = response.stop_reason
                return response.text, stop

            results = await self._answer_all(uses, ledger, code, emit)
            messages.append(Message.tool_results(results))
            if ledger.failed_in_a_row >= self.max_program_retries:
                last = results[-1].content if results else ""
                answer = (
                    f"Stopped: {ledger.failed_in_a_row} programs in a row failed "
                    f"(limit {self.max_program_retries}), so no answer was reached. "
                    f"The last failure:\n{last}"
                )
                return answer, "program_errors"

        answer = (
            f"Stopped: the model made {self.max_turns} calls (max_turns) without giving a final "
            "answer."
        )
        return answer, "max_turns"

    def _account(
        self,
        ledger: _Ledger,
        request: ModelRequest,
        response: ModelResponse,
        counter: _InputCounter,
    ) -> None:
        ledger.model_calls += 1
        if response.usage is not None:
            u = response.usage
            ledger.input_tokens += u.input_tokens + u.cache_read_tokens + u.cache_write_tokens
            ledger.output_tokens += u.output_tokens
            ledger.cache_read_tokens += u.cache_read_tokens
            ledger.cache_write_tokens += u.cache_write_tokens
            ledger.reasoning_tokens += u.reasoning_tokens
        else:
            ledger.tiktoken_used = True
            ledger.input_tokens += counter.count(request)
            ledger.output_tokens += count_response_tokens(response)

    async def _answer_all(
        self, uses: tuple[ToolUseBlock, ...], ledger: _Ledger, code: HeldSession, emit: Emitter
    ) -> list[ToolResultBlock]:
        """Answer every tool use of one turn; direct calls run concurrently, programs in order."""
        if len(uses) == 1:
            return [await self._answer(uses[0], ledger, code, emit)]
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._answer(u, ledger, code, emit)) for u in uses]
        except ExceptionGroup as failed:  # surface the failure itself, not a wrapper around it
            raise failed.exceptions[0] from failed
        return [t.result() for t in tasks]

    async def _answer(
        self, use: ToolUseBlock, ledger: _Ledger, code: HeldSession, emit: Emitter
    ) -> ToolResultBlock:
        if use.input_error is not None:
            message = (
                f"The arguments of your call to {use.name!r} are not a valid JSON object "
                f"({use.input_error}). Call the tool again with a JSON object."
            )
            return ToolResultBlock(use.id, message, is_error=True)
        if use.name == CODE_TOOL_NAME and self.mode != "direct":
            return await self._run_program(use, ledger, code, emit)
        if use.name in self._direct_names:
            return await self._call_direct(use, ledger, emit)
        return ToolResultBlock(use.id, self._not_callable(use.name), is_error=True)

    def _not_callable(self, name: str) -> str:
        allowed = ", ".join(self.callable_names) or "(none)"
        if name in {t.name for t in self._code_tools}:
            return (
                f"Tool {name!r} can only be called from inside a program run by "
                f"{CODE_TOOL_NAME}, not directly. Tools you may call: {allowed}."
            )
        return f"Unknown tool {name!r}. Tools you may call: {allowed}."

    async def _call_direct(
        self, use: ToolUseBlock, ledger: _Ledger, emit: Emitter
    ) -> ToolResultBlock:
        ledger.tool_calls += 1
        name = self._direct_by_wire.get(use.name, use.name)  # events name tools as programs do
        tools = ObservedTools(self._direct_tools, emit, program=None)
        try:
            value = await tools.call(name, dict(use.input))
        except ToolCallError as exc:
            return ToolResultBlock(use.id, f"{exc.kind}: {exc}", is_error=True)
        return ToolResultBlock(use.id, _json_text(value))

    async def _run_program(
        self, use: ToolUseBlock, ledger: _Ledger, code: HeldSession, emit: Emitter
    ) -> ToolResultBlock:
        program = use.input.get("code")
        if not isinstance(program, str) or not program.strip():
            message = f'{CODE_TOOL_NAME} needs {{"code": "<a Python program>"}} as its input.'
            return ToolResultBlock(use.id, message, is_error=True)
        ledger.programs.append(program)
        number = len(ledger.programs)
        emit(ProgramStarted(number, program))
        tools: ToolHost = self._code_tools
        if emit.active:  # each call reported as the sandbox makes it
            tools = ObservedTools(self._code_tools, emit, program=number)
        try:
            execution = await code.run(program, tools)
        except SessionLost as lost:  # the next program gets a new session: the model is told
            emit(ExecutionFinished(number, None, one_line(lost.__cause__ or lost)))
            ledger.program_errors += 1
            ledger.failed_in_a_row += 1
            return ToolResultBlock(use.id, session_lost_text(lost), is_error=True)
        except BaseException as exc:  # no session could be opened: the run fails
            emit(ExecutionFinished(number, None, one_line(exc)))
            raise
        ledger.executions.append(execution)
        ledger.tool_calls += len(execution.tool_calls)
        error = execution.error
        failed = f"{error.type}: {error.message}".strip().split("\n")[0] if error else None
        emit(ExecutionFinished(number, execution, failed))
        if execution.ok:
            ledger.failed_in_a_row = 0
        else:
            ledger.program_errors += 1
            ledger.failed_in_a_row += 1
        return ToolResultBlock(use.id, execution.to_model_text(), is_error=not execution.ok)

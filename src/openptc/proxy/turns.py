"""One ``POST /v1/messages``: the backend model, the container's program, and the blocks out.

A turn runs the backend model; when it writes code, the code runs in the container's session
and the turn waits for the program's next event. The program pausing on client tools ends the
response (``stop_reason: tool_use``, one ``tool_use`` block per call it issued before it
blocked); the program finishing puts its ``code_execution_tool_result`` in the response and the
model goes on. Blocks are yielded as they are made, so the same turn serves both plain and
streaming responses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from openptc.models.base import (
    Message,
    Model,
    ModelError,
    ModelRequest,
    ModelResponse,
    TextBlock,
    ToolChoice,
    ToolResultBlock,
    ToolUseBlock,
)
from openptc.models.errors import (
    ModelBadRequest,
    ModelRateLimited,
)
from openptc.models.tokens import count_request_tokens, count_response_tokens
from openptc.proxy.config import ApiKey, ProxyConfig
from openptc.proxy.containers import ContainerManager, LiveContainer, new_id
from openptc.proxy.errors import ApiError, invalid
from openptc.proxy.history import CONTAINER_REQUIRED, Conversation, read_conversation, render_output
from openptc.proxy.program import Diverged, Finished, LiveProgram, Paused, ProgramEvent
from openptc.proxy.prompting import backend_tools, signature
from openptc.proxy.records import ProgramRecord
from openptc.proxy.tooling import RequestTools, request_tools
from openptc.proxy.wire import (
    CODE_TOOL_NAME,
    CodeCaller,
    CodeExecutionError,
    CodeExecutionResult,
    CodeExecutionToolResultContent,
    Container,
    DirectCaller,
    MessagesRequest,
    ResponseBlock,
    ServerToolUseContent,
    StopReason,
    TextContent,
    ToolUseContent,
    Usage,
)
from openptc.sandbox.base import Execution, ToolSignature

log = logging.getLogger("openptc.proxy")


@dataclass(frozen=True)
class TurnEnd:
    stop_reason: StopReason
    usage: Usage
    container: Container | None


@dataclass(frozen=True)
class TextDelta:
    """A piece of the backend's text, passed on while it generates (streaming requests)."""

    text: str


class Started:
    """Yielded once the request is valid and its container held: errors after it are streamed."""


STARTED = Started()

TurnEvent = ResponseBlock | TextDelta | TurnEnd | Started


@dataclass
class _Tokens:
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0

    def add(self, request: ModelRequest, response: ModelResponse) -> None:
        if response.usage is None:  # the backend reports none: count with the tokenizer
            self.input += count_request_tokens(request)
            self.output += count_response_tokens(response)
        else:
            self.input += response.usage.input_tokens
            self.output += response.usage.output_tokens
            self.cache_read += response.usage.cache_read_tokens
            self.cache_write += response.usage.cache_write_tokens

    def wire(self) -> Usage:
        return Usage(
            input_tokens=self.input,
            output_tokens=self.output,
            cache_read_input_tokens=self.cache_read,
            cache_creation_input_tokens=self.cache_write,
        )


@dataclass
class _Turn:
    """The state of one request while it runs."""

    request: MessagesRequest
    key: ApiKey
    tools: RequestTools
    conversation: Conversation
    model: Model
    tokens: _Tokens = field(default_factory=_Tokens)
    container: LiveContainer | None = None


def execution_result(execution: Execution, notice: str | None) -> CodeExecutionResult:
    """An execution as the API reports it: stdout, then everything else in stderr."""
    stderr: list[str] = [execution.stderr.rstrip("\n")] if execution.stderr else []
    stderr += [f"[note] {n}" for n in ((notice,) if notice else ()) + execution.notices]
    if execution.error is not None:
        stderr.append(execution.error.render().rstrip("\n"))
        if execution.tool_calls:
            stderr.append(f"[tool calls that ran before the error] {execution.call_summary()}")
    return CodeExecutionResult(
        stdout=execution.stdout,
        stderr="\n".join(stderr),
        return_code=0 if execution.error is None else 1,
    )


def _model_error(exc: Exception) -> ApiError:
    """A backend failure as the client sees it; an adapter's own bug is still a 502, not ours."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ModelBadRequest):
        return invalid(f"the backend model refused the request: {exc}")
    if isinstance(exc, ModelRateLimited):
        return ApiError("rate_limit_error", f"the backend model is rate limited: {exc}")
    if not isinstance(exc, ModelError):
        log.exception("the backend model raised", exc_info=exc)
        exc = ModelError(f"{type(exc).__name__}: {exc}")
    return ApiError("api_error", f"the backend model failed: {exc}", status=502)


class TurnRunner:
    """Runs turns against the configured backends and the container manager."""

    def __init__(
        self,
        config: ProxyConfig,
        containers: ContainerManager,
        model_for: Callable[[str], Model],
    ) -> None:
        self._config = config
        self._containers = containers
        self._model_for = model_for

    async def run(self, request: MessagesRequest, key: ApiKey) -> AsyncIterator[TurnEvent]:
        """Validate everything first (errors before any output), then yield the blocks."""
        tools = request_tools(request)
        conversation = read_conversation(request.messages)
        model = self._model_for(self._config.model_string(request.model))
        turn = _Turn(request, key, tools, conversation, model)
        pending = conversation.pending
        async with contextlib.AsyncExitStack() as stack:
            if pending is not None:
                container_id = request.container_id
                if not container_id:
                    raise invalid(CONTAINER_REQUIRED)
                if tools.code is None:
                    raise invalid(
                        "tools: the code execution tool must stay in `tools` while its programs "
                        "have pending tool calls"
                    )
                turn.container = await self._open_and_hold(container_id, key, stack)
                try:
                    program = await self._resume(turn)
                except ApiError:
                    raise  # the request was wrong; the container is untouched
                except BaseException:
                    await self._containers.forget(turn.container)  # retry from the record
                    raise
            elif request.container_id:
                turn.container = await self._open_and_hold(request.container_id, key, stack)
            elif tools.code is not None:
                await self._containers.check_room(key)  # a 429 now, not inside a stream
            yield STARTED
            try:
                if pending is not None:
                    event = await program.next_event()
                    async for block in self._after_program(turn, program, event):
                        yield block
                    assert turn.container is not None
                    if turn.container.program is not None:  # paused again: the response ends
                        return
                async for block in self._model_loop(turn, stack):
                    yield block
            except BaseException:
                if turn.container is not None:  # unsaved progress: rebuild from the record
                    await self._containers.forget(turn.container)
                raise

    async def _open_and_hold(
        self, container_id: str, key: ApiKey, stack: contextlib.AsyncExitStack
    ) -> LiveContainer:
        """The container, locked for this request. One that waited for the lock may find the
        container discarded by the request before (it failed): it opens it again, rebuilt from
        its record, rather than run on a discarded one."""
        for _ in range(3):
            container = await self._containers.open(container_id, key)
            await container.lock.acquire()
            if self._containers.is_current(container):
                stack.callback(container.lock.release)
                return container
            container.lock.release()
        raise ApiError(
            "conflict_error",
            f"container '{container_id}' keeps changing under this request; send it again",
        )

    # -- resuming a paused program ----------------------------------------------------------------
    async def _resume(self, turn: _Turn) -> LiveProgram:
        container = turn.container
        pending = turn.conversation.pending
        assert container is not None and pending is not None
        programs = container.history.programs
        record = programs[-1] if programs else None
        live = container.program
        if record is not None and record.finished and (live is None or live.record is not record):
            record = None  # finished, and its result already went out
        if record is None or record.server_tool_use_id != pending.server_tool_use_id:
            raise invalid(
                f"container '{container.id}' has no paused program "
                f"'{pending.server_tool_use_id}'; it finished, timed out, or ran elsewhere"
            )
        waiting = {c.tool_use_id for c in record.pending()}
        known = {c.tool_use_id for c in record.calls}
        unknown = [i for i in pending.answers if i not in known]
        if unknown:
            raise invalid(
                f"unexpected `tool_use_id` found in `tool_result` blocks: {', '.join(unknown)}. "
                "They are not pending calls of the container's program."
            )
        missing = sorted(waiting - set(pending.answers))
        if missing:
            raise invalid(
                "`tool_use` ids were found without `tool_result` blocks immediately after: "
                f"{', '.join(missing)}. Every pending call of the program needs its result."
            )
        program = live
        if program is None:  # not live here: re-run it with every result given so far
            for call in record.calls:
                if call.tool_use_id in waiting:  # a late answer to a timed-out call is not
                    call.result, call.is_error = pending.answers[call.tool_use_id]
            program = await self._start(turn, record)
        else:
            for tool_use_id, (text, is_error) in pending.answers.items():
                program.answer(tool_use_id, text, is_error)
        return program

    def _signatures(self, turn: _Turn) -> Callable[[ProgramRecord], list[ToolSignature]]:
        def signatures(record: ProgramRecord) -> list[ToolSignature]:
            return [ToolSignature(n, tuple(p)) for n, p in record.tools.items()]

        return signatures

    async def _start(self, turn: _Turn, record: ProgramRecord) -> LiveProgram:
        container = turn.container
        assert container is not None
        session = await self._containers.session(
            container, self._signatures(turn), lambda: new_id("toolu_")
        )
        program = LiveProgram(
            record,
            self._signatures(turn)(record),
            new_call_id=lambda: new_id("toolu_"),
            result_timeout_s=self._config.tool_result_timeout_s,
        )
        container.program = program
        program.start(session, self._config.program_timeout_s)
        return program

    async def _after_program(
        self, turn: _Turn, program: LiveProgram, event: ProgramEvent
    ) -> AsyncIterator[TurnEvent]:
        """A paused program ends the response; a finished one's result goes to the model."""
        container = turn.container
        assert container is not None
        server_id = program.record.server_tool_use_id
        if isinstance(event, Paused):
            caller = CodeCaller(type=turn.tools.caller_type, tool_id=server_id)  # type: ignore[arg-type]
            for call in event.calls:
                call.announced = True  # from now on the client owes its result
                yield ToolUseContent(
                    id=call.tool_use_id, name=call.tool, input=call.input, caller=caller
                )
            await self._containers.save(container)
            log.info(
                "program paused on client tools",
                extra={"container_id": container.id, "calls": len(event.calls)},
            )
            yield TurnEnd("tool_use", turn.tokens.wire(), container.wire())
            return
        container.program = None
        if isinstance(event, Finished):
            result = execution_result(event.execution, container.notice)
            container.notice = None
        else:
            result = await self._diverged(container, event)
        block = CodeExecutionToolResultContent(tool_use_id=server_id, content=result)
        turn.conversation.messages.append(
            Message(
                "user",
                (ToolResultBlock(server_id, render_output(result), result.return_code != 0),),
            )
        )
        log.info(
            "program finished",
            extra={"container_id": container.id, "return_code": result.return_code},
        )
        yield block

    async def _diverged(self, container: LiveContainer, event: Diverged) -> CodeExecutionResult:
        """Say so instead of answering wrongly; the container starts afresh."""
        log.warning(  # the tool's name only: its arguments are the client's data
            "program could not go on",
            extra={"container_id": container.id, "cause": event.cause, "tool": event.tool},
        )
        await self._containers.reset(container)
        if event.cause == "diverged":
            what = (
                "This program was paused on another server and could not be resumed here: "
                f"{event.message}. Nothing after its last completed tool call ran"
            )
        else:
            what = f"This program could not finish: {event.message}"
        return CodeExecutionResult(
            stdout="",
            stderr=(
                f"{what}; the container was reset, so variables from earlier programs are "
                "gone. Run the program again."
            ),
            return_code=1,
        )

    # -- the model ------------------------------------------------------------------------------
    def _model_request(self, turn: _Turn) -> ModelRequest:
        choice = turn.request.tool_choice
        return ModelRequest(
            system=turn.request.system_text(),
            messages=tuple(turn.conversation.messages),
            tools=backend_tools(turn.tools),
            max_tokens=turn.request.max_tokens,
            tool_choice=None
            if choice is None
            else ToolChoice(choice.type, choice.name if choice.type == "tool" else None),
        )

    async def _model_loop(
        self, turn: _Turn, stack: contextlib.AsyncExitStack
    ) -> AsyncIterator[TurnEvent]:
        runs = 0
        while True:
            request = self._model_request(turn)
            generated: list[ModelResponse] = []
            streamed = False
            async for delta in self._generate(turn, request, generated):
                streamed = True
                yield delta
            response = generated[0]
            turn.tokens.add(request, response)
            code_use = next(
                (u for u in response.tool_uses if u.name == CODE_TOOL_NAME and turn.tools.code),
                None,
            )
            if code_use is None:
                async for event in self._final_blocks(turn, response, streamed):
                    yield event
                return
            texts = []
            for block in response.content:
                if block is code_use:
                    break
                if isinstance(block, TextBlock) and block.text:
                    texts.append(block)
                    if not streamed:
                        yield TextContent(text=block.text)
            server_id = new_id("srvtoolu_")
            code = code_use.input.get("code")
            yield ServerToolUseContent(
                id=server_id, name=CODE_TOOL_NAME, input=dict(code_use.input)
            )
            turn.conversation.messages.append(
                Message(
                    "assistant",
                    (*texts, ToolUseBlock(server_id, CODE_TOOL_NAME, dict(code_use.input))),
                )
            )
            if code_use.input_error or not isinstance(code, str):
                yield self._invalid_code(turn, server_id)
                runs += 1  # a backend that keeps failing to write code must not loop forever
                if runs >= self._config.max_code_runs_per_request:
                    container = turn.container.wire() if turn.container is not None else None
                    if turn.container is not None:
                        await self._containers.save(turn.container)
                    yield TurnEnd("pause_turn", turn.tokens.wire(), container)
                    return
                continue
            if turn.container is None:
                turn.container = await self._containers.create(turn.key)
                await stack.enter_async_context(turn.container.lock)
            await self._containers.abandon_paused(turn.container)
            record = ProgramRecord(
                server_tool_use_id=server_id,
                code=code,
                tools={t.name: list(signature(t).params) for t in turn.tools.from_code()},
            )
            turn.container.history.programs.append(record)
            program = await self._start(turn, record)
            log.info("program started", extra={"container_id": turn.container.id})
            program_event = await program.next_event()
            async for out in self._after_program(turn, program, program_event):
                yield out
            if turn.container.program is not None:
                return
            runs += 1
            if runs >= self._config.max_code_runs_per_request:
                await self._containers.save(turn.container)
                yield TurnEnd("pause_turn", turn.tokens.wire(), turn.container.wire())
                return

    def _invalid_code(self, turn: _Turn, server_id: str) -> CodeExecutionToolResultContent:
        message = "code_execution needs one string argument `code` holding a Python program"
        turn.conversation.messages.append(
            Message("user", (ToolResultBlock(server_id, message, True),))
        )
        return CodeExecutionToolResultContent(
            tool_use_id=server_id, content=CodeExecutionError(error_code="invalid_tool_input")
        )

    async def _generate(
        self, turn: _Turn, request: ModelRequest, out: list[ModelResponse]
    ) -> AsyncIterator[TextDelta]:
        """Call the backend; when the client streams, pass its text on as it arrives."""
        if not turn.request.stream:
            try:
                out.append(await turn.model.generate(request))
            except Exception as exc:
                raise _model_error(exc) from exc
            return
        chunks: asyncio.Queue[str | None] = asyncio.Queue()

        async def generate() -> ModelResponse:
            try:
                return await turn.model.generate(request, on_text=chunks.put_nowait)
            finally:
                chunks.put_nowait(None)

        task = asyncio.create_task(generate())
        try:
            while (chunk := await chunks.get()) is not None:
                if chunk:
                    yield TextDelta(chunk)
            out.append(await task)
        except Exception as exc:
            raise _model_error(exc) from exc
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _final_blocks(
        self, turn: _Turn, response: ModelResponse, streamed: bool = False
    ) -> AsyncIterator[TurnEvent]:
        """Text and direct tool calls: the turn ends here."""
        caller = DirectCaller() if turn.tools.code is not None else None
        uses = 0
        for block in response.content:
            if isinstance(block, TextBlock) and block.text:
                if not streamed:
                    yield TextContent(text=block.text)
            elif isinstance(block, ToolUseBlock):
                uses += 1
                yield ToolUseContent(
                    id=block.id, name=block.name, input=dict(block.input), caller=caller
                )
        stop: StopReason = "tool_use" if uses else response.stop_reason
        if stop == "tool_use" and not uses:
            stop = "end_turn"
        container = None
        if turn.container is not None:
            await self._containers.save(turn.container)
            container = turn.container.wire()
        yield TurnEnd(stop, turn.tokens.wire(), container)

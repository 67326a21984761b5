"""One ``POST /v1/messages``: the backend model, the container's program, and the blocks out.

A turn runs the backend model; when it writes code, the code runs in the container's session
and the turn waits for the program's next event. The program pausing on client tools ends the
response (``stop_reason: tool_use``, one ``tool_use`` block per call it issued before it
blocked); the program finishing puts its ``code_execution_tool_result`` in the response and the
model goes on. Blocks are yielded as they are made, so the same turn serves both plain and
streaming responses. This module holds the runner and its model loop; the programs' side (start,
resume, outcome) is in ``turn_programs``, what a turn yields in ``turn_events``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from openptc.models.base import (
    Message,
    Model,
    ModelError,
    ModelRequest,
    ModelResponse,
    ReasoningBlock,
    ToolChoice,
    ToolResultBlock,
    ToolUseBlock,
)
from openptc.models.errors import (
    ModelBadRequest,
    ModelRateLimited,
)
from openptc.models.settings import UnsupportedSetting
from openptc.proxy.config import ApiKey, ProxyConfig
from openptc.proxy.containers import ContainerManager, LiveContainer, new_id
from openptc.proxy.errors import ApiError, invalid
from openptc.proxy.history import CONTAINER_REQUIRED, read_conversation
from openptc.proxy.metrics import ProxyMetrics
from openptc.proxy.prompting import backend_tools, signature
from openptc.proxy.records import ProgramRecord
from openptc.proxy.request_settings import backend_max_tokens, backend_settings
from openptc.proxy.tooling import request_tools
from openptc.proxy.turn_blocks import before, client_block, kept
from openptc.proxy.turn_events import STARTED, TextDelta, TurnEnd, TurnEvent
from openptc.proxy.turn_programs import TurnPrograms
from openptc.proxy.turn_state import Turn
from openptc.proxy.wire import (
    CODE_TOOL_NAME,
    CodeExecutionError,
    CodeExecutionToolResultContent,
    DirectCaller,
    MessagesRequest,
    ServerToolUseContent,
    StopReason,
    ToolUseContent,
)

log = logging.getLogger("openptc.proxy")


def _model_error(exc: Exception) -> ApiError:
    """A backend failure as the client sees it; an adapter's own bug is still a 502, not ours."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, UnsupportedSetting):  # the client's setting: its own words say which
        return invalid(f"{exc}; leave it out of the request, or use another model")
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
        metrics: ProxyMetrics | None = None,
    ) -> None:
        self._config = config
        self._containers = containers
        self._model_for = model_for
        self._metrics = metrics or ProxyMetrics()
        self._programs = TurnPrograms(config, containers, self._metrics)

    async def run(self, request: MessagesRequest, key: ApiKey) -> AsyncIterator[TurnEvent]:
        """Validate everything first (errors before any output), then yield the blocks."""
        tools = request_tools(request)
        conversation = read_conversation(request.messages)
        settings = backend_settings(request)
        backend = self._config.model_string(request.model)
        model = self._model_for(backend)
        turn = Turn(request, key, tools, conversation, model, settings, backend_max_tokens(request))
        turn.backend = backend
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
                    program = await self._programs.resume(turn)
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
                    async for block in self._programs.after_program(turn, program, event):
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
            await self._containers.use(container)  # a 429 if the key has its limit in use
            stack.push_async_callback(self._containers.done, container)
            await container.lock.acquire()
            if self._containers.is_current(container):
                stack.callback(container.lock.release)
                return container
            container.lock.release()
        raise ApiError(
            "conflict_error",
            f"container '{container_id}' keeps changing under this request; send it again",
        )

    # -- the model ------------------------------------------------------------------------------
    def _model_request(self, turn: Turn) -> ModelRequest:
        choice = turn.request.tool_choice
        return ModelRequest(
            system=turn.request.system_text(),
            messages=tuple(turn.conversation.messages),
            tools=backend_tools(turn.tools),
            max_tokens=turn.max_tokens,
            tool_choice=None
            if choice is None
            else ToolChoice(choice.type, choice.name if choice.type == "tool" else None),
            settings=turn.settings,
        )

    async def _model_loop(
        self, turn: Turn, stack: contextlib.AsyncExitStack
    ) -> AsyncIterator[TurnEvent]:
        runs = 0
        while True:
            request = self._model_request(turn)
            generated: list[ModelResponse] = []
            streamed = False
            started, counted = time.perf_counter(), turn.tokens.counts()
            async for delta in self._generate(turn, request, generated):
                streamed = True
                yield delta
            response = generated[0]
            turn.tokens.add(request, response)
            took = time.perf_counter() - started
            self._metrics.model_call(turn.backend, counted, turn.tokens.counts(), took)
            code_use = next(
                (u for u in response.tool_uses if u.name == CODE_TOOL_NAME and turn.tools.code),
                None,
            )
            if code_use is None:
                async for event in self._final_blocks(turn, response, streamed):
                    yield event
                return
            ahead = before(response.content, code_use)
            for index in range(len(ahead)):
                if (shown := client_block(ahead, index, streamed)) is not None:
                    yield shown
            server_id = new_id("srvtoolu_")
            code = code_use.input.get("code")
            yield ServerToolUseContent(
                id=server_id, name=CODE_TOOL_NAME, input=dict(code_use.input)
            )
            own = kept(ahead)  # the backend's own turn, its reasoning included, as it wrote it
            turn.conversation.messages.append(
                Message(
                    "assistant",
                    (*own, ToolUseBlock(server_id, CODE_TOOL_NAME, dict(code_use.input))),
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
                stack.push_async_callback(self._containers.done, turn.container)
                await stack.enter_async_context(turn.container.lock)
            await self._containers.abandon_paused(turn.container)
            record = ProgramRecord(
                server_tool_use_id=server_id,
                code=code,
                tools={t.name: list(signature(t).params) for t in turn.tools.from_code()},
                reasoning=[b for b in own if isinstance(b, ReasoningBlock)],
            )
            turn.container.history.programs.append(record)
            program = await self._programs.start(turn, record)
            self._metrics.programs_started.inc()
            log.info("program started", extra={"container_id": turn.container.id})
            program_event = await program.next_event()
            async for out in self._programs.after_program(turn, program, program_event):
                yield out
            if turn.container.program is not None:
                return
            runs += 1
            if runs >= self._config.max_code_runs_per_request:
                await self._containers.save(turn.container)
                yield TurnEnd("pause_turn", turn.tokens.wire(), turn.container.wire())
                return

    def _invalid_code(self, turn: Turn, server_id: str) -> CodeExecutionToolResultContent:
        message = "code_execution needs one string argument `code` holding a Python program"
        turn.conversation.messages.append(
            Message("user", (ToolResultBlock(server_id, message, True),))
        )
        return CodeExecutionToolResultContent(
            tool_use_id=server_id, content=CodeExecutionError(error_code="invalid_tool_input")
        )

    async def _generate(
        self, turn: Turn, request: ModelRequest, out: list[ModelResponse]
    ) -> AsyncIterator[TextDelta]:
        """Call the backend; when the client streams, pass its text on as it arrives — unless
        it asked for thinking, which comes first and whole: then the response is awaited."""
        if not turn.request.stream or turn.settings.reasoning is not None:
            try:
                out.append(await turn.model.generate(request))
            except Exception as exc:
                self._metrics.model_call_failed(turn.backend)
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
            self._metrics.model_call_failed(turn.backend)
            raise _model_error(exc) from exc
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _final_blocks(
        self, turn: Turn, response: ModelResponse, streamed: bool = False
    ) -> AsyncIterator[TurnEvent]:
        """Reasoning, text and direct tool calls: the turn ends here."""
        caller = DirectCaller() if turn.tools.code is not None else None
        uses = 0
        for index, block in enumerate(response.content):
            if (shown := client_block(response.content, index, streamed)) is not None:
                yield shown
            elif isinstance(block, ToolUseBlock):
                uses += 1
                self._metrics.tool_calls.labels(caller="direct").inc()
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
        sequence = response.stop_sequence if stop == "stop_sequence" else None
        yield TurnEnd(stop, turn.tokens.wire(), container, sequence)

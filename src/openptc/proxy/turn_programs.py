"""The container's programs within a turn: starting one, resuming a paused one, and its outcome.

A request that answers a paused program's tool calls resumes it (live on this replica, or re-run
from the container's record); a program's next event then either pauses the response on client
tools or puts its ``code_execution_tool_result`` in it for the model to read. The turn runner
decides when; this module holds how.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from openptc.models.base import Message, ToolResultBlock
from openptc.proxy.config import ProxyConfig
from openptc.proxy.containers import ContainerManager, LiveContainer, new_id
from openptc.proxy.errors import invalid
from openptc.proxy.history import render_output
from openptc.proxy.metrics import ProxyMetrics
from openptc.proxy.program import Diverged, Finished, LiveProgram, Paused, ProgramEvent
from openptc.proxy.records import ProgramRecord
from openptc.proxy.turn_events import TurnEnd, TurnEvent
from openptc.proxy.turn_state import Turn
from openptc.proxy.wire import (
    CodeCaller,
    CodeExecutionResult,
    CodeExecutionToolResultContent,
    ToolUseContent,
)
from openptc.sandbox.base import Execution, ToolSignature

log = logging.getLogger("openptc.proxy")


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


def restore_reasoning(messages: list[Message], record: ProgramRecord) -> None:
    """The backend gets its reasoning back with its program's result (its API may refuse the
    tool loop without it), even when the client's history left it out: from the record."""
    if not record.reasoning:
        return
    for index, message in enumerate(messages):
        uses = message.tool_uses if message.role == "assistant" else ()
        if any(u.id == record.server_tool_use_id for u in uses):
            if not message.reasoning:
                messages[index] = Message("assistant", (*record.reasoning, *message.content))
            return


def record_signatures(record: ProgramRecord) -> list[ToolSignature]:
    """The client tools a program may call, as recorded when it started."""
    return [ToolSignature(n, tuple(p)) for n, p in record.tools.items()]


class TurnPrograms:
    """Starts, resumes and follows the container's programs for the turn runner."""

    def __init__(
        self, config: ProxyConfig, containers: ContainerManager, metrics: ProxyMetrics
    ) -> None:
        self._config = config
        self._containers = containers
        self._metrics = metrics

    async def resume(self, turn: Turn) -> LiveProgram:
        """The paused program the request answers, given its results; every mistake is a 400."""
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
        restore_reasoning(turn.conversation.messages, record)
        program = live
        if program is None:  # not live here: re-run it with every result given so far
            for call in record.calls:
                if call.tool_use_id in waiting:  # a late answer to a timed-out call is not
                    call.result, call.is_error = pending.answers[call.tool_use_id]
            program = await self.start(turn, record)
        else:
            for tool_use_id, (text, is_error) in pending.answers.items():
                program.answer(tool_use_id, text, is_error)
        return program

    async def start(self, turn: Turn, record: ProgramRecord) -> LiveProgram:
        """Run the recorded program in the container's session; it becomes the live one."""
        container = turn.container
        assert container is not None
        session = await self._containers.session(
            container, record_signatures, lambda: new_id("toolu_")
        )
        program = LiveProgram(
            record,
            record_signatures(record),
            new_call_id=lambda: new_id("toolu_"),
            result_timeout_s=self._config.tool_result_timeout_s,
        )
        container.program = program
        program.start(session, self._config.program_timeout_s)
        return program

    async def after_program(
        self, turn: Turn, program: LiveProgram, event: ProgramEvent
    ) -> AsyncIterator[TurnEvent]:
        """A paused program ends the response; a finished one's result goes to the model."""
        container = turn.container
        assert container is not None
        server_id = program.record.server_tool_use_id
        if isinstance(event, Paused):
            caller = CodeCaller(type=turn.tools.caller_type, tool_id=server_id)  # type: ignore[arg-type]
            self._metrics.program_pauses.inc()
            self._metrics.tool_calls.labels(caller="program").inc(len(event.calls))
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
            error = event.execution.error
            self._metrics.programs_finished.labels(outcome=error.kind if error else "ok").inc()
        else:
            self._metrics.programs_finished.labels(outcome=event.cause).inc()
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

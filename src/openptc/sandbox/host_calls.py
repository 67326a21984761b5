"""Running one tool call on the host, the same way for every backend.

Live (the bridge) and replay backends differ only in how a result travels back to the program;
what a tool may do wrong (raise, exit, cancel itself, return something that is not JSON) and
how each call is logged are the same, so they live here once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

from openptc.sandbox.base import CallOutcome, ToolCallError, ToolCallRecord, ToolHost

T = TypeVar("T")


async def run_tool_call(
    tools: ToolHost | None,
    call_id: int,
    tool: str,
    args: dict[str, Any],
    *,
    records: list[ToolCallRecord],
    on_value: Callable[[Any], T],
    on_error: Callable[[ToolCallError], T],
) -> T:
    """Run one call and encode its outcome with ``on_value`` / ``on_error``.

    ``on_value`` may raise ``ToolCallError`` (a value that is not JSON): the program then sees
    that error. Nothing a tool does escapes to the host, except being cancelled because the
    execution ended first, which is logged as "cancelled" and re-raised. The record is
    appended whatever happens.
    """
    started = time.perf_counter()
    outcome: CallOutcome = "ok"
    error: str | None = None
    try:
        try:
            if tools is None:
                raise ToolCallError(f"no tools are available; {tool!r} cannot be called")
            return on_value(await tools.call(tool, args))
        except ToolCallError as exc:
            outcome, error = "error", str(exc)
            return on_error(exc)
        except (KeyboardInterrupt, asyncio.CancelledError):
            raise
        except BaseException as exc:  # SystemExit from a tool must not stop the host
            outcome, error = "error", f"{type(exc).__name__}: {exc}"
            return on_error(ToolCallError(error))
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            outcome, error = "cancelled", "the program ended before the tool finished"
            raise
        # The tool itself raised CancelledError: an error like any other for the program.
        outcome, error = "error", "CancelledError: the tool was cancelled"
        return on_error(ToolCallError(error))
    finally:
        records.append(
            ToolCallRecord(
                call_id=call_id,
                tool=tool,
                arguments=args,
                outcome=outcome,
                error=error,
                duration_ms=(time.perf_counter() - started) * 1000,
            )
        )

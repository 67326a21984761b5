"""The tool calls of one execution as the host runs them: a budget, a cap in flight, ids once.

The runtime keeps its own count, but the program shares its process and can write calls on the
bridge directly, so the host enforces the same rules itself: at most ``Limits.tool_calls`` calls
per execution (the rest fail in the program with a clear error), at most
``Limits.calls_in_flight`` running at once (the rest wait their turn, in order, so a flood from
one program costs the host a bounded number of tasks and other sessions keep their share of the
event loop), and each call id used once (a repeat is a forged message).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from openptc.sandbox.base import Limits, ToolCallError
from openptc.sandbox.protocol import BridgeError

CallStarter = Callable[[int, str, dict[str, Any]], Coroutine[Any, Any, None]]


def budget_error(limits: Limits) -> ToolCallError:
    return ToolCallError(
        f"this program used up its budget of {limits.tool_calls} tool calls per run; make "
        "fewer calls (filter or batch on the host side of a tool), or split the work over runs"
    )


class CallScheduler:
    """Admits, queues and runs one execution's tool calls; ``close`` cancels what is left."""

    def __init__(
        self, limits: Limits, start: CallStarter, refuse: Callable[[int, ToolCallError], None]
    ) -> None:
        self.limits = limits
        self._start = start
        self._refuse = refuse
        self._seen: set[int] = set()
        self._waiting: deque[tuple[int, str, dict[str, Any]]] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.admitted = 0
        self.most_in_flight = 0

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def submit(self, call_id: int, tool: str, args: dict[str, Any]) -> None:
        """Take one call from the program; BridgeError if its id was used before."""
        if call_id in self._seen:
            raise BridgeError(f"tool call id {call_id} was used twice in one run")
        self._seen.add(call_id)
        if self._closed:
            return
        if self.admitted >= self.limits.tool_calls:
            self._refuse(call_id, budget_error(self.limits))
            return
        self.admitted += 1
        if len(self._tasks) < self.limits.calls_in_flight:
            self._run(call_id, tool, args)
        else:
            self._waiting.append((call_id, tool, args))

    def _run(self, call_id: int, tool: str, args: dict[str, Any]) -> None:
        task = asyncio.create_task(self._start(call_id, tool, args))
        self._tasks.add(task)
        self.most_in_flight = max(self.most_in_flight, len(self._tasks))
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._waiting and not self._closed:
            self._run(*self._waiting.popleft())

    async def close(self) -> None:
        """The execution ended: calls still waiting never run; those running are cancelled."""
        self._closed = True
        self._waiting.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

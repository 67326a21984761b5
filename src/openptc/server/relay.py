"""The orchestrator's tools as the server sees them: every call goes out over the socket.

The sandbox hands over the calls a program issues together in one loop step; they leave in one
message, and when the client asked for it, ``blocked`` follows once the program waits — so a
client behind the server batches exactly as one beside a local sandbox does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from openptc.sandbox.base import ToolCallError, ToolSignature
from openptc.server.client_messages import check_tool_result

ORCHESTRATOR_GONE = "the orchestrator disconnected before answering this tool call"


class RelayToolHost:
    """A ``BlockAwareToolHost`` whose tools are answered by the client over the WebSocket."""

    def __init__(
        self,
        signatures: Sequence[ToolSignature],
        outgoing: asyncio.Queue[dict[str, Any]],
        *,
        execution_id: Any,
        report_blocked: bool,
    ) -> None:
        self.execution_id = execution_id
        self._signatures = tuple(signatures)
        self._outgoing = outgoing
        self._report_blocked = report_blocked
        self._next_id = 1
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._outbox: list[dict[str, Any]] = []
        self._gone: str | None = None

    def signatures(self) -> Sequence[ToolSignature]:
        return self._signatures

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        if self._gone is not None:
            raise ToolCallError(self._gone)
        call_id = self._next_id
        self._next_id += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[call_id] = future
        if not self._outbox:
            asyncio.get_running_loop().call_soon(self._flush)  # after the batch's other calls
        self._outbox.append({"id": call_id, "tool": name, "args": arguments})
        try:
            reply = await future
        finally:
            self._waiting.pop(call_id, None)
        if reply.get("ok"):
            return reply.get("value")
        error = reply.get("error") or {}
        raise ToolCallError(
            str(error.get("message", "the tool failed")), kind=str(error.get("type", "ToolError"))
        )

    def _flush(self) -> None:
        if self._outbox:
            self._outgoing.put_nowait(
                {"type": "tool_calls", "execution": self.execution_id, "calls": self._outbox}
            )
            self._outbox = []

    def program_blocked(self) -> None:
        self._flush()  # the calls first, then the news that the program waits on them
        if self._report_blocked:
            self._outgoing.put_nowait({"type": "blocked", "execution": self.execution_id})

    def resolve(self, message: dict[str, Any]) -> bool:
        """Hand a client's result to the waiting call; False for a result of another execution
        or an id nobody waits for."""
        call_id = check_tool_result(message)  # a BadMessage for a result of the wrong shape
        if message.get("execution") != self.execution_id:
            return False  # a late result of an abandoned execution: nothing waits for it
        future = self._waiting.get(call_id)
        if future is None or future.done():
            return False
        future.set_result(message)
        return True

    @property
    def disconnected(self) -> bool:
        return self._gone is not None

    def disconnect(self) -> None:
        """The client is gone: every waiting call fails, and later ones at once."""
        self._gone = ORCHESTRATOR_GONE
        for future in self._waiting.values():
            if not future.done():
                future.set_result(
                    {"ok": False, "error": {"type": "ToolError", "message": self._gone}}
                )

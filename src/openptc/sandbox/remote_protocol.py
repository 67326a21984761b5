"""The sandbox server's messages, shared by the server and its client (``sandbox/remote.py``).

The bridge's messages (``sandbox/protocol.py``), carried as WebSocket text frames, plus the
execution's result as JSON. One WebSocket to ``/v1/sessions`` is one session (it opens and
closes with the connection, so a load balancer cannot separate the two):

    server -> client  {"type": "session", "id", "isolation"}   (first, once)
    client -> server  {"type": "execute", "id", "code", "tools": [{"name", "params"}],
                       "timeout_s"?, "output_bytes"?, "report_blocked"?}
                      {"type": "tool_result", "execution", "id", "ok", "value" | "error"}
                      {"type": "cancel", "execution"}   (the interpreter restarts)
    server -> client  {"type": "tool_calls", "execution", "calls": [{"id", "tool", "args"}]}
                      {"type": "blocked", "execution"}   (when the client asked for it)
                      {"type": "done", "id", "execution": {...}}
                      {"type": "error", "code", "message"}   (the request could not be served)

Every message of an execution names it, so nothing of an abandoned execution is ever taken for
the next one's. A refused session is a close with a code in 44xx/45xx naming the HTTP status
it stands for (4401 token, 4429 session limit, 4503 draining, 4408 closed while idle) and a
reason in words.
Tools never leave the orchestrator: the server only relays calls and results.
"""

from __future__ import annotations

from typing import Any

from openptc.sandbox.base import (
    Execution,
    ExecutionError,
    Isolation,
    ToolCallRecord,
)

SESSION_PATH = "/v1/sessions"


def isolation_to_json(isolation: Isolation) -> dict[str, Any]:
    return {
        "level": isolation.level,
        "namespaces": list(isolation.namespaces),
        "dedicated_uid": isolation.dedicated_uid,
        "read_only_root": isolation.read_only_root,
        "warnings": list(isolation.warnings),
    }


def isolation_from_json(data: dict[str, Any]) -> Isolation:
    return Isolation(
        level=data["level"],
        namespaces=tuple(data.get("namespaces", ())),
        dedicated_uid=bool(data.get("dedicated_uid", False)),
        read_only_root=bool(data.get("read_only_root", False)),
        warnings=tuple(data.get("warnings", ())),
    )


def error_to_json(error: ExecutionError | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {
        "kind": error.kind,
        "type": error.type,
        "message": error.message,
        "traceback": error.traceback,
        "line": error.line,
    }


def execution_to_json(execution: Execution) -> dict[str, Any]:
    return {
        "stdout": execution.stdout,
        "stderr": execution.stderr,
        "error": error_to_json(execution.error),
        "duration_ms": execution.duration_ms,
        "isolation": isolation_to_json(execution.isolation),
        "stdout_truncated": execution.stdout_truncated,
        "notices": list(execution.notices),
    }


def execution_from_json(data: dict[str, Any], tool_calls: tuple[ToolCallRecord, ...]) -> Execution:
    """The server's result with the client's own log of the tool calls it ran."""
    raw = data.get("error")
    error = (
        None
        if raw is None
        else ExecutionError(
            kind=raw["kind"],
            type=str(raw["type"]),
            message=str(raw["message"]),
            traceback=str(raw.get("traceback", "")),
            line=raw.get("line"),
        )
    )
    return Execution(
        stdout=str(data["stdout"]),
        stderr=str(data["stderr"]),
        error=error,
        tool_calls=tool_calls,
        duration_ms=float(data["duration_ms"]),
        isolation=isolation_from_json(data["isolation"]),
        stdout_truncated=bool(data.get("stdout_truncated", False)),
        notices=tuple(str(n) for n in data.get("notices", ())),
    )

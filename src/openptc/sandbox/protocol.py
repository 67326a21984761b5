"""The bridge messages, host side: building what the runtime reads, decoding what it writes.

Transport-free on purpose: the local backend carries these lines over pipes, a remote backend the
same messages over a WebSocket. ``runtime.py`` holds the other half (and the message list).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from openptc.sandbox.base import (
    ErrorKind,
    ExecutionError,
    Limits,
    ToolCallError,
    ToolSignature,
)

# A single bridge line larger than this means a hostile or broken runtime: the sandbox is stopped.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


# The error kinds the runtime itself reports; the host adds timeout, crashed and bridge.
RUNTIME_ERROR_KINDS = frozenset({"syntax", "exception", "memory", "cpu"})


class BridgeError(Exception):
    """The runtime sent something that is not a valid bridge message."""


def encode(message: dict[str, Any]) -> bytes:
    return (json.dumps(message, separators=(",", ":"), allow_nan=False) + "\n").encode()


def decode(line: bytes) -> dict[str, Any]:
    try:
        message = json.loads(line)
    except ValueError as exc:
        raise BridgeError(f"malformed bridge message: {exc}") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise BridgeError("bridge message without a type")
    return message


def runtime_limits(limits: Limits, *, count_processes: bool) -> dict[str, int]:
    """The limits the runtime applies to itself (as rlimits) before any program code runs."""
    values = {
        "memory_mb": limits.memory_mb,
        "cpu_s": limits.cpu_s,
        "file_size_mb": limits.file_size_mb,
        "open_files": limits.open_files,
    }
    if count_processes:
        values["processes"] = limits.processes
    return values


def execute_message(
    execution_id: int,
    code: str,
    tools: Sequence[ToolSignature],
    limits: Limits,
    *,
    report_blocked: bool = False,
) -> dict[str, Any]:
    message = {
        "type": "execute",
        "id": execution_id,
        "code": code,
        "tools": [{"name": t.name, "params": list(t.params)} for t in tools],
        "output_bytes": limits.output_bytes,
    }
    if report_blocked:
        message["report_blocked"] = True
    return message


def tool_result_message(call_id: int, value: Any) -> bytes:
    """Encode a tool's value; a value that is not JSON becomes an error the program sees."""
    try:
        return encode({"type": "tool_result", "id": call_id, "ok": True, "value": value})
    except (TypeError, ValueError) as exc:
        raise ToolCallError(f"the tool returned a value that is not JSON: {exc}") from None


def tool_error_message(call_id: int, error: ToolCallError) -> bytes:
    return encode(
        {
            "type": "tool_result",
            "id": call_id,
            "ok": False,
            "error": {"type": error.kind, "message": str(error)},
        }
    )


def parse_tool_calls(message: dict[str, Any]) -> list[tuple[int, str, dict[str, Any]]]:
    calls = message.get("calls")
    if not isinstance(calls, list):
        raise BridgeError("tool_calls message without a list of calls")
    parsed = []
    for call in calls:
        if not (
            isinstance(call, dict)
            and isinstance(call.get("id"), int)
            and isinstance(call.get("tool"), str)
            and isinstance(call.get("args"), dict)
        ):
            raise BridgeError(f"malformed tool call: {str(call)[:200]}")
        parsed.append((call["id"], call["tool"], call["args"]))
    return parsed


def parse_error(raw: Any) -> ExecutionError | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise BridgeError("malformed error in done message")
    kind: ErrorKind = raw["kind"] if raw.get("kind") in RUNTIME_ERROR_KINDS else "exception"
    line = raw.get("line")
    return ExecutionError(
        kind=kind,
        type=str(raw.get("type", "Exception")),
        message=str(raw.get("message", "")),
        traceback=str(raw.get("traceback", "")),
        line=line if isinstance(line, int) else None,
    )

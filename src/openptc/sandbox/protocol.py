"""The bridge messages, host side: building what the runtime reads, decoding what it writes.

Transport-free on purpose: the local backend carries these lines over pipes, a remote backend the
same messages over a WebSocket. ``runtime.py`` holds the other half (and the message list).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from openptc.sandbox.base import (
    ErrorKind,
    ExecutionError,
    Limits,
    ToolCallError,
    ToolSignature,
)

# A single bridge line larger than this means a hostile or broken runtime: the sandbox is stopped.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


# What the host keeps of a report beyond the output cap: the runtime's own truncation marker fits.
MARKER_ALLOWANCE = 100
MAX_NOTICES = 20
NOTICE_CHARS = 2_000
MESSAGE_CHARS = 4_000

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
    except RecursionError:
        raise BridgeError("bridge message nested too deeply") from None
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


def execution_token() -> str:
    """A fresh, unguessable name for one execution: every message of it must carry it."""
    return secrets.token_hex(8)


def execute_message(
    execution_id: str,
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
        "tool_calls": limits.tool_calls,
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


def parse_error(raw: Any, cap: int = 1 << 20) -> ExecutionError | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise BridgeError("malformed error in done message")
    named = raw.get("kind")
    known = isinstance(named, str) and named in RUNTIME_ERROR_KINDS
    kind = cast(ErrorKind, named) if known else "exception"
    line = raw.get("line")
    return ExecutionError(
        kind=kind,
        type=str(raw.get("type", "Exception"))[:200],
        message=str(raw.get("message", ""))[:MESSAGE_CHARS],
        traceback=cap_text(str(raw.get("traceback", "")), cap)[0],
        line=line if isinstance(line, int) and not isinstance(line, bool) else None,
    )


@dataclass(frozen=True)
class Report:
    """What the runtime says a program did, with every cap the host enforces applied again.

    The runtime's caps only make the common case cheap; a program can write its own report on
    the bridge, so nothing here is taken at its word beyond what it could have printed.
    """

    stdout: str
    stderr: str
    stdout_truncated: bool
    error: ExecutionError | None
    notices: tuple[str, ...]
    restart: str | None


NO_REPORT = Report("", "", False, None, (), None)  # a run that ended without one


def parse_report(message: dict[str, Any], limits: Limits) -> Report:
    """A ``done`` (or ``exit``) message as the host accepts it; BridgeError if malformed."""
    stdout, cut = cap_text(_text(message, "stdout"), limits.output_bytes)
    stderr, _ = cap_text(_text(message, "stderr"), limits.output_bytes)
    notices = message.get("notices", [])
    restart = message.get("restart")
    if not isinstance(notices, list) or not isinstance(restart, str | None):
        raise BridgeError("malformed notices or restart in a report")
    return Report(
        stdout=stdout,
        stderr=stderr,
        stdout_truncated=cut or message.get("stdout_truncated") is True,
        error=parse_error(message.get("error"), limits.output_bytes),
        notices=tuple(str(n)[:NOTICE_CHARS] for n in notices[:MAX_NOTICES]),
        restart=restart[:NOTICE_CHARS] if restart else None,
    )


def _text(message: dict[str, Any], key: str) -> str:
    value = message.get(key, "")
    if not isinstance(value, str):
        raise BridgeError(f"{key} in a report is not text")
    return value


def cap_text(text: str, cap: int) -> tuple[str, bool]:
    """The text cut to ``cap`` UTF-8 bytes (plus room for a truncation marker); and whether
    it was cut."""
    if len(text) <= (cap + MARKER_ALLOWANCE) // 4:
        return text, False  # short enough whatever its characters
    data = text.encode("utf-8", "replace")
    if len(data) <= cap + MARKER_ALLOWANCE:
        return text, False
    kept = data[:cap].decode("utf-8", "ignore")
    dropped = len(data) - len(kept.encode())
    return kept + f"\n[output truncated by the host: {dropped} more bytes not shown]\n", True

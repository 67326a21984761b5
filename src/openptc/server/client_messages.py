"""What a client of the sandbox server sends, read strictly: anything else is a ``BadMessage``.

A client holds a token, but what it sends is still checked before the server acts on it: a
frame that is not a JSON object, a message of an unknown type, or an execute or tool result of
the wrong shape is answered with an error frame that says what was wrong, and the session goes
on. Nothing a client sends may end the server, the session's interpreter or the connection.
"""

from __future__ import annotations

import json
import keyword
import math
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from openptc.sandbox.base import ToolSignature

CLIENT_TYPES = ("execute", "tool_result", "cancel")
_SHOWN = 80  # characters of a bad value quoted back to the client


class BadMessage(ValueError):
    """A client message the server cannot act on; its words go back in an error frame."""


# Bounded in depth and size: a value nested a thousand deep or a million long is shown short.
_REPR = reprlib.Repr()  # (keyword arguments only from Python 3.12)
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist = 3, 4, 4
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = _SHOWN


def _show(value: Any) -> str:
    text = _REPR.repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _kind_of(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


def read_frame(frame: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON object a WebSocket frame carries, with a string ``type``."""
    text = frame.get("text")
    if not isinstance(text, str):
        raise BadMessage("messages are JSON text frames; this frame was binary")
    try:
        message = json.loads(text)
    except RecursionError:
        raise BadMessage("the message is not JSON the server reads: nested too deeply") from None
    except ValueError as exc:
        raise BadMessage(f"the message is not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise BadMessage(f"a message is a JSON object, not {_kind_of(message)}")
    kind = message.get("type")
    if not isinstance(kind, str):
        raise BadMessage(f"a message needs a 'type' string (one of {', '.join(CLIENT_TYPES)})")
    return message


@dataclass(frozen=True)
class ExecuteRequest:
    """One ``execute`` message, checked."""

    id: int | str
    code: str
    tools: tuple[ToolSignature, ...]
    timeout_s: float | None
    output_bytes: int | None
    report_blocked: bool


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _tool(index: int, raw: Any) -> ToolSignature:
    where = f"execute: tools[{index}]"
    if not isinstance(raw, dict):
        raise BadMessage(f"{where} is {_kind_of(raw)}; a tool is {{'name', 'params'}}")
    name = raw.get("name")
    parts = name.split(".") if isinstance(name, str) else []
    if (
        not isinstance(name, str)
        or not 1 <= len(parts) <= 2
        or not all(p.isidentifier() and not keyword.iskeyword(p) for p in parts)
    ):
        raise BadMessage(
            f"{where}.name {_show(name)} is not a Python identifier (or group.identifier)"
        )
    params = raw.get("params", [])
    if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
        raise BadMessage(f"{where}.params of {name!r} is not a list of parameter names")
    return ToolSignature(name, tuple(params))


def _seconds(raw: Any) -> float | None:
    """A wall clock the client asks for (the server caps it at its own maximum)."""
    if raw is None:
        return None
    seconds = math.nan
    if _is_int(raw) or isinstance(raw, float):
        try:
            seconds = float(raw)
        except OverflowError:  # an integer beyond any float: as long as the server allows
            seconds = math.inf
    if math.isnan(seconds) or seconds <= 0:
        raise BadMessage(f"execute: 'timeout_s' {_show(raw)} is not a positive number of seconds")
    return seconds


def parse_execute(message: dict[str, Any]) -> ExecuteRequest:
    execution_id = message.get("id")
    if not isinstance(execution_id, int | str) or isinstance(execution_id, bool):
        raise BadMessage(f"execute: 'id' {_show(execution_id)} is not an integer or a string")
    code = message.get("code")
    if not isinstance(code, str):
        raise BadMessage(f"execute: 'code' is {_kind_of(code)}; it must be a string")
    raw_tools = message.get("tools", [])
    if not isinstance(raw_tools, list):
        raise BadMessage(f"execute: 'tools' is {_kind_of(raw_tools)}; it must be an array")
    tools = tuple(_tool(i, t) for i, t in enumerate(raw_tools))
    names = [t.name for t in tools]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise BadMessage(f"execute: tool names must be unique; {twice!r} appears twice")
    timeout_s = _seconds(message.get("timeout_s"))
    output_bytes = message.get("output_bytes")
    if output_bytes is not None and not (_is_int(output_bytes) and output_bytes >= 0):
        raise BadMessage(f"execute: 'output_bytes' {_show(output_bytes)} is not a count of bytes")
    report_blocked = message.get("report_blocked", False)
    if not isinstance(report_blocked, bool):
        raise BadMessage(f"execute: 'report_blocked' {_show(report_blocked)} is not a boolean")
    return ExecuteRequest(
        execution_id,
        code,
        tools,
        timeout_s,
        output_bytes,
        report_blocked,
    )


def check_tool_result(message: dict[str, Any]) -> int:
    """The call id a ``tool_result`` answers, once its shape is right."""
    call_id = message.get("id")
    if not _is_int(call_id):
        raise BadMessage(f"tool_result: 'id' {_show(call_id)} is not the integer of a call")
    ok = message.get("ok")
    if not isinstance(ok, bool):
        raise BadMessage(f"tool_result {call_id}: 'ok' {_show(ok)} is not a boolean")
    error = message.get("error")
    if not ok and error is not None:
        if not isinstance(error, dict):
            raise BadMessage(
                f"tool_result {call_id}: 'error' is {_kind_of(error)}; "
                "it must be an object {'type', 'message'}"
            )
        for key in ("type", "message"):
            if key in error and not isinstance(error[key], str):
                raise BadMessage(f"tool_result {call_id}: 'error.{key}' is not a string")
    return call_id

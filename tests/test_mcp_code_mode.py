"""``ptc mcp`` driven by the MCP SDK's own clients, over stdio (the server a subprocess, as MCP
clients start it) and over streamable HTTP: the tools it offers, discovery, programs that keep
their state from call to call, tool failures as error results, and one sandbox session per client
connection, closed when the client goes."""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types
from mcp.client import Client
from mcp.client.session import ClientSession
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from fakes.code_mode_clients import SpySandbox, eventually, ptc_mcp, serve_http
from fakes.code_mode_toolbox import make_toolbox
from openptc.mcp.code_mode import NO_SESSION_NOTICE, build_code_mode_server
from openptc.mcp.code_mode_tools import RUN_CODE_OUTPUT_SCHEMA
from openptc.models.tokens import count_text

# Written the way models write programs: dict arguments, json.loads on parsed results, gather.
FAN_OUT = """\
import json
customers = await list_customers()
results = await asyncio.gather(*(get_orders({"customer": c, "status": "open"}) for c in customers))
open_orders = {c: json.loads(r) for c, r in zip(customers, results)}
total = sum(o["total"] for orders in open_orders.values() for o in orders)
print(f"open orders worth {total} from {len(customers)} customers")
"""
USES_STATE = "print(sorted(c for c, orders in open_orders.items() if orders))"
FAILS = """\
async def main():
    await refund_order(order_id="o2", reason="late")

asyncio.run(main())
"""


def _text(result: types.CallToolResult) -> str:
    assert len(result.content) == 1
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def _run(session: ClientSession | Client, code: str) -> types.CallToolResult:
    result = await session.call_tool("run_code", {"code": code})
    assert isinstance(result, types.CallToolResult)
    return result


async def _check_tools_and_discovery(session: ClientSession) -> None:
    listed = await session.list_tools()
    tools = {tool.name: tool for tool in listed.tools}
    assert list(tools) == ["run_code", "list_tools", "search_tools", "describe_tools"]
    run_code = tools["run_code"]
    assert run_code.output_schema == RUN_CODE_OUTPUT_SCHEMA
    assert run_code.input_schema["required"] == ["code"]
    description = run_code.description or ""
    for rule in ("await", "asyncio.gather", "json.loads", "describe_tools", "ToolError"):
        assert rule in description
    assert "# 5 tools." in description
    # What a model is shown (names, descriptions, input schemas) instead of every tool's schema.
    shown = [
        {"name": t.name, "description": t.description, "input_schema": t.input_schema}
        for t in listed.tools
    ]
    assert count_text(json.dumps(shown)) < 1000

    found = _text(await session.call_tool("search_tools", {"query": "customer orders"}))
    assert found.splitlines()[0].startswith("get_orders(customer, status=None) — ")
    stubs = _text(await session.call_tool("describe_tools", {"names": ["get_orders"]}))
    assert "class Order(TypedDict):" in stubs
    assert "async def get_orders(customer: str, status: str | None = None) -> list[Order]:" in stubs
    listing = _text(await session.call_tool("list_tools", {}))
    assert listing.splitlines()[0] == "(local): 5 tools"
    missing = await session.call_tool("describe_tools", {"names": ["get_order"]})
    assert missing.is_error
    assert _text(missing) == "no tool or server named 'get_order'; did you mean get_orders?"


async def _check_programs(session: ClientSession | Client) -> None:
    first = await _run(session, FAN_OUT)
    assert not first.is_error, _text(first)
    assert _text(first) == "open orders worth 115.5 from 3 customers"
    structured = first.structured_content
    assert structured is not None
    assert structured["ok"] is True and structured["error"] is None
    calls = structured["tool_calls"]
    assert [c["tool"] for c in calls] == [
        "list_customers",
        "get_orders",
        "get_orders",
        "get_orders",
    ]
    assert calls[1]["arguments"] == {"customer": "ada", "status": "open"}
    assert {c["outcome"] for c in calls} == {"ok"}

    second = await _run(session, USES_STATE)  # variables persist within the connection
    assert _text(second) == "['ada', 'bob']"
    assert second.structured_content is not None
    assert second.structured_content["tool_calls"] == []


async def _check_failure(session: ClientSession | Client) -> None:
    failed = await _run(session, FAILS)
    assert failed.is_error
    text = _text(failed)
    assert "ToolError: RuntimeError: refunds are disabled (order o2)" in text
    assert "[tool calls that ran before the error] refund_order#" in text
    structured = failed.structured_content
    assert structured is not None
    assert structured["ok"] is False
    assert structured["error"]["type"] == "ToolError"
    assert structured["error"]["message"] == "RuntimeError: refunds are disabled (order o2)"
    [call] = structured["tool_calls"]
    assert call["tool"] == "refund_order"
    assert call["arguments"] == {"order_id": "o2", "reason": "late"}
    assert call["outcome"] == "error"

    caught = await _run(
        session,
        "try:\n    await refund_order('o1', 'x')\nexcept ToolError as e:\n    print('no:', e)",
    )
    assert not caught.is_error
    assert _text(caught) == "no: RuntimeError: refunds are disabled (order o1)"


async def test_a_stdio_client_session_discovers_tools_and_runs_programs_that_keep_state() -> None:
    async with (
        stdio_client(ptc_mcp()) as (read, write),
        ClientSession(read, write) as session,
    ):
        initialized = await session.initialize()
        assert initialized.server_info.name == "openptc"
        assert "describe_tools" in (initialized.instructions or "")
        await _check_tools_and_discovery(session)
        await _check_programs(session)
        await _check_failure(session)
        await _check_programs(session)  # a failed program leaves the session usable
        # A tool that prints on the host cannot corrupt the protocol on our stdout.
        noted = await _run(session, "print(await log_note(text='hi'))")
        assert _text(noted) == "noted"
        assert not (await session.call_tool("list_tools", {})).is_error


async def test_a_client_that_probes_for_the_2026_protocol_falls_back_to_a_session() -> None:
    """The SDK's ``Client`` asks ``server/discover`` first; told there is none, it uses the
    handshake, whose connection is the session that keeps the program's variables."""
    async with Client(stdio_client(ptc_mcp())) as client:
        assert client.protocol_version == "2025-11-25"
        await _check_programs(client)


async def test_each_http_client_has_its_own_sandbox_session_closed_when_it_leaves() -> None:
    spy = SpySandbox()
    server = build_code_mode_server(make_toolbox(), lambda: spy)
    async with serve_http(server) as url:
        async with (
            streamable_http_client(url) as (read_a, write_a),
            ClientSession(read_a, write_a) as a,
        ):
            await a.initialize()
            await _check_tools_and_discovery(a)
            await _check_programs(a)
            async with (
                streamable_http_client(url) as (read_b, write_b),
                ClientSession(read_b, write_b) as b,
            ):
                await b.initialize()
                unknown = await _run(b, "print(open_orders)")  # a's variables are a's alone
                assert unknown.is_error
                assert "NameError: name 'open_orders' is not defined" in _text(unknown)
                await _check_failure(b)
                assert len(spy.sessions) == 2
                session_a, session_b = spy.sessions
                assert not session_a.closed and not session_b.closed
            await eventually(lambda: session_b.closed)  # b left: its interpreter is gone
            assert not session_a.closed
            assert _text(await _run(a, USES_STATE)) == "['ada', 'bob']"
        await eventually(lambda: session_a.closed)
    assert spy.closed


async def test_a_client_pinned_to_the_2026_protocol_gets_a_fresh_session_per_program() -> None:
    spy = SpySandbox()
    server = build_code_mode_server(make_toolbox(), lambda: spy)
    async with serve_http(server) as url:
        async with Client(url, mode="2026-07-28") as client:
            first = await _run(client, "x = 1\nprint(x)")
            assert _text(first).splitlines() == ["1", f"[note] {NO_SESSION_NOTICE}"]
            second = await _run(client, "print(x)")
            assert "NameError" in _text(second)
            assert second.structured_content is not None
            assert second.structured_content["notices"] == [NO_SESSION_NOTICE]
            assert all(session.closed for session in spy.sessions)
        async with Client(url) as client:  # probing, it falls back to the handshake
            assert client.protocol_version == "2025-11-25"
            await _check_programs(client)


class _BrokenSandbox(SpySandbox):
    async def open_session(self) -> Any:
        from openptc.sandbox.base import SandboxError

        raise SandboxError("the sandbox server at http://sandbox:8090 is not reachable")


async def test_a_sandbox_that_cannot_open_a_session_fails_the_call_not_the_server() -> None:
    broken = _BrokenSandbox()
    async with Client(build_code_mode_server(make_toolbox(), lambda: broken), mode="legacy") as c:
        result = await _run(c, "print(1)")
        assert result.is_error
        assert _text(result) == (
            "[error]\nno sandbox session could be opened: the sandbox server at "
            "http://sandbox:8090 is not reachable"
        )
        assert result.structured_content is not None
        assert result.structured_content["error"]["kind"] == "sandbox"
        listing = await c.call_tool("list_tools", {})  # discovery still works
        assert not listing.is_error

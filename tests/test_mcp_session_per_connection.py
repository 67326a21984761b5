"""The sandbox session behind one MCP client connection: opened by the first program, replaced —
with a notice — when it was lost in between, and closed for good with the connection."""

from __future__ import annotations

import anyio
import pytest
from mcp.client import Client

from fakes.code_mode_toolbox import make_toolbox
from fakes.dying_sandbox import DyingSandbox
from openptc.mcp.client_sessions import REOPENED_NOTICE, ClientSandbox, SessionGone
from openptc.mcp.code_mode import build_code_mode_server
from openptc.sandbox.base import SandboxError
from openptc.sandbox.local import LocalSandbox


async def test_a_lost_session_is_replaced_and_the_program_is_told_its_variables_are_gone() -> None:
    tools = make_toolbox()
    async with LocalSandbox(pool_size=0) as sandbox:
        slot = ClientSandbox(sandbox, label="test")
        first = await slot.run("x = await add(a=1, b=1)\nprint(x)", tools)
        assert (first.stdout, first.notices) == ("2\n", ())
        assert slot.session is not None
        await slot.session.close()  # as the sandbox's idle reaper or a lost server would

        again = await slot.run("print(globals().get('x'))", tools)
        assert again.stdout == "None\n"
        assert again.notices == (REOPENED_NOTICE,)
        later = await slot.run("print('still here')", tools)
        assert later.notices == ()

        session = slot.session
        await slot.aclose()
        assert session is not None and session.closed
        with pytest.raises(SandboxError, match="this connection is closed"):
            await slot.run("print(1)", tools)
        await slot.aclose()  # twice is fine: the SDK and a shutdown may both close it


async def test_a_session_that_dies_under_a_program_is_dropped_and_the_next_gets_a_new_one() -> None:
    sandbox = DyingSandbox("the sandbox process was killed")
    slot = ClientSandbox(sandbox)
    with pytest.raises(SessionGone, match="the sandbox process was killed"):
        await slot.run("print(1)", make_toolbox())
    assert slot.session is None
    assert sandbox.opened[0].closed
    with pytest.raises(SessionGone):
        await slot.run("print(1)", make_toolbox())
    assert len(sandbox.opened) == 2


async def test_a_program_the_client_cancels_ends_its_session_and_the_next_one_is_told() -> None:
    server = build_code_mode_server(make_toolbox(), lambda: LocalSandbox(pool_size=0))
    async with Client(server, mode="legacy") as client:
        await client.call_tool("run_code", {"code": "x = 5"})
        with pytest.raises(TimeoutError), anyio.fail_after(0.5):  # the client gives up
            await client.call_tool("run_code", {"code": "import time\ntime.sleep(20)"})
        after = await client.call_tool("run_code", {"code": "print(globals().get('x'))"})
        assert not after.is_error
        assert after.structured_content is not None
        assert after.structured_content["stdout"] == "None\n"
        assert after.structured_content["notices"] == [REOPENED_NOTICE]

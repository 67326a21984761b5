"""The sandbox server and its client (the remote backend), for real, on 127.0.0.1.

Programs run on the server; tool calls come back over the WebSocket and run here, in the test,
where the tools are. Servers are real uvicorn servers, in this process or as `ptc sandbox-server`.
"""

from __future__ import annotations

import asyncio
import signal

import httpx
import pytest

from fakes.sandbox_server import OTHER_TOKEN, TOKEN, running_server, server_process
from openptc import Agent, Toolbox, tool
from openptc.sandbox.base import SandboxError
from openptc.sandbox.local import LocalSandbox
from openptc.sandbox.remote import RemoteSandbox, SessionLost
from openptc.scenarios import expense


async def test_the_expense_audit_through_the_remote_backend() -> None:
    async with running_server() as url, RemoteSandbox(url, TOKEN) as sandbox:
        agent = Agent("scripted:expense-audit", expense.make_tools(), sandbox=sandbox)
        result = await agent.run(expense.QUESTION)
        assert expense.is_correct(result.answer)
        execution = result.executions[0]
        assert len(execution.tool_calls) == 49  # run here, logged here
        assert execution.isolation == sandbox.isolation


async def test_remote_results_equal_local_ones() -> None:
    toolbox = Toolbox(expense.make_tools())
    async with LocalSandbox(pool_size=0) as local:
        session = await local.open_session()
        here = await session.execute(expense.REFERENCE_PROGRAM, toolbox)
    async with running_server() as url, RemoteSandbox(url, TOKEN) as sandbox:
        remote = await (await sandbox.open_session()).execute(expense.REFERENCE_PROGRAM, toolbox)
    assert remote.stdout == here.stdout and remote.error is None
    assert [c.tool for c in remote.tool_calls] == [c.tool for c in here.tool_calls]


STATEFUL = """\
count = globals().get("count", 0) + 1
values = await asyncio.gather(*(double(x=i) for i in range(10)))
print(tag, count, sum(values))
"""


async def test_twenty_concurrent_sessions_keep_their_own_state() -> None:
    @tool
    async def double(x: int) -> int:
        """Twice x."""
        await asyncio.sleep(0.01)
        return 2 * x

    tools = Toolbox([double])
    async with running_server(max_sessions_per_token=20) as url, RemoteSandbox(url, TOKEN) as sb:
        sessions = await asyncio.gather(*(sb.open_session() for _ in range(20)))

        async def twice(i: int) -> list[str]:
            session = sessions[i]
            await session.execute(f"tag = 's{i}'", tools)
            first = await session.execute(STATEFUL, tools)
            second = await session.execute(STATEFUL, tools)
            return [first.stdout.strip(), second.stdout.strip()]

        outputs = await asyncio.gather(*(twice(i) for i in range(20)))
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"{url}/metrics")).text
    assert outputs == [[f"s{i} 1 90", f"s{i} 2 90"] for i in range(20)]
    assert "ptc_sandbox_sessions_total 20.0" in metrics
    assert 'ptc_sandbox_executions_total{outcome="ok"} 60.0' in metrics
    assert "ptc_sandbox_tool_calls_total 400.0" in metrics


async def test_errors_timeouts_and_tool_failures_cross_intact() -> None:
    @tool
    async def fails() -> int:
        """Always fails."""
        raise RuntimeError("backend down")

    tools = Toolbox([fails])
    async with running_server() as url, RemoteSandbox(url, TOKEN) as sandbox:
        session = await sandbox.open_session()
        caught = await session.execute(
            "try:\n    await fails()\nexcept ToolError as e:\n    print('caught', e)", tools
        )
        assert "caught" in caught.stdout and "backend down" in caught.stdout
        assert [c.outcome for c in caught.tool_calls] == ["error"]
        slow = await session.execute("import time\ntime.sleep(5)", tools, timeout_s=0.5)
        assert slow.error is not None and slow.error.kind == "timeout"
        boom = await session.execute("1/0", tools)
        assert boom.error is not None and boom.error.type == "ZeroDivisionError"
        again = await session.execute("print('still here')", tools)
        assert again.stdout == "still here\n"


async def test_tokens_limits_and_ownership() -> None:
    async with running_server(max_sessions_per_token=2) as url:
        with pytest.raises(SandboxError, match="check the token"):
            await RemoteSandbox(url, "wrong").start()
        async with RemoteSandbox(url, TOKEN) as mine, RemoteSandbox(url, OTHER_TOKEN) as theirs:
            first = await mine.open_session()
            await mine.open_session()
            with pytest.raises(SandboxError, match="limit"):
                await mine.open_session()
            await theirs.open_session()  # another token has its own limit
            await first.close()  # closing a session frees its place
            third = await mine.open_session()
            assert (await third.execute("print(1)")).stdout == "1\n"
            with pytest.raises(SandboxError, match="closed"):
                await first.execute("print(1)")


async def test_idle_sessions_are_reaped() -> None:
    async with running_server(session_idle_s=0.5) as url, RemoteSandbox(url, TOKEN) as sandbox:
        session = await sandbox.open_session()
        await session.execute("x = 1")
        async with httpx.AsyncClient() as http:
            for _ in range(50):
                ready = (await http.get(f"{url}/readyz")).json()
                if ready["sessions"] == 0:
                    break
                await asyncio.sleep(0.1)
        assert ready["sessions"] == 0
        with pytest.raises(SandboxError, match=r"idle|closed"):
            await session.execute("print(x)")


def _slow_tool(started: asyncio.Event, seconds: float) -> Toolbox:
    @tool
    async def slow_lookup(key: str) -> str:
        """A slow remote lookup."""
        started.set()
        await asyncio.sleep(seconds)
        return key.upper()

    return Toolbox([slow_lookup])


async def test_a_server_killed_mid_execution_is_a_clear_session_lost() -> None:
    started = asyncio.Event()
    with server_process() as (url, process):
        async with RemoteSandbox(url, TOKEN) as sandbox:
            session = await sandbox.open_session()
            running = asyncio.create_task(
                session.execute("print(await slow_lookup(key='a'))", _slow_tool(started, 2.0))
            )
            await asyncio.wait_for(started.wait(), 30)
            process.send_signal(signal.SIGKILL)
            with pytest.raises(SessionLost, match="was lost during the execution"):
                await running
            with pytest.raises(SessionLost, match="open a new session"):
                await session.execute("print(1)")
            with pytest.raises(
                SandboxError,
                match=f"(cannot reach the sandbox server at|could not open a session on) {url}",
            ):
                await sandbox.open_session()


async def test_sigterm_drains_running_executions_and_refuses_new_work() -> None:
    started = asyncio.Event()
    with server_process("--drain-timeout-s", "30") as (url, process):
        async with RemoteSandbox(url, TOKEN) as sandbox:
            session = await sandbox.open_session()
            running = asyncio.create_task(
                session.execute("print(await slow_lookup(key='drained'))", _slow_tool(started, 1.5))
            )
            await asyncio.wait_for(started.wait(), 30)
            process.send_signal(signal.SIGTERM)
            async with httpx.AsyncClient(headers={"authorization": f"Bearer {TOKEN}"}) as http:
                for _ in range(50):
                    ready = await http.get(f"{url}/readyz")
                    if ready.status_code == 503:
                        break
                    await asyncio.sleep(0.02)
                assert ready.status_code == 503 and ready.json()["error"]["code"] == "draining"
            with pytest.raises(SandboxError, match="draining"):
                await sandbox.open_session()  # new work goes elsewhere
            execution = await running  # the running execution finished normally
            assert execution.error is None and execution.stdout == "DRAINED\n"
            await asyncio.to_thread(process.wait, 30)  # then the server stops by itself
        assert process.returncode == 0


async def test_the_proxy_runs_its_programs_on_a_sandbox_server() -> None:
    from fakes.proxy_setup import CODE_TOOL, answer_calls, config, expense_tools, running_proxy

    async with running_server() as url:
        settings = config(sandbox_url=url, sandbox_token=TOKEN)
        async with running_proxy(settings) as proxy:
            client = proxy.client()
            tools = [CODE_TOOL, *expense_tools()]
            messages: list[dict[str, object]] = [{"role": "user", "content": expense.QUESTION}]
            response = await client.messages.create(
                model="claude-expense", max_tokens=1024, messages=messages, tools=tools
            )
            batches = []
            while response.stop_reason == "tool_use":
                batches.append(sum(1 for b in response.content if b.type == "tool_use"))
                messages += [
                    {"role": "assistant", "content": response.content},
                    {"role": "user", "content": await answer_calls(response.content)},
                ]
                response = await client.messages.create(
                    model="claude-expense",
                    max_tokens=1024,
                    messages=messages,
                    tools=tools,
                    container=response.container.id,
                )
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"{url}/metrics")).text
    # Exact batching survives the relay: the server forwards the runtime's "blocked".
    assert batches == [1, 48]
    assert expense.is_correct(response.content[-1].text)
    assert "ptc_sandbox_tool_calls_total 49.0" in metrics

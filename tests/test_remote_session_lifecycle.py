"""Remote and Docker sessions through cancellation, timeouts, restarts, hang-ups and bad frames.

Servers are real (uvicorn on 127.0.0.1, or a private Docker engine); where a race needs a
window, the sandbox's interpreter start is made slow, as a busy Docker engine makes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator

import docker
import httpx
import pytest
import websockets

from fakes.docker_service import DockerHandle, start_docker
from fakes.harness import serve
from fakes.sandbox_server import (
    OTHER_TOKEN,
    TOKEN,
    running_server,
    server_config,
    server_process,
)
from openptc import Toolbox, tool
from openptc.sandbox import remote
from openptc.sandbox.base import Limits, SandboxError
from openptc.sandbox.docker import DockerSandbox
from openptc.sandbox.docker.container import SANDBOX_LABEL
from openptc.sandbox.local import LocalSandbox
from openptc.sandbox.local.worker import Worker
from openptc.sandbox.remote import RemoteSandbox, SessionLost
from openptc.server.app import _make_sandbox, create_server_app

SLEEP = "import time\ntime.sleep(30)"


class SlowStartSandbox(LocalSandbox):
    """A local sandbox whose interpreters take ``delay_s`` to start (a busy Docker engine)."""

    def __init__(self, delay_s: float = 0.0) -> None:
        super().__init__(pool_size=0)
        self.delay_s = delay_s
        self.spawned: list[Worker] = []

    async def _spawn(self) -> Worker:
        await asyncio.sleep(self.delay_s)
        worker = await super()._spawn()
        self.spawned.append(worker)
        return worker

    async def kill_everything(self) -> None:
        for worker in self.spawned:
            await worker.kill()


@contextlib.asynccontextmanager
async def server_on(sandbox: LocalSandbox, **overrides: object) -> AsyncIterator[str]:
    app = create_server_app(server_config(**overrides), sandbox=sandbox)
    async with sandbox, serve(app, lifespan=True) as url:
        yield url


async def sessions_on(url: str) -> int:
    async with httpx.AsyncClient() as http:
        return int((await http.get(f"{url}/readyz")).json()["sessions"])


async def wait_for_sessions(url: str, count: int) -> int:
    for _ in range(100):
        now = await sessions_on(url)
        if now == count:
            break
        await asyncio.sleep(0.05)
    return now


# -- the remote client ----------------------------------------------------------------------------
async def test_a_cancelled_execute_does_not_hand_its_result_to_the_next_one() -> None:
    """A caller that gives up on an execution (wait_for, a cancelled agent) keeps the session;
    the server still runs the old program, and its ``done`` answers the next execute."""
    async with running_server() as url, RemoteSandbox(url, TOKEN) as sandbox:
        session = await sandbox.open_session()
        with pytest.raises(TimeoutError):
            code = "import time\ntime.sleep(1)\nprint('first')"
            await asyncio.wait_for(session.execute(code), 0.3)
        await asyncio.sleep(1.5)  # the server has finished the first program meanwhile
        second = await session.execute("print('second')")
        assert second.stdout == "second\n"


async def test_a_session_that_opens_too_late_is_not_left_on_the_server() -> None:
    """open_session gives up after connect_timeout_s but leaves the WebSocket open (pinged,
    never closed, not even by aclose): the server's session holds the token's place."""
    sandbox = SlowStartSandbox(delay_s=1.5)
    try:
        async with server_on(sandbox, max_sessions_per_token=1) as url:
            impatient = RemoteSandbox(url, TOKEN, connect_timeout_s=0.5)
            with pytest.raises(SandboxError, match="did not open a session"):
                await impatient.open_session()
            await impatient.aclose()
            await asyncio.sleep(2.0)  # the interpreter has started by now
            assert await wait_for_sessions(url, 0) == 0
            async with RemoteSandbox(url, TOKEN) as patient:
                session = await patient.open_session()
                assert (await session.execute("print(1)")).stdout == "1\n"
    finally:
        await sandbox.kill_everything()


async def lose_by_a_client_timeout(
    url: str, sandbox: SlowStartSandbox, client: RemoteSandbox
) -> str:
    """Open a session and make the client give up waiting for an execution's end; the error.

    The execution's interpreter is replaced first (after a timeout), slower than its wall clock
    plus the client's grace — a busy Docker engine starting the replacement container.
    """
    session = await client.open_session()
    slow = await session.execute(SLEEP, timeout_s=0.3)
    assert slow.error is not None and slow.error.kind == "timeout"
    sandbox.delay_s = 1.5
    with pytest.raises(SessionLost) as lost:
        await session.execute("print(1)", timeout_s=0.3)
    return str(lost.value)


async def test_a_client_timeout_is_reported_as_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """TimeoutError is an OSError (Python 3.11+): ``except (ConnectionClosed, OSError)`` catches
    it first, so the "did not report the end ... within N s" branch never runs and the caller
    reads "the connection ... was lost during the execution ()"."""
    monkeypatch.setattr(remote, "REPORT_GRACE_S", 0.5)  # instead of waiting 10 s more
    sandbox = SlowStartSandbox()
    try:
        async with server_on(sandbox) as url, RemoteSandbox(url, TOKEN) as client:
            message = await lose_by_a_client_timeout(url, sandbox, client)
        assert "did not report the end of the execution within 0.8 s" in message, message
    finally:
        await sandbox.kill_everything()


async def test_session_lost_on_a_client_timeout_frees_its_place_on_the_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After that SessionLost the client keeps the socket open (pinged, so never idle on the
    wire): the server keeps the session, and the token cannot open a new one."""
    monkeypatch.setattr(remote, "REPORT_GRACE_S", 0.5)  # instead of waiting 10 s more
    sandbox = SlowStartSandbox()
    try:
        async with (
            server_on(sandbox, max_sessions_per_token=1) as url,
            RemoteSandbox(url, TOKEN) as client,
        ):
            await lose_by_a_client_timeout(url, sandbox, client)
            assert await wait_for_sessions(url, 0) == 0
            sandbox.delay_s = 0.0
            fresh = await client.open_session()
            assert (await fresh.execute("print(2)")).stdout == "2\n"
    finally:
        await sandbox.kill_everything()


# -- the server -----------------------------------------------------------------------------------
async def test_closing_a_session_while_its_interpreter_restarts_leaves_no_process() -> None:
    """PooledSession.close kills the dead worker while execute is starting a new one; the new
    one is then assigned to the closed session and nothing ever kills it (not even aclose)."""
    sandbox = SlowStartSandbox()
    try:
        async with server_on(sandbox) as url, RemoteSandbox(url, TOKEN) as client:
            session = await client.open_session()
            slow = await session.execute(SLEEP, timeout_s=0.3)
            assert slow.error is not None and slow.error.kind == "timeout"
            sandbox.delay_s = 1.0
            running = asyncio.create_task(session.execute("print(1)"))
            await asyncio.sleep(0.3)  # the server is starting the replacement interpreter
            await session.close()  # the client hangs up
            with pytest.raises(SessionLost):
                await running
            await asyncio.sleep(1.5)
        # the server has stopped and the sandbox is closed
        alive = [worker.pid for worker in sandbox.spawned if worker.alive]
        assert alive == []
    finally:
        await sandbox.kill_everything()


async def test_one_tokens_slow_session_starts_do_not_hold_up_other_tokens() -> None:
    """SessionRegistry.create holds one lock across open_session for every token: starts run
    one after another, so a burst of one token makes another token's open time out."""
    sandbox = SlowStartSandbox(delay_s=1.0)
    try:
        async with (
            server_on(sandbox) as url,
            RemoteSandbox(url, TOKEN) as mine,
            RemoteSandbox(url, OTHER_TOKEN, connect_timeout_s=2.0) as theirs,
        ):
            burst = [asyncio.create_task(mine.open_session()) for _ in range(3)]
            await asyncio.sleep(0.1)
            session = await theirs.open_session()  # one start takes 1 s
            assert (await session.execute("print(1)")).stdout == "1\n"
            await asyncio.gather(*burst, return_exceptions=True)
    finally:
        await sandbox.kill_everything()


async def test_a_client_hanging_up_is_not_counted_as_a_sandbox_crash() -> None:
    """A client that disconnects mid-execution shows in ptc_sandbox_kills_total as a crash,
    the series the fleet docs tell operators to watch."""
    async with running_server() as url:
        async with RemoteSandbox(url, TOKEN) as client:
            session = await client.open_session()
            running = asyncio.create_task(session.execute(SLEEP))
            await asyncio.sleep(0.5)
            await session.close()
            with pytest.raises(SessionLost):
                await running
        assert await wait_for_sessions(url, 0) == 0
        await asyncio.sleep(0.2)
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"{url}/metrics")).text
    assert 'ptc_sandbox_kills_total{reason="crashed"}' not in metrics, metrics


async def test_a_tool_result_the_local_bridge_carries_does_not_kill_a_remote_session() -> None:
    """The bridge carries messages up to 64 MiB (protocol.MAX_MESSAGE_BYTES), the client accepts
    as much, but the server's WebSocket (uvicorn's default ws_max_size) stops at 16 MiB: a
    20 MB tool result works locally and loses the remote session."""

    @tool
    async def fetch_document() -> str:
        """A large document."""
        return "x" * 20_000_000

    code = "doc = await fetch_document()\nprint(len(doc))"
    tools = Toolbox([fetch_document])
    async with LocalSandbox(pool_size=0) as local:
        here = await (await local.open_session()).execute(code, tools)
    assert here.stdout == "20000000\n"
    with server_process() as (url, _):  # `ptc sandbox-server`, configured as it ships
        async with RemoteSandbox(url, TOKEN) as sandbox:
            there = await (await sandbox.open_session()).execute(code, tools)
    assert there.stdout == "20000000\n"


@pytest.mark.parametrize(
    "frame",
    [
        b'{"type": "execute", "code": "print(1)"}',  # a binary frame
        '{"type": "execute", "code": "print(1)", "tools": [1]}',
        '{"type": "tool_result", "id": [1], "ok": true}',
    ],
    ids=["binary-frame", "tools-not-objects", "unhashable-id"],
)
async def test_a_malformed_message_is_an_error_reply_not_the_end_of_the_session(
    frame: str | bytes,
) -> None:
    """The protocol answers what it cannot serve with {"type": "error"} (it does so for text
    that is not JSON); these frames instead raise out of the handler: the session, its
    interpreter and its variables are gone (close 1011) and a traceback is logged."""
    async with running_server() as url:
        ws_url = url.replace("http", "ws", 1) + "/v1/sessions"
        headers = {"authorization": f"Bearer {TOKEN}"}
        async with websockets.connect(ws_url, additional_headers=headers) as ws:
            assert json.loads(await ws.recv())["type"] == "session"
            await ws.send(json.dumps({"type": "execute", "id": 1, "code": "x = 41", "tools": []}))
            assert json.loads(await ws.recv())["type"] == "done"
            await ws.send(frame)
            reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert reply["type"] == "error"
            await ws.send(json.dumps({"type": "execute", "id": 2, "code": "print(x + 1)"}))
            done = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert done["execution"]["stdout"] == "42\n"


# -- the Docker backend in the server -------------------------------------------------------------
def test_docker_sessions_live_as_long_as_the_server_keeps_them() -> None:
    """With --backend docker the pool reaps sessions after its default 600 s, whatever
    session_idle_s says (the local backend gets 2 x session_idle_s): with session_idle_s=3600 a
    paused proxy container's session is closed under the server, which still holds it (and its
    place) and answers every execute with "sandbox_failed: ... is closed"."""
    config = server_config(backend="docker", session_idle_s=3600.0)
    sandbox = _make_sandbox(config)
    assert isinstance(sandbox, DockerSandbox)
    assert sandbox.idle_timeout_s > config.session_idle_s


@pytest.fixture(scope="module")
def engine() -> Iterator[DockerHandle]:
    started = start_docker()
    if isinstance(started, str):
        pytest.skip(started)
    try:
        yield started
    finally:
        with contextlib.suppress(Exception):
            client = docker.DockerClient(base_url=started.host, version="auto")
            for container in client.containers.list(all=True):
                container.remove(force=True)
            client.close()
        started.stop()


async def test_closing_a_docker_session_while_it_restarts_leaves_no_container(
    engine: DockerHandle,
) -> None:
    """The same race as for local processes, with no help: a container takes long enough to
    start that a close during the restart leaves one running, owned by nobody, after aclose."""
    limits = Limits(timeout_s=30, memory_mb=256, processes=32, disk_mb=32)
    sandbox = DockerSandbox(limits, pool_size=0, docker_host=engine.host, image=engine.image)
    async with sandbox:
        session = await sandbox.open_session()
        slow = await session.execute(SLEEP, timeout_s=0.3)
        assert slow.error is not None and slow.error.kind == "timeout"
        running = asyncio.create_task(session.execute("print(1)"))
        await asyncio.sleep(0.05)  # the replacement container is being created
        await session.close()
        await asyncio.gather(running, return_exceptions=True)
    client = docker.DockerClient(base_url=engine.host, version="auto")
    try:
        left = client.containers.list(all=True, filters={"label": SANDBOX_LABEL})
        names = [c.name for c in left]
        for container in left:
            container.remove(force=True)
    finally:
        client.close()
    assert names == []

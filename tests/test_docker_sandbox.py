"""The Docker backend end to end: a real engine, the real sandbox image, real limits.

The module starts a private engine and builds the image with the project's own scripts (see
``fakes/docker_service.py``); the tests are skipped, with the reason, only where no engine can
be started. The attach-stream framing has unit tests that need no engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import docker
import pytest
from docker.errors import NotFound

from fakes.docker_service import DockerHandle, start_docker
from openptc.agent import Agent
from openptc.models import ScriptedModel
from openptc.sandbox.base import (
    Limits,
    Sandbox,
    SandboxError,
    Session,
    SessionClosed,
    ToolCallError,
    ToolSignature,
)
from openptc.sandbox.docker import (
    DockerSandbox,
    DockerSession,
    connect,
    default_image,
    gc_command,
    gc_strays,
)
from openptc.sandbox.docker.container import (
    SANDBOX_LABEL,
    Owner,
    container_spec,
    process_start,
)
from openptc.sandbox.docker.stream import FrameSplitter
from openptc.scenarios import brains, expense
from openptc.tools import Toolbox

LIMITS = Limits(timeout_s=30, memory_mb=256, processes=32, disk_mb=32)


# -- the attach stream, without an engine ---------------------------------------------------------
def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


def test_frames_are_split_whatever_the_chunking() -> None:
    frames = [(1, b'{"type":"ready"}\n'), (2, b"stray"), (1, b""), (1, b"x" * 70_000)]
    wire = b"".join(frame(s, p) for s, p in frames)
    for size in (1, 3, 8, 9, 4096, len(wire)):
        splitter = FrameSplitter()
        got = [
            item for i in range(0, len(wire), size) for item in splitter.feed(wire[i : i + size])
        ]
        assert got == frames, size
        assert splitter.pending == 0


def test_an_incomplete_frame_waits_for_the_rest() -> None:
    splitter = FrameSplitter()
    data = frame(1, b"hello\n")
    assert list(splitter.feed(data[:10])) == []
    assert splitter.pending == 10
    assert list(splitter.feed(data[10:])) == [(1, b"hello\n")]


def test_the_container_spec_is_locked_down() -> None:
    spec = container_spec("img", LIMITS, cpus=0.5, owner=Owner.current())
    host = spec.host_config
    assert host["network_mode"] == "none" and host["read_only"] is True
    assert host["cap_drop"] == ["ALL"] and host["security_opt"] == ["no-new-privileges"]
    assert host["pids_limit"] == 32 and host["mem_limit"] == host["memswap_limit"] == "256m"
    assert host["nano_cpus"] == 500_000_000
    assert set(host["tmpfs"]) == {"/tmp", "/workspace"}
    assert "binds" not in host and "mounts" not in host and "volumes" not in host
    assert spec.user == "65534:65534"
    assert json.loads(spec.command[0])["limits"]["memory_mb"] == 256
    assert spec.labels[SANDBOX_LABEL] == "1"


async def test_no_engine_says_what_to_do() -> None:
    sandbox = DockerSandbox(docker_host="unix:///nonexistent/openptc/docker.sock")
    with pytest.raises(SandboxError) as caught:
        await sandbox.start()
    message = str(caught.value)
    assert "no Docker engine is reachable at unix:///nonexistent/openptc/docker.sock" in message
    assert "dockerd" in message and "DOCKER_HOST" in message
    await sandbox.aclose()


# -- with a real engine -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def engine() -> Iterator[DockerHandle]:
    started = start_docker()
    if isinstance(started, str):
        pytest.skip(started)
    print(f"\nprivate Docker engine and sandbox image ready in {started.setup_s:.1f} s")
    try:
        yield started
    finally:
        with contextlib.suppress(Exception):  # nothing may keep the engine busy at its stop
            client = docker.DockerClient(base_url=started.host, version="auto")
            for container in client.containers.list(all=True):
                container.remove(force=True)
            client.close()
        started.stop()


@pytest.fixture(scope="module")
def client(engine: DockerHandle) -> Iterator[docker.DockerClient]:
    api = docker.DockerClient(base_url=engine.host, version="auto")
    yield api
    api.close()


@pytest.fixture
async def sandbox(engine: DockerHandle) -> AsyncIterator[DockerSandbox]:
    async with DockerSandbox(
        LIMITS, pool_size=1, docker_host=engine.host, image=engine.image
    ) as sb:
        yield sb


@pytest.fixture
async def session(sandbox: DockerSandbox) -> DockerSession:
    return await sandbox.open_session()


class Tools:
    """A small tool host that records every call.

    ``echo`` answers at once; ``gathered`` answers only when ``gate`` calls are in flight
    together (so a test proves concurrency without timing anything); ``slow`` never answers.
    """

    def __init__(self, gate: int = 0) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.all_in_flight = asyncio.Event()
        self.gate = gate
        self.waiting = asyncio.Event()  # a slow call is in flight

    def signatures(self) -> Sequence[ToolSignature]:
        return [
            ToolSignature("echo", ("value",)),
            ToolSignature("gathered", ("value",)),
            ToolSignature("slow", ()),
        ]

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        self.calls.append((name, arguments))
        if name == "echo":
            return arguments["value"]
        if name == "gathered":
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self.in_flight == self.gate:
                self.all_in_flight.set()
            await self.all_in_flight.wait()
            return arguments["value"]
        if name == "slow":
            self.waiting.set()
            await asyncio.sleep(3600)
        raise ToolCallError(f"unknown tool {name!r}")


async def assert_healthy(sandbox: DockerSandbox, session: DockerSession) -> None:
    """After any failure: the same session runs again and a second session is unaffected."""
    again = await session.execute("print('alive')")
    assert again.stdout == "alive\n", again
    other = await sandbox.open_session()
    result = await other.execute("print(6 * 7)")
    assert result.stdout == "42\n", result
    await other.close()


def labelled(client: docker.DockerClient) -> list[str]:
    found = client.containers.list(all=True, filters={"label": SANDBOX_LABEL})
    return [c.name or c.id or "" for c in found]


def test_the_scripts_name_the_image_the_backend_looks_for(engine: DockerHandle) -> None:
    assert engine.image == default_image()


async def test_it_is_a_sandbox(sandbox: DockerSandbox, session: DockerSession) -> None:
    assert isinstance(sandbox, Sandbox) and isinstance(session, Session)
    result = await session.execute("pass")
    assert result.isolation.level == "docker"
    assert "no network" in result.isolation.describe()


async def test_expense_audit_through_docker(sandbox: DockerSandbox) -> None:
    tools = expense.make_tools()
    run = await Agent(
        ScriptedModel(brains.expense_audit_brain), tools, sandbox=sandbox, mode="ptc"
    ).run(expense.QUESTION)
    assert run.stop == "answered"
    assert expense.is_correct(run.answer), run.answer
    for over in expense.expected_overspenders():
        assert f"{over.spent_usd:,.2f}" in run.answer
    assert [e.ok for e in run.executions] == [True]
    assert run.executions[0].isolation.level == "docker"
    assert run.usage.tool_calls == 1 + 2 * len(expense.default_data().team("engineering"))
    # the program printed five lines; the records never left the host's tools and the container
    assert run.executions[0].stdout.count("\n") == len(expense.expected_overspenders()) + 1


async def test_the_running_container_is_locked_down(
    session: DockerSession, client: docker.DockerClient
) -> None:
    info = client.api.inspect_container(session.worker.container_id)
    host = info["HostConfig"]
    assert info["State"]["Running"] is True
    assert host["NetworkMode"] == "none"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"] and not host.get("CapAdd")
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["Privileged"] is False
    assert host["PidsLimit"] == LIMITS.processes
    assert host["Memory"] == host["MemorySwap"] == LIMITS.memory_mb * 1024 * 1024
    assert host["NanoCpus"] == 1_000_000_000
    assert set(host["Tmpfs"]) == {"/tmp", "/workspace"}
    assert all(f"size={LIMITS.disk_mb}m" in o and "noexec" in o for o in host["Tmpfs"].values())
    assert info["Mounts"] == [] and not host.get("Binds") and not host.get("Mounts")
    assert host["LogConfig"]["Type"] == "none"
    assert info["Config"]["User"] == "65534:65534"
    assert info["Config"]["Labels"][SANDBOX_LABEL] == "1"
    assert info["Config"]["StdinOnce"] is True
    code = """
import os
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
print(os.getuid(), os.getgid(), os.getcwd())
print(status["CapEff"].strip(), status["NoNewPrivs"].strip())
print(sorted(os.environ))
"""
    result = await session.execute(code)
    assert result.ok, result
    uid_line, caps_line, env_line = result.stdout.splitlines()
    assert uid_line == "65534 65534 /workspace"
    assert caps_line == "0000000000000000 1"
    assert "DOCKER_HOST" not in env_line and "OPENPTC" not in env_line


async def test_no_network(session: DockerSession) -> None:
    code = """
import socket
for target in [("1.1.1.1", 80), ("127.0.0.1", 22), ("172.17.0.1", 2375)]:
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(target)
        print("connected", target)
    except OSError as exc:
        print("refused", type(exc).__name__)
try:
    socket.getaddrinfo("pypi.org", 443)
    print("dns works")
except OSError:
    print("dns fails")
print(sorted(name for _, name in socket.if_nameindex()))
"""
    result = await session.execute(code)
    assert result.ok, result
    assert "connected" not in result.stdout
    assert "dns fails" in result.stdout
    assert "['lo']" in result.stdout


async def test_file_system_is_read_only_outside_the_tmpfs(
    sandbox: DockerSandbox, session: DockerSession
) -> None:
    code = """
import os
for path in ["/etc/passwd-x", "/usr/evil", "/x", "/opt/openptc/x", "/workspace/ok", "/tmp/ok"]:
    try:
        open(path, "w").write("x")
        print("wrote", path)
    except OSError:
        print("denied", path)
written = 0
try:
    for i in range(100):  # 10 MB files (under the file-size limit) until the tmpfs is full
        with open(f"/tmp/fill{i}", "wb") as f:
            f.write(b"x" * (10 * 1024 * 1024))
        written += 10
except OSError as exc:
    print("full after", written, "MB:", exc.strerror)
os.chmod("/tmp/ok", 0o755)
try:
    os.execv("/tmp/ok", ["/tmp/ok"])
except OSError as exc:
    print("exec denied:", exc.strerror)
"""
    result = await session.execute(code)
    assert result.ok, result
    for path in ["/etc/passwd-x", "/usr/evil", "/x", "/opt/openptc/x"]:
        assert f"denied {path}" in result.stdout
    assert "wrote /workspace/ok" in result.stdout and "wrote /tmp/ok" in result.stdout
    assert "No space left on device" in result.stdout
    assert f"full after {LIMITS.disk_mb - LIMITS.disk_mb % 10} MB" in result.stdout
    assert "exec denied: Permission denied" in result.stdout
    await assert_healthy(sandbox, session)


async def test_fork_bomb_hits_the_pids_limit(
    sandbox: DockerSandbox, session: DockerSession
) -> None:
    code = """
import os
children = 0
while True:
    if os.fork() == 0:
        import time
        time.sleep(30)
        os._exit(0)
    children += 1
"""
    result = await session.execute(code)
    assert result.error is not None
    assert result.error.type == "BlockingIOError", result
    assert "Resource temporarily unavailable" in result.error.message
    await assert_healthy(sandbox, session)


async def test_memory_bomb_is_a_memory_error(
    sandbox: DockerSandbox, session: DockerSession
) -> None:
    result = await session.execute("blob = bytearray(2 * 1024 ** 3)\n")
    assert result.error is not None and result.error.kind == "memory"
    assert "memory limit" in result.error.message
    await assert_healthy(sandbox, session)


async def test_memory_over_the_cgroup_limit_kills_the_container(engine: DockerHandle) -> None:
    # Files in the tmpfs live in memory and count against the container's memory limit, yet
    # belong to no process's address space, so no rlimit stops them: only the kernel (the
    # cgroup) can. The container is killed, and the host says why.
    limits = Limits(timeout_s=30, memory_mb=64, disk_mb=256)
    async with DockerSandbox(
        limits, pool_size=0, docker_host=engine.host, image=engine.image
    ) as sandbox:
        session = await sandbox.open_session()
        code = """
for i in range(30):
    with open(f"/workspace/f{i}", "wb") as f:
        f.write(b"x" * (8 * 1024 * 1024))
"""
        result = await session.execute(code)
        assert result.error is not None and result.error.kind == "memory", result
        assert "killed at its limit (64 MB)" in result.error.message
        await assert_healthy(sandbox, session)


async def test_timeout_kills_the_container(
    sandbox: DockerSandbox, session: DockerSession, client: docker.DockerClient
) -> None:
    tools = Tools()
    before = session.worker.container_id
    result = await session.execute(
        "await echo('side effect')\nwhile True:\n    pass\n", tools, timeout_s=1
    )
    assert result.error is not None and result.error.kind == "timeout"
    assert "echo#1:ok" in result.to_model_text()
    with pytest.raises(NotFound):
        client.api.inspect_container(before)
    restarted = await session.execute("print('back')")
    assert restarted.stdout == "back\n"
    assert any("restarted" in n for n in restarted.notices)
    assert session.worker.container_id != before
    await assert_healthy(sandbox, session)


async def test_a_dead_container_mid_call_is_crashed(
    sandbox: DockerSandbox, session: DockerSession
) -> None:
    tools = Tools()
    code = "import ctypes\nawait echo(1)\nctypes.CDLL(None)._exit(3)\n"  # below os._exit
    result = await session.execute(code, tools)
    assert result.error is not None and result.error.kind == "crashed", result
    assert "exit status 3" in result.error.message
    assert [c.outcome for c in result.tool_calls] == ["ok"]
    await assert_healthy(sandbox, session)


async def test_a_container_killed_mid_call_is_crashed(
    sandbox: DockerSandbox, session: DockerSession, client: docker.DockerClient
) -> None:
    tools = Tools()
    running = asyncio.ensure_future(session.execute("await echo(1)\nawait slow()\n", tools))
    await asyncio.wait_for(tools.waiting.wait(), 60)
    await asyncio.to_thread(client.api.kill, session.worker.container_id)
    result = await running
    assert result.error is not None and result.error.kind == "crashed", result
    assert "exit status 137" in result.error.message
    assert [(c.tool, c.outcome) for c in result.tool_calls] == [
        ("echo", "ok"),
        ("slow", "cancelled"),
    ]
    await assert_healthy(sandbox, session)


async def test_stray_output_never_reaches_the_bridge(session: DockerSession) -> None:
    code = """
import os, subprocess, sys
os.write(1, b"not json on fd 1\\n")
subprocess.run([sys.executable, "-c", "print('from a child')"])
print("done")
"""
    result = await session.execute(code)
    assert result.ok, result
    assert result.stdout == "done\n"
    assert "not json on fd 1" in result.stderr and "from a child" in result.stderr


async def test_garbage_on_the_bridge_stops_only_that_sandbox(
    sandbox: DockerSandbox, session: DockerSession
) -> None:
    code = """
import os
for fd in range(0, 64):  # a hostile program scribbles on every descriptor it can find
    try:
        os.write(fd, b"this is not json\\n")
    except OSError:
        pass
await asyncio.sleep(5)
"""
    result = await session.execute(code)
    assert result.error is not None
    assert result.error.kind in ("crashed", "bridge")
    assert "bridge" in result.error.message
    await assert_healthy(sandbox, session)


async def test_gather_fans_out_tool_calls(sandbox: DockerSandbox) -> None:
    tools = Tools(gate=120)  # no call is answered before all 120 are in flight at once
    sessions = [await sandbox.open_session() for _ in range(3)]
    code = "values = await asyncio.gather(*[gathered(i) for i in range(40)])\nprint(values)"
    results = await asyncio.gather(*(s.execute(code, tools) for s in sessions))
    assert [r.stdout for r in results] == [f"{list(range(40))}\n"] * 3, results
    assert tools.max_in_flight == 120
    assert all(r.ok and [c.call_id for c in r.tool_calls] == list(range(1, 41)) for r in results)


async def test_state_persists_and_close_removes_the_container(
    sandbox: DockerSandbox, client: docker.DockerClient
) -> None:
    session = await sandbox.open_session()
    await session.execute("import math\ncounter = 41\nopen('note.txt', 'w').write('kept')")
    result = await session.execute(
        "counter += 1\nprint(counter, math.pi > 3, open('note.txt').read())"
    )
    assert result.stdout == "42 True kept\n"
    container_id = session.worker.container_id
    await session.close()
    with pytest.raises(NotFound):
        client.api.inspect_container(container_id)
    with pytest.raises(SessionClosed):
        await session.execute("print(counter)")


async def test_aclose_leaves_no_container(
    engine: DockerHandle, client: docker.DockerClient
) -> None:
    before = set(labelled(client))
    sandbox = DockerSandbox(LIMITS, pool_size=3, docker_host=engine.host, image=engine.image)
    session = await sandbox.open_session()
    await session.execute("x = 1")
    await sandbox.aclose()  # while the pool is still filling, too
    assert set(labelled(client)) == before


async def test_a_missing_image_names_the_script_that_builds_it(engine: DockerHandle) -> None:
    sandbox = DockerSandbox(docker_host=engine.host, image="openptc-sandbox:missing")
    with pytest.raises(SandboxError) as caught:
        await sandbox.start()
    assert "openptc-sandbox:missing" in str(caught.value)
    assert "scripts/sandbox-image.sh" in str(caught.value)
    await sandbox.aclose()


def test_gc_removes_strays_and_keeps_live_owners(
    engine: DockerHandle, client: docker.DockerClient
) -> None:
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    live = Owner.current()
    gone = Owner(live.host, live.boot_id, int(finished.stdout), "1")  # a process that ended
    made = []
    for owner in (gone, live):
        spec = container_spec(engine.image, LIMITS, cpus=1, owner=owner)
        container = client.containers.run(
            engine.image,
            ["-c", "import time; time.sleep(600)"],
            entrypoint="python3",
            labels=spec.labels,
            network_mode="none",
            detach=True,
        )
        made.append(container.id)
    assert live.is_running() is True and gone.is_running() is False
    assert process_start(live.pid) == live.started
    lines: list[str] = []
    assert gc_command(docker_host=engine.host, echo=lines.append) == 0
    assert lines[0] == "removed 1 stray sandbox container(s)", lines
    assert any("owned by running processes" in line for line in lines)
    with pytest.raises(NotFound):
        client.api.inspect_container(made[0])
    assert client.api.inspect_container(made[1])["State"]["Running"]
    assert gc_strays(docker_host=engine.host, everything=True) == 1
    with pytest.raises(NotFound):
        client.api.inspect_container(made[1])


CRASHING_HOST = """
import asyncio, sys
from openptc.sandbox.base import ToolSignature
from openptc.sandbox.docker import DockerSandbox

class Started:
    def __init__(self):
        self.event = asyncio.Event()
    def signatures(self):
        return [ToolSignature("started", ())]
    async def call(self, name, arguments):
        self.event.set()

async def main():
    sandbox = DockerSandbox(pool_size=1, docker_host=sys.argv[1], image=sys.argv[2])
    session = await sandbox.open_session()
    while not sandbox.pool_ready():
        await asyncio.sleep(0.05)
    tools = Started()
    code = "await started()\\nwhile True:\\n    pass"
    running = asyncio.ensure_future(session.execute(code, tools, timeout_s=600))
    await tools.event.wait()
    await asyncio.sleep(0.5)  # the answer reaches the program, which then spins
    print(session.worker.container_id, flush=True)
    await running

asyncio.run(main())
"""


async def test_gc_removes_what_a_crashed_host_left(
    engine: DockerHandle, client: docker.DockerClient
) -> None:
    host = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CRASHING_HOST,
        engine.host,
        engine.image,
        stdout=asyncio.subprocess.PIPE,
    )
    assert host.stdout is not None
    busy = (await asyncio.wait_for(host.stdout.readline(), 60)).decode().strip()
    host.kill()  # no aclose(), no cleanup of any kind
    await host.wait()
    left = client.containers.list(all=True, filters={"label": f"openptc.owner.pid={host.pid}"})
    assert busy in {c.id for c in left} and len(left) == 2  # the session's and the pool's
    idle = next(c for c in left if c.id != busy)
    for _ in range(100):  # the idle runtime sees its stdin close and exits by itself
        idle.reload()
        if idle.status == "exited":
            break
        await asyncio.sleep(0.1)
    assert idle.status == "exited"
    assert client.api.inspect_container(busy)["State"]["Running"]  # a busy one cannot
    assert await asyncio.to_thread(gc_strays, docker_host=engine.host) == 2
    assert (
        client.containers.list(all=True, filters={"label": f"openptc.owner.pid={host.pid}"}) == []
    )


def test_gc_without_an_engine_says_so() -> None:
    lines: list[str] = []
    assert gc_command(docker_host="unix:///nonexistent/docker.sock", echo=lines.append) == 1
    assert "no Docker engine is reachable" in lines[0]


def test_connect_reports_the_engine_it_reached(engine: DockerHandle) -> None:
    connected = connect(engine.host)
    try:
        assert connected.where == engine.host
        assert any("seccomp" in o for o in connected.security_options())
    finally:
        connected.close()


async def test_a_sandbox_server_runs_its_sessions_in_containers(engine: DockerHandle) -> None:
    """Orchestrator -> sandbox server (WebSocket) -> Docker container, tools back here."""
    from fakes.harness import serve
    from fakes.sandbox_server import TOKEN, server_config
    from openptc.sandbox.remote import RemoteSandbox
    from openptc.server.app import create_server_app

    docker_sandbox = DockerSandbox(LIMITS, pool_size=0, docker_host=engine.host, image=engine.image)
    app = create_server_app(server_config(backend="docker"), sandbox=docker_sandbox)
    try:
        async with serve(app, lifespan=True) as url, RemoteSandbox(url, TOKEN) as remote:
            assert remote.isolation.level == "docker"
            session = await remote.open_session()
            toolbox = Toolbox(expense.make_tools())
            execution = await session.execute(expense.REFERENCE_PROGRAM, toolbox)
            assert execution.error is None, execution.stderr
            assert execution.stdout.splitlines()[-1] == (
                "4 of 24 engineering members exceeded their Q3 travel budget"
            )
            assert len(execution.tool_calls) == 49
    finally:
        await docker_sandbox.aclose()


def test_zz_no_container_left_behind(client: docker.DockerClient) -> None:
    """Runs last in this module: every sandbox above closed its containers."""
    assert labelled(client) == []

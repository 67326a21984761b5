"""Memory and process limits hold for a local sandbox as a whole, through a cgroup of its own.

Skipped, with the reason, where the machine gives no cgroup (then ``Isolation`` says the limits
hold per process only); CI runs as root on a host with writable v1 controllers.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from openptc.sandbox.base import Limits
from openptc.sandbox.local import LocalSandbox
from openptc.sandbox.local.cgroup import PREFIX, CgroupRoot, find_root

ROOT = find_root()
pytestmark = pytest.mark.skipif(not isinstance(ROOT, CgroupRoot), reason=f"no cgroup: {ROOT}")


def sandbox_cgroups(owner: int) -> list[Path]:
    assert isinstance(ROOT, CgroupRoot)
    return [p for parent in ROOT.parents for p in parent.glob(f"{PREFIX}{owner}-*")]


@pytest.fixture
async def sandbox() -> AsyncIterator[LocalSandbox]:
    async with LocalSandbox(Limits(timeout_s=20, memory_mb=256), pool_size=0) as sandbox:
        yield sandbox


async def test_memory_is_limited_for_all_processes_together(sandbox: LocalSandbox) -> None:
    assert sandbox.isolation.cgroup and "memory" in sandbox.isolation.describe()
    session = await sandbox.open_session()
    code = """
import os, time
read, write = os.pipe()
children = []
for _ in range(4):  # each alone is under the limit; together they are far over it
    pid = os.fork()
    if pid == 0:
        block = bytearray(200 * 1024 * 1024)
        for i in range(0, len(block), 4096):
            block[i] = 1
        os.write(write, b"+")
        time.sleep(30)
        os._exit(0)
    children.append(pid)
os.close(write)
os.set_blocking(read, False)
held, killed, deadline = 0, 0, time.monotonic() + 15
while held + killed < len(children) and time.monotonic() < deadline:
    time.sleep(0.05)
    try:
        held += len(os.read(read, 100))
    except BlockingIOError:
        pass
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        killed += os.waitstatus_to_exitcode(status) == -9
print(held, killed)
"""
    result = await session.execute(code)
    held, killed = map(int, result.stdout.split())
    assert held <= 1 and held + killed == 4, result
    assert any("memory limit (256 MB for all its processes together)" in n for n in result.notices)
    assert (await session.execute("print('alive')")).stdout == "alive\n"


async def test_each_sandbox_has_its_cgroup_until_it_is_closed(sandbox: LocalSandbox) -> None:
    before = len(sandbox_cgroups(os.getpid()))
    session = await sandbox.open_session()
    assert len(sandbox_cgroups(os.getpid())) == before + len(ROOT.parents)  # type: ignore[union-attr]
    await session.close()
    assert len(sandbox_cgroups(os.getpid())) == before


async def test_cgroups_of_a_killed_host_are_removed_at_the_next_start(tmp_path: Path) -> None:
    host = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import asyncio
                from openptc.sandbox.local import LocalSandbox
                async def main():
                    async with LocalSandbox(pool_size=1) as sandbox:
                        await sandbox.open_session()
                        print("ready", flush=True)
                        await asyncio.sleep(600)
                asyncio.run(main())
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert host.stdout is not None and host.stdout.readline() == "ready\n"
        assert sandbox_cgroups(host.pid)
    finally:
        host.send_signal(signal.SIGKILL)
        host.wait()
    await asyncio.sleep(0.2)  # bubblewrap dies with its parent
    async with LocalSandbox(pool_size=0):
        assert sandbox_cgroups(host.pid) == []

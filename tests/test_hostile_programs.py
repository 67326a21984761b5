"""Hostile programs, each with the outcome it must get, on the local backend and on Docker.

The table is in ``tests/hostile`` (``cases.py`` lists it by category). Before any sandbox
starts, the host plants canary secrets (its environment, a file under the test's temporary
directory, a file in the real home), opens listeners on 127.0.0.1 and opens a *witness* session.
Each case must then get its own outcome, and leave the host as it was: no canary in any output
or error, no listener reached, no host file written, the witness still running a tool call and
a print, and no process or container of a closed session left. The last test closes everything
and checks that the test process has no more processes, descriptors or temporary files than
before the suite.

Docker runs on a private engine started by ``scripts/docker.sh`` (as in
``test_docker_sandbox.py``); where none can be started those tests are skipped with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import docker
import pytest
import pytest_asyncio

from fakes.docker_service import DockerHandle, start_docker
from hostile.arena import Arena
from hostile.cases import CASES
from hostile.host import (
    ENV_NAME,
    Canaries,
    HostTools,
    Listeners,
    descendants,
    open_descriptors,
)
from hostile.table import Case, Context
from openptc.sandbox.base import Limits, Sandbox
from openptc.sandbox.docker import DockerSandbox
from openptc.sandbox.docker.container import OWNER_PID_LABEL
from openptc.sandbox.local import LocalSandbox

pytestmark = pytest.mark.asyncio(loop_scope="module")

# Small limits, so that every bomb ends quickly.
LIMITS = Limits(timeout_s=3, memory_mb=256, processes=32, disk_mb=16, file_size_mb=8)
# Event-loop turns (of 50 ms) given to transports to see their pipes' end after the last close.
SETTLE_STEPS = 40


def _containers(handle: DockerHandle) -> set[str]:
    client = docker.DockerClient(base_url=handle.host, version="auto")
    try:
        found = client.containers.list(
            all=True, filters={"label": f"{OWNER_PID_LABEL}={os.getpid()}"}
        )
        return {f"container {c.id}" for c in found}
    finally:
        client.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["local", "docker"])
async def arena(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Arena]:
    backend: str = request.param
    baseline_fds = open_descriptors()
    baseline_procs = descendants()
    handle: DockerHandle | None = None
    if backend == "docker":
        started = await asyncio.to_thread(start_docker)
        if isinstance(started, str):
            pytest.skip(started)
        handle = started
    directory = tmp_path_factory.mktemp(f"hostile-{backend}")
    private_tmp = Path(tempfile.mkdtemp(prefix="hostile-tmp-"))
    private_tmp.chmod(0o755)
    saved_tempdir = tempfile.tempdir
    tempfile.tempdir = str(private_tmp)  # every temporary file the host makes goes here
    canaries = Canaries.plant(directory)
    listeners = Listeners()
    sandbox: Sandbox | None = None
    with pytest.MonkeyPatch.context() as patch:
        for name, value in canaries.env.items():
            patch.setenv(name, value)
        try:
            await listeners.start()

            def make(limits: Limits, pool_size: int = 0) -> Sandbox:
                if handle is None:
                    return LocalSandbox(limits, pool_size=pool_size)
                return DockerSandbox(
                    limits, pool_size=pool_size, docker_host=handle.host, image=handle.image
                )

            async def leftovers() -> set[str]:
                found = {f"process {p.pid}@{p.start}" for p in descendants() - baseline_procs}
                if isinstance(sandbox, DockerSandbox) and handle is not None:
                    for _ in range(SETTLE_STEPS * 5):  # a container the pool is starting now
                        if sandbox.pool_ready() or sandbox._closed:
                            break
                        await asyncio.sleep(0.05)
                    found |= await asyncio.to_thread(_containers, handle)
                    # Containers the warm pool keeps ready are the sandbox's, not a leak.
                    found -= {f"container {w.container_id}" for w in sandbox._pool}
                return found

            # Locally no warm pool, so no process starts behind a case's back; a container
            # takes a second to start, so Docker keeps two ready (left out of the leak count).
            sandbox = make(LIMITS, 0 if handle is None else 2)
            witness = await sandbox.open_session()
            shared = await sandbox.open_session()
            context = Context(
                env_name=ENV_NAME,
                canary_file=str(canaries.file),
                home_canary=str(canaries.home_file),
                home_name=canaries.home_file.name,
                tmp_root=str(directory),
                port=listeners.port,
                udp_port=listeners.udp_port,
                abstract=listeners.abstract,
                host_pid=os.getpid(),
                escape=f"openptc-hostile-escape-{os.getpid()}",
            )
            system = ("/", "/etc", "/usr", "/usr/bin", "/opt", "/root", "/tmp", "/dev/shm")
            escape_dirs = (*map(Path, system), directory, Path.home(), Path.cwd())
            yield Arena(
                backend=backend,
                limits=LIMITS,
                make_sandbox=make,
                leftovers=leftovers,
                canaries=canaries,
                listeners=listeners,
                tools=HostTools(canaries.env[ENV_NAME]),
                context=context,
                sandbox=sandbox,
                shared=shared,
                witness=witness,
                escape_dirs=escape_dirs,
                baseline_fds=baseline_fds,
                baseline_procs=baseline_procs,
                private_tmp=private_tmp,
            )
        finally:
            if sandbox is not None:
                await sandbox.aclose()
            await listeners.close()
            canaries.remove()
            tempfile.tempdir = saved_tempdir
            shutil.rmtree(private_tmp, ignore_errors=True)
            if handle is not None:
                with contextlib.suppress(Exception):
                    client = docker.DockerClient(base_url=handle.host, version="auto")
                    for container in client.containers.list(all=True):
                        container.remove(force=True)
                    client.close()
                await asyncio.to_thread(handle.stop)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_hostile_program_is_contained(arena: Arena, case: Case) -> None:
    await arena.run(case)


async def test_nothing_is_left_behind(arena: Arena) -> None:
    """After the suite: no process, descriptor or temporary file more than before it."""
    for own in list(arena.own):
        await own.aclose()
    await arena.sandbox.aclose()
    await arena.listeners.close()
    processes = descendants() - arena.baseline_procs
    assert not processes, f"processes left: {sorted(map(str, processes))}"
    if arena.backend == "docker":
        containers = await arena.leftovers()
        assert not containers, f"containers left: {containers}"
    for _ in range(SETTLE_STEPS):  # pipes are closed as the event loop reads their end
        fds = open_descriptors()
        if fds.keys() <= arena.baseline_fds.keys():
            break
        await asyncio.sleep(0.05)
    extra = {fd: target for fd, target in fds.items() if fd not in arena.baseline_fds}
    assert not extra, f"descriptors left open: {extra}"
    assert sorted(os.listdir(arena.private_tmp)) == [], "temporary files left"
    assert arena.canaries.intact()

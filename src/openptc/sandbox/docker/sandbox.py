"""The Docker backend: each session a hardened container, started ahead of time in a warm pool.

``DockerSandbox`` connects to the engine (``docker_host``, else DOCKER_HOST, else the default
socket), checks that the sandbox image is there, and keeps ``pool_size`` containers started so
that a session does not wait for one. Programs run inside the container; tools run here, on the
host, and their results cross the bridge — tools and their secrets never enter the container.

    async with DockerSandbox() as sandbox:
        session = await sandbox.open_session()
        result = await session.execute(code, toolbox)

The image is built by ``scripts/sandbox-image.sh`` and named after the runtime it holds
(``default_image()``). Strays left by a crashed process are removed by ``gc_strays()``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from openptc.sandbox.base import Isolation, Limits
from openptc.sandbox.docker.connection import connect
from openptc.sandbox.docker.container import (
    USER,
    Owner,
    container_spec,
    default_image,
    docker_isolation,
)
from openptc.sandbox.docker.worker import DockerWorker
from openptc.sandbox.pool import PooledSandbox, PooledSession

if TYPE_CHECKING:
    from openptc.sandbox.docker.engine import Engine

__all__ = ["DockerSandbox", "DockerSession"]

DockerSession = PooledSession[DockerWorker]


class DockerSandbox(PooledSandbox[DockerWorker]):
    """Sessions in locked-down containers: no network, read-only root, non-root, limited.

    ``limits`` set the container's memory (no swap), pids and tmpfs sizes and the runtime's own
    rlimits; ``cpus`` caps the CPU share. Closed sessions and ``aclose()`` remove their
    containers; a crash leaves labelled containers that ``gc_strays()`` removes.
    """

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        image: str | None = None,
        pool_size: int = 2,
        idle_timeout_s: float = 600.0,
        cpus: float = 1.0,
        user: str = USER,
        docker_host: str | None = None,
    ) -> None:
        super().__init__(limits, pool_size=pool_size, idle_timeout_s=idle_timeout_s)
        if cpus <= 0:
            raise ValueError("cpus must be positive")
        self.image = image or default_image()
        self.cpus = cpus
        self.user = user
        self._docker_host = docker_host
        self._owner = Owner.current()
        self._engine: Engine | None = None

    async def _prepare(self) -> Isolation:
        engine = await asyncio.to_thread(connect, self._docker_host)
        try:
            await engine.run(engine.require_image, self.image)
            options = await engine.run(engine.security_options)
        except BaseException:
            await asyncio.to_thread(engine.close)
            raise
        self._engine = engine
        return docker_isolation(options)

    async def _spawn(self) -> DockerWorker:
        assert self._engine is not None
        spec = container_spec(
            self.image, self.limits, cpus=self.cpus, owner=self._owner, user=self.user
        )
        return await DockerWorker.start(self._engine, spec, self.isolation, self.limits)

    async def _release(self) -> None:
        if self._engine is not None:
            engine, self._engine = self._engine, None
            await asyncio.to_thread(engine.close)

    async def __aenter__(self) -> DockerSandbox:
        await self.start()
        return self

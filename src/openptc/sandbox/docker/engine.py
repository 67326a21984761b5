"""The Docker engine as the sandbox needs it, through the official ``docker`` SDK.

Every call blocks (the SDK speaks HTTP with requests), so code on the event loop runs them in a
thread. Every failure comes back as a ``SandboxError`` that says what to do: which engine was
tried and how to start one, which script builds a missing image. Importing this module needs
the SDK; ``connect`` turns its absence into the same kind of error.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import docker
import requests
from docker.errors import DockerException, ImageNotFound, NotFound

from openptc.sandbox.base import SandboxError
from openptc.sandbox.docker.container import SANDBOX_LABEL, ContainerSpec

API_TIMEOUT_S = 60
# Threads for the engine's blocking calls, apart from asyncio's default executor: twenty
# sessions starting at once must not starve other code that runs in threads (model SDKs).
API_THREADS = 16
WAIT_TIMEOUT_S = 5
DEFAULT_HOST = "unix:///var/run/docker.sock"

# What the SDK raises: its own errors, and the transport's when the engine goes away mid-call.
ERRORS = (DockerException, requests.RequestException)

P = ParamSpec("P")
T = TypeVar("T")
START_ENGINE = (
    "start a Docker engine (as root: `dockerd &`; or `scripts/docker.sh start DIR` from an "
    "openptc checkout for a private one) and set DOCKER_HOST to its socket, "
    "e.g. DOCKER_HOST=unix:///var/run/docker.sock"
)
BUILD_IMAGE = (
    "build it from an openptc checkout with scripts/sandbox-image.sh "
    "(add --local-base where no image registry is reachable)"
)


@dataclass(frozen=True)
class ExitState:
    """How a container ended, read before it is removed."""

    exit_code: int | None
    oom_killed: bool


class Engine:
    """One connection to a Docker engine, shared by a sandbox and all its containers."""

    def __init__(self, client: docker.DockerClient, where: str) -> None:
        self.client = client
        self.where = where
        self._threads = ThreadPoolExecutor(API_THREADS, thread_name_prefix="openptc-docker")

    async def run(self, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run one of the blocking methods below in the engine's threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, functools.partial(call, *args, **kwargs))

    @classmethod
    def connect(cls, docker_host: str | None = None) -> Engine:
        """Connect to ``docker_host``, else to DOCKER_HOST (and DOCKER_TLS_*), else the default."""
        where = docker_host or os.environ.get("DOCKER_HOST") or f"{DEFAULT_HOST} (the default)"
        try:
            # "auto": an engine older than the SDK (Debian's 20.10 speaks API 1.41) works too
            if docker_host:
                client = docker.DockerClient(
                    base_url=docker_host, version="auto", timeout=API_TIMEOUT_S
                )
            else:
                client = docker.from_env(version="auto", timeout=API_TIMEOUT_S)
            client.ping()
        except ERRORS as exc:
            raise SandboxError(
                f"no Docker engine is reachable at {where}: {exc}. To use the Docker sandbox, "
                + START_ENGINE
            ) from None
        return cls(client, where)

    def close(self) -> None:
        self._threads.shutdown(wait=False)
        self.client.close()

    def security_options(self) -> list[str]:
        options = self.client.info().get("SecurityOptions") or []
        return [str(option) for option in options]

    def require_image(self, image: str) -> None:
        try:
            self.client.images.get(image)
        except ImageNotFound:
            raise SandboxError(
                f"the sandbox image {image} is not on the Docker engine at {self.where}; "
                + BUILD_IMAGE
            ) from None
        except ERRORS as exc:
            raise SandboxError(f"could not look up the sandbox image {image}: {exc}") from None

    # -- containers -----------------------------------------------------------------------------
    def create(self, spec: ContainerSpec) -> str:
        """Create (not start) a container; its id."""
        api = self.client.api
        try:
            created = api.create_container(
                spec.image,
                command=spec.command,
                entrypoint=spec.entrypoint,
                user=spec.user,
                # not detached: the engine then sets StdinOnce, so the container's stdin closes
                # (and the runtime exits) when the host's attach connection goes away
                detach=False,
                stdin_open=True,
                tty=False,
                environment=spec.environment,
                working_dir=spec.working_dir,
                labels=spec.labels,
                name=spec.name,
                stop_signal="SIGKILL",  # nothing to save: `docker stop` need not wait
                use_config_proxy=False,  # no proxy settings of the host's user leak in
                host_config=api.create_host_config(**spec.host_config),
            )
        except ImageNotFound:
            raise SandboxError(
                f"the sandbox image {spec.image} is missing; " + BUILD_IMAGE
            ) from None
        except ERRORS as exc:
            raise SandboxError(f"could not create a sandbox container: {exc}") from None
        return str(created["Id"])

    def attach(self, container_id: str) -> socket.socket:
        """A non-blocking socket attached to the container's stdin, stdout and stderr.

        Attach before start, so that no output is missed and none can sit in the HTTP client's
        buffer when the socket is taken over. The socket is a duplicate the caller owns; the
        SDK's own objects are closed at once (the connection is never reused for HTTP).
        """
        api = self.client.api
        if not (
            api.base_url.startswith("http+docker://localhost") or api.base_url.startswith("http://")
        ):
            raise SandboxError(
                f"the Docker sandbox attaches to containers over a plain socket; {self.where} is "
                "not one (TLS, ssh and named pipes are not supported): use a unix socket, or a "
                "tcp:// address reached through a tunnel"
            )
        params = {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
        try:
            raw: Any = api.attach_socket(container_id, params=params)
        except ERRORS as exc:
            raise SandboxError(f"could not attach to the sandbox container: {exc}") from None
        try:
            sock = socket.socket(fileno=os.dup(raw.fileno()))
        finally:
            response = getattr(raw, "_response", None)
            with contextlib.suppress(Exception):
                raw.close()
            if response is not None:
                with contextlib.suppress(Exception):
                    response.close()
        sock.setblocking(False)
        return sock

    def start(self, container_id: str) -> None:
        try:
            self.client.api.start(container_id)
        except ERRORS as exc:
            raise SandboxError(f"could not start the sandbox container: {exc}") from None

    def exit_state(self, container_id: str) -> ExitState | None:
        """How the container ended (waiting briefly for the engine to record it); None if gone."""
        api = self.client.api
        with contextlib.suppress(Exception):  # a timeout: the state below says what it can
            api.wait(container_id, timeout=WAIT_TIMEOUT_S)
        try:
            state = api.inspect_container(container_id).get("State") or {}
        except Exception:
            return None
        code = state.get("ExitCode")
        return ExitState(
            exit_code=code if isinstance(code, int) and not state.get("Running") else None,
            oom_killed=bool(state.get("OOMKilled")),
        )

    def remove(self, container_id: str) -> None:
        """Kill and remove the container; nothing if it is gone already."""
        try:
            self.client.api.remove_container(container_id, force=True)
        except NotFound:
            pass
        except ERRORS as exc:
            if "already in progress" not in str(exc):
                raise SandboxError(f"could not remove the sandbox container: {exc}") from None

    def labelled(self) -> list[dict[str, Any]]:
        """Every sandbox container on the engine, running or not (as the list API returns them)."""
        try:
            found = self.client.api.containers(all=True, filters={"label": SANDBOX_LABEL})
        except ERRORS as exc:
            raise SandboxError(f"could not list containers on {self.where}: {exc}") from None
        return [dict(c) for c in found]

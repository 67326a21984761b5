"""One way to make a sandbox of a named kind, for every command that offers the choice.

``ptc serve``, ``ptc sandbox-server`` and ``ptc mcp`` all let the user pick where programs run:
local sandboxes, Docker containers, or a remote sandbox server. The backends' modules are
imported only when chosen (Docker's SDK, the remote client's HTTP stack are optional).
"""

from __future__ import annotations

from typing import Literal

from openptc.extras import needs
from openptc.sandbox.base import Limits, Sandbox

Backend = Literal["local", "docker"]


def make_sandbox(
    backend: Backend,
    limits: Limits,
    *,
    pool_size: int,
    idle_timeout_s: float,
    url: str | None = None,
    token: str | None = None,
) -> Sandbox:
    """A new, not yet started sandbox; ``url`` (a sandbox server, with its ``token``) wins over
    ``backend``, and the server's own limits apply there but for the wall clock."""
    if url is not None:
        with needs("remote", f"the sandbox server {url}"):
            from openptc.sandbox.remote import RemoteSandbox

        if not token:
            raise ValueError(f"the sandbox server {url} needs a token")
        return RemoteSandbox(url, token, execution_timeout_s=limits.timeout_s)
    if backend == "docker":
        with needs("docker", "the Docker sandbox"):
            from openptc.sandbox.docker import DockerSandbox

        return DockerSandbox(limits, pool_size=pool_size, idle_timeout_s=idle_timeout_s)
    if backend != "local":
        raise ValueError(f"sandbox backend must be local or docker, got {backend!r}")
    from openptc.sandbox.local import LocalSandbox

    return LocalSandbox(limits, pool_size=pool_size, idle_timeout_s=idle_timeout_s)

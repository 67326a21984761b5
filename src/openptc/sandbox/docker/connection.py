"""Connecting to the Docker engine, with a clear error when the ``docker`` SDK is not installed.

Kept apart from ``engine`` (which needs the SDK to import at all) so that every part of the
backend can ask for an engine and get a ``SandboxError`` that says what to install.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from openptc.sandbox.base import SandboxError

if TYPE_CHECKING:
    from openptc.sandbox.docker.engine import Engine

__all__ = ["NO_SDK", "connect"]

NO_SDK = (
    "the Docker backend needs the docker package: pip install 'openptc[docker]' "
    "(or pip install 'docker>=7.1')"
)


def connect(docker_host: str | None = None) -> Engine:
    """The engine at ``docker_host`` (else DOCKER_HOST, else the default socket); blocking."""
    try:
        from openptc.sandbox.docker.engine import Engine
    except ImportError as exc:
        if exc.name in ("docker", "requests"):
            raise SandboxError(NO_SDK) from None
        raise
    return Engine.connect(docker_host)

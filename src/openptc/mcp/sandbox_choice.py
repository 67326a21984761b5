"""Where ``ptc mcp`` runs programs: local sandboxes (bubblewrap, or plain processes where the
machine has no namespaces), hardened Docker containers, or a sandbox server (``--sandbox-url``,
its token in ``PTC_SANDBOX_TOKEN``, as for ``ptc serve``).

The choice is described by a small frozen value so the command line can check it before anything
starts, and made into a ``Sandbox`` only when the server starts.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from openptc.sandbox.base import Limits, Sandbox
from openptc.sandbox.choice import Backend, make_sandbox

__all__ = ["SANDBOX_TOKEN_ENV", "SandboxChoice"]

SANDBOX_TOKEN_ENV = "PTC_SANDBOX_TOKEN"


@dataclass(frozen=True)
class SandboxChoice:
    """A sandbox backend and its settings; ``url`` (a sandbox server) overrides ``backend``."""

    backend: Backend = "local"
    url: str | None = None
    token: str | None = None
    timeout_s: float = 50.0
    pool_size: int = 1
    idle_timeout_s: float = 1800.0
    limits: Limits = dataclasses.field(default_factory=Limits)

    def __post_init__(self) -> None:
        if self.backend not in ("local", "docker"):
            raise ValueError(f"sandbox backend must be local or docker, got {self.backend!r}")
        if self.url is not None and not self.token:
            raise ValueError(f"a sandbox server needs its token: set {SANDBOX_TOKEN_ENV}")
        if self.timeout_s <= 0:
            raise ValueError("the program timeout must be positive")

    @classmethod
    def from_flags(
        cls, backend: str, url: str | None, *, timeout_s: float, pool_size: int
    ) -> SandboxChoice:
        """What the command line asked for; the server's token comes from the environment."""
        token = os.environ.get(SANDBOX_TOKEN_ENV) if url else None
        return cls(backend, url, token, timeout_s, pool_size)  # type: ignore[arg-type]

    def describe(self) -> str:
        if self.url is not None:
            return f"sandbox server {self.url}"
        return "Docker containers" if self.backend == "docker" else "local sandboxes"

    def make(self) -> Sandbox:
        """A new, not yet started, sandbox of this kind."""
        return make_sandbox(
            self.backend,
            dataclasses.replace(self.limits, timeout_s=self.timeout_s),
            pool_size=self.pool_size,
            idle_timeout_s=self.idle_timeout_s,
            url=self.url,
            token=self.token,
        )

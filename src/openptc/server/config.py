"""What a sandbox-server operator configures: tokens, per-token limits, idle time, drain."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from openptc.sandbox.base import Limits

TOKENS_ENV = "PTC_SANDBOX_TOKENS"


class ServerConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tokens: tuple[SecretStr, ...] = Field(min_length=1)
    backend: Literal["local", "docker"] = "local"
    max_sessions_per_token: int = Field(default=16, ge=1)
    session_idle_s: float = Field(default=600.0, gt=0)
    drain_timeout_s: float = Field(default=60.0, ge=0)
    pool_size: int = Field(default=2, ge=0)
    # An execution's wall clock is the client's to choose, up to this (a proxy's paused
    # programs wait minutes for their clients); the other limits apply to every session.
    max_execution_s: float = Field(default=600.0, gt=0)
    limits: Limits = Field(default_factory=Limits)

    def sandbox_limits(self) -> Limits:
        return dataclasses.replace(self.limits, timeout_s=self.max_execution_s)

    def owner_of(self, presented: str | None) -> str | None:
        """The digest that names a valid token's sessions; None for a missing or wrong token."""
        if not presented:
            return None
        digest = hashlib.sha256(presented.encode()).hexdigest()
        for token in self.tokens:
            if hashlib.sha256(token.get_secret_value().encode()).hexdigest() == digest:
                return digest[:32]
        return None


def tokens_from(flags: list[str]) -> tuple[SecretStr, ...]:
    """``--token`` flags, then ``PTC_SANDBOX_TOKENS`` (comma-separated)."""
    from_env = [t.strip() for t in os.environ.get(TOKENS_ENV, "").split(",") if t.strip()]
    return tuple(SecretStr(t) for t in [*flags, *from_env])

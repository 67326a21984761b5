"""What a sandbox-server operator configures: tokens, per-token limits, idle time, drain.

Read from a ``--config`` file, ``PTC_SANDBOX_<FIELD>`` variables and flags (see
``settings_layers`` for the precedence)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from openptc.sandbox.base import Limits
from openptc.settings_layers import (
    SettingsError,
    SettingsSpec,
    from_flags,
    merge,
    read_env,
    read_file,
)

TOKENS_ENV = "PTC_SANDBOX_TOKENS"


class ServerConfig(BaseModel):
    """Everything ``ptc sandbox-server`` needs; frozen once built."""

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


SPEC = SettingsSpec(
    ServerConfig,
    prefix="PTC_SANDBOX_",
    flags={"tokens": "--token"},
    accumulate=frozenset({"tokens"}),
)


def build_server_config(
    config_file: Path | None,
    flags: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> ServerConfig:
    """Flags > environment (``PTC_SANDBOX_<FIELD>``) > file > defaults, field by field;
    tokens add up across all three. Raises ``SettingsError`` naming the source of a bad value."""
    file = read_file(SPEC, config_file) if config_file is not None else {}
    data = merge(SPEC, file, read_env(SPEC, environ), from_flags(SPEC, flags))
    if not data.get("tokens"):
        raise SettingsError(
            f"no token: pass --token, set {TOKENS_ENV}=tok1,tok2, or list tokens in --config"
        )
    return ServerConfig.model_validate(data)

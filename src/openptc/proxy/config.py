"""What a proxy operator configures: keys, which backend model serves which name, limits.

Loaded from a TOML or JSON file (``ptc serve --config``) or built in code; frozen once built.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from openptc.proxy.errors import not_found
from openptc.sandbox.base import Limits


def read_settings(path: str | Path) -> dict[str, Any]:
    """A TOML or JSON settings file as a dict, not yet validated: secrets may come later, from
    the environment (deployments keep them out of files)."""
    text = Path(path).read_text()
    data = tomllib.loads(text) if str(path).endswith(".toml") else json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the settings must be a table / JSON object")
    return data


class ApiKey(BaseModel):
    """One client key; its containers and limits are its own."""

    model_config = ConfigDict(frozen=True)

    key: SecretStr
    name: str = "default"
    max_containers: int = Field(default=32, ge=1)

    @property
    def owner(self) -> str:
        """What records store instead of the key: a digest that cannot be turned back into it."""
        return hashlib.sha256(self.key.get_secret_value().encode()).hexdigest()[:32]


class ProxyConfig(BaseModel):
    """Everything ``ptc serve`` needs. ``models`` maps requested names to model strings;
    the name ``"*"`` serves every other name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_keys: tuple[ApiKey, ...] = Field(min_length=1)
    models: dict[str, str] = Field(min_length=1)
    container_idle_s: float = Field(default=300.0, gt=0)
    # An idle container (no request in it, no paused program) keeps its live sandbox this long,
    # then gives it back and is rebuilt by re-running its programs when used again.
    container_warm_s: float = Field(default=120.0, gt=0)
    container_max_age_s: float = Field(default=30 * 24 * 3600.0, gt=0)
    tool_result_timeout_s: float = Field(default=270.0, gt=0)
    program_timeout_s: float = Field(default=600.0, gt=0)
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    max_code_runs_per_request: int = Field(default=10, ge=1)
    redis_url: str | None = None
    # How other replicas reach this one (e.g. http://10.0.3.7:8082): with a shared store, they
    # then forward a container's requests here instead of rebuilding it. None: never forward.
    advertise_url: str | None = None
    sandbox_limits: Limits = Field(default_factory=Limits)
    # Run programs on a sandbox server (``ptc sandbox-server``) instead of in local sandboxes.
    sandbox_url: str | None = None
    sandbox_token: SecretStr | None = None
    pool_size: int = Field(default=2, ge=0)
    # On SIGTERM, how long requests in flight may take to finish before the proxy stops anyway.
    drain_timeout_s: float = Field(default=45.0, ge=0)

    @model_validator(mode="after")
    def _sandbox_server_needs_a_token(self) -> ProxyConfig:
        if self.sandbox_url is not None and self.sandbox_token is None:
            raise ValueError("sandbox_url needs sandbox_token, a token of that sandbox server")
        return self

    @classmethod
    def load(cls, path: str | Path) -> ProxyConfig:
        return cls.model_validate(read_settings(path))

    def model_string(self, requested: str) -> str:
        """The backend model for a requested name, or the API's own 404."""
        found = self.models.get(requested) or self.models.get("*")
        if found is None:
            names = ", ".join(sorted(self.models))
            raise not_found(f"model: {requested} (this proxy serves: {names})")
        return found

    def key_for(self, presented: str) -> ApiKey | None:
        for candidate in self.api_keys:
            if hashlib.sha256(candidate.key.get_secret_value().encode()).digest() == (
                hashlib.sha256(presented.encode()).digest()
            ):
                return candidate
        return None

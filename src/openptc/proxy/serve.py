"""``ptc serve``: build the configuration from a file and/or flags, then run uvicorn, draining on
SIGTERM as ``ptc sandbox-server`` does.

The first SIGTERM (a deploy, a scale-in) or Ctrl-C marks the proxy draining (see ``drain``):
new API requests get a retryable 503, ``/readyz`` answers 503, and requests in flight finish —
for at most ``drain_timeout_s`` — before uvicorn shuts down, closes the containers and the
process exits 0. A second signal stops at once. Programs paused waiting for a client are not
waited for: with a shared store another replica rebuilds them from their records.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from types import FrameType

import uvicorn
from pydantic import SecretStr

from openptc.proxy.config import ApiKey, ProxyConfig, read_settings
from openptc.proxy.drain import Drain

log = logging.getLogger("openptc.proxy")

# After the drain, how long uvicorn may still take to close connections before cancelling.
FINAL_SHUTDOWN_S = 5

KEYS_ENV = "PTC_PROXY_API_KEYS"
# Settings a deployment passes in the environment (a pod's IP, a secret), by config field.
ENV_SETTINGS = {
    "advertise_url": "PTC_ADVERTISE_URL",
    "sandbox_url": "PTC_SANDBOX_URL",
    "sandbox_token": "PTC_SANDBOX_TOKEN",
    "redis_url": "PTC_REDIS_URL",
}


class ServeConfigError(ValueError):
    """The flags and file do not make a usable configuration; the message says what to add."""


def build_config(
    config_file: Path | None,
    models: list[str],
    api_keys: list[str],
    redis_url: str | None,
    *,
    advertise_url: str | None = None,
    sandbox_url: str | None = None,
) -> ProxyConfig:
    """A file gives the base; the environment (``ENV_SETTINGS``, ``PTC_PROXY_API_KEYS``)
    overrides it; flags override both."""
    data = read_settings(config_file) if config_file is not None else {}
    mapping = dict(data.get("models") or {})
    for item in models:
        name, sep, spec = item.partition("=")
        if not sep or not name or not spec:
            raise ServeConfigError(
                f"--model {item!r}: expected NAME=MODEL_STRING, e.g. "
                "'claude-sonnet-4-6=bedrock:us.anthropic.claude-sonnet-4-6' or '*=ollama:qwen3'"
            )
        mapping[name] = spec
    keys: list[object] = list(data.get("api_keys") or [])
    env_keys = [k.strip() for k in os.environ.get(KEYS_ENV, "").split(",") if k.strip()]
    added = api_keys + env_keys
    keys += [ApiKey(key=SecretStr(k), name=f"key-{i + 1}") for i, k in enumerate(added)]
    if not mapping:
        raise ServeConfigError(
            "no backend model: pass --model NAME=MODEL_STRING (NAME '*' serves every name) "
            "or a --config file with a [models] table"
        )
    if not keys:
        raise ServeConfigError(
            f"no API key: pass --api-key, set {KEYS_ENV}=key1,key2, or list api_keys in --config"
        )
    data |= {"models": mapping, "api_keys": keys}
    for field, variable in ENV_SETTINGS.items():
        if os.environ.get(variable):
            data[field] = os.environ[variable]
    flags = {"redis_url": redis_url, "advertise_url": advertise_url, "sandbox_url": sandbox_url}
    data |= {field: value for field, value in flags.items() if value is not None}
    return ProxyConfig.model_validate(data)


class DrainingServer(uvicorn.Server):
    """uvicorn, but the first signal drains instead of stopping (and the exit status is 0)."""

    def __init__(self, config: uvicorn.Config, drain_timeout_s: float) -> None:
        super().__init__(config)
        self._drain_timeout_s = drain_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining = False

    async def serve(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)  # type: ignore[arg-type]

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        drain = self._drain_state()
        if self._draining or drain is None or self._loop is None:
            super().handle_exit(sig, frame)  # a second signal, or not started: stop at once
            return
        self._draining = True
        drain.draining = True
        log.info("draining", extra={"in_flight": drain.in_flight})
        loop = self._loop
        loop.call_soon_threadsafe(lambda: loop.create_task(self._drain(drain)))

    def _drain_state(self) -> Drain | None:
        app = self.config.loaded_app if self.config.loaded else None
        while app is not None and not hasattr(app, "state"):
            app = getattr(app, "app", None)  # through uvicorn's middleware wrappers
        found = getattr(getattr(app, "state", None), "drain", None)
        return found if isinstance(found, Drain) else None

    async def _drain(self, drain: Drain) -> None:
        deadline = time.monotonic() + self._drain_timeout_s
        while drain.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if drain.in_flight:
            log.warning(
                "drain timed out; stopping requests still in flight",
                extra={"in_flight": drain.in_flight},
            )
        else:
            log.info("drained")
        self.should_exit = True  # a clean stop (exit status 0), not the signal re-raised


def run_server(config: ProxyConfig, host: str, port: int, log_level: str) -> None:
    from openptc.hardening import make_undumpable
    from openptc.logs import configure
    from openptc.proxy.app import create_app

    configure(log_level)
    make_undumpable()  # programs in process-isolated sandboxes must not read our keys
    settings = uvicorn.Config(
        create_app(config),
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=FINAL_SHUTDOWN_S,
    )
    DrainingServer(settings, config.drain_timeout_s).run()

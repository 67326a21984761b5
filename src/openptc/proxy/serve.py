"""``ptc serve``: build the configuration from a file, the environment and flags (in that
order of precedence, lowest first; see ``settings_layers``), then run uvicorn, draining on
SIGTERM as ``ptc sandbox-server`` does.

The first SIGTERM (a deploy, a scale-in) or Ctrl-C marks the proxy draining (see ``drain``):
new API requests get a retryable 503, ``/readyz`` answers 503, and requests in flight finish —
for at most ``drain_timeout_s`` — before uvicorn shuts down, closes the containers and the
process exits 0. A second signal stops at once. Programs paused waiting for a client are not
waited for: with a shared store another replica rebuilds them from their records.

Before it listens, ``check_startup`` refuses what would fail every request: a model string that
does not resolve or whose SDK is not installed, a Redis that does not answer. uvicorn logs through
openptc's JSON lines (``logs.configure``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import ValidationError

from openptc.draining import DrainingServer
from openptc.extras import require
from openptc.models.errors import redact_url, redact_urls_in
from openptc.models.resolve import check_model_string
from openptc.proxy.config import ProxyConfig
from openptc.proxy.drain import Drain
from openptc.proxy.store import StoreUnavailable
from openptc.settings_layers import Layer, SettingsSpec, from_flags, merge, read_env, read_file

log = logging.getLogger("openptc.proxy")

# After the drain, how long uvicorn may still take to close connections before cancelling.
FINAL_SHUTDOWN_S = 5

KEYS_ENV = "PTC_PROXY_API_KEYS"
# Every field reads PTC_PROXY_<FIELD>; these older names still work when that one is unset.
LEGACY_ENV = {
    "advertise_url": "PTC_ADVERTISE_URL",
    "sandbox_url": "PTC_SANDBOX_URL",
    "sandbox_token": "PTC_SANDBOX_TOKEN",
    "redis_url": "PTC_REDIS_URL",
}
SPEC = SettingsSpec(
    ProxyConfig,
    prefix="PTC_PROXY_",
    legacy_env=LEGACY_ENV,
    flags={"api_keys": "--api-key", "models": "--model"},
    accumulate=frozenset({"api_keys", "models"}),
)


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
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> ProxyConfig:
    """Flags > environment (``PTC_PROXY_<FIELD>``) > file > defaults, field by field; keys and
    models add up across all three. ``flags`` holds the other fields' flags by field name."""
    file = read_file(SPEC, Path(config_file)) if config_file is not None else {}
    env = read_env(SPEC, environ)
    given = dict(flags or {}) | {
        "redis_url": redis_url,
        "advertise_url": advertise_url,
        "sandbox_url": sandbox_url,
        "models": _models_from_flags(models),
        "api_keys": api_keys,
    }
    flagged = from_flags(SPEC, given)
    _name_keys(flagged, env)
    data = merge(SPEC, file, env, flagged)
    if not data.get("models"):
        raise ServeConfigError(
            "no backend model: pass --model NAME=MODEL_STRING (NAME '*' serves every name) "
            "or a --config file with a [models] table"
        )
    if not data.get("api_keys"):
        raise ServeConfigError(
            f"no API key: pass --api-key, set {KEYS_ENV}=key1,key2, or list api_keys in --config"
        )
    try:
        return ProxyConfig.model_validate(data)
    except ValidationError as exc:  # what no single source decides, e.g. a URL without a token
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ServeConfigError(f"{where + ': ' if where else ''}{first['msg']}") from None


def _models_from_flags(models: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for item in models:
        name, sep, spec = item.partition("=")
        if not sep or not name or not spec:
            raise ServeConfigError(
                f"--model {item!r}: expected NAME=MODEL_STRING, e.g. "
                "'claude-sonnet-4-6=bedrock:us.anthropic.claude-sonnet-4-6' or '*=ollama:qwen3'"
            )
        mapping[name] = spec
    return mapping


def _name_keys(*layers: Layer) -> None:
    """Bare keys (a flag's, the environment's) become key-1, key-2, ... in that order."""
    count = 0
    for layer in layers:
        if "api_keys" not in layer:
            continue
        values, source = layer["api_keys"]
        named: list[Any] = []
        for value in values:
            if isinstance(value, str):
                count += 1
                value = {"key": value, "name": f"key-{count}"}
            named.append(value)
        layer["api_keys"] = (named, source)


# How long the startup check waits for Redis to answer a PING.
REDIS_CHECK_TIMEOUT_S = 5.0


def check_startup(config: ProxyConfig) -> None:
    """Raise ``ServeConfigError`` (one line) on what would fail every request: each model string
    resolves and its SDK imports; Redis, if configured, answers a PING."""
    for name, spec in sorted(config.models.items()):
        try:
            check_model_string(spec)
        except ValueError as exc:
            raise ServeConfigError(f"the model for {name!r}: {redact_urls_in(str(exc))}") from None
    if config.sandbox_url is not None:
        require("proxy", "--sandbox-url", "openptc.sandbox.remote")
    if config.redis_url is not None:
        asyncio.run(_ping_redis(config.redis_url))


async def _ping_redis(url: str) -> None:
    require("proxy", "--redis-url", "openptc.proxy.redis_store")
    from openptc.proxy.redis_store import RedisStore

    timeout = REDIS_CHECK_TIMEOUT_S
    store = RedisStore(url, connect_timeout_s=timeout, timeout_s=timeout)
    try:
        await store.ping()
    except StoreUnavailable as exc:  # it says where, and what to do
        raise ServeConfigError(str(exc)) from None
    except Exception as exc:  # a refusal redis-py does not sort (NOAUTH, an old server)
        why = redact_urls_in(str(exc)) or type(exc).__name__
        raise ServeConfigError(f"Redis at {redact_url(url)} refused a PING: {why}") from None
    finally:
        await store.aclose()


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
        log_config=None,  # keep the JSON handlers ``configure`` installed
        access_log=False,
        timeout_graceful_shutdown=FINAL_SHUTDOWN_S,
    )

    def find(state: Any) -> Drain | None:
        found = getattr(state, "drain", None)
        return found if isinstance(found, Drain) else None

    DrainingServer(settings, config.drain_timeout_s, find, log).run()

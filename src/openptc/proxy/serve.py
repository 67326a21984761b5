"""``ptc serve``: build the configuration from a file and/or flags, then run uvicorn."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import SecretStr

from openptc.proxy.config import ApiKey, ProxyConfig, read_settings

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


def run_server(config: ProxyConfig, host: str, port: int, log_level: str) -> None:
    import uvicorn

    from openptc.hardening import make_undumpable
    from openptc.logs import configure
    from openptc.proxy.app import create_app

    configure(log_level)
    make_undumpable()  # programs in process-isolated sandboxes must not read our keys
    uvicorn.run(create_app(config), host=host, port=port, log_level=log_level, access_log=False)

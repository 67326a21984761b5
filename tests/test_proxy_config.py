"""The proxy's configuration: the documented file loads as written; every field comes from the
file, the environment or a flag, in that order of precedence (lowest first)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from openptc.cli import app
from openptc.proxy import serve
from openptc.proxy.config import ProxyConfig
from openptc.proxy.errors import ApiError
from openptc.proxy.serve import SPEC, ServeConfigError, build_config
from openptc.settings_layers import SettingsError, fields_table

DOCS = Path(__file__).resolve().parents[1] / "docs" / "proxy.md"


def test_the_documented_toml_file_loads(tmp_path: Path) -> None:
    block = re.search(r"```toml\n(.*?)```", DOCS.read_text(), re.S)
    assert block is not None
    path = tmp_path / "proxy.toml"
    path.write_text(block.group(1))
    config = ProxyConfig.load(path)
    assert config.model_string("claude-sonnet-4-6") == "bedrock:us.anthropic.claude-sonnet-4-6"
    assert config.model_string("anything") == "vllm:qwen3-coder"
    assert config.api_keys[0].max_containers == 32
    assert config.sandbox_limits.memory_mb == 512
    assert config.advertise_url == "http://10.0.3.7:8082"
    assert "sk-team-a" not in repr(config)  # keys are secrets, never printed


def test_flags_and_environment_build_a_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTC_PROXY_API_KEYS", "k2, k3")
    config = build_config(None, ["m=scripted:expense-audit"], ["k1"], None)
    assert [k.key.get_secret_value() for k in config.api_keys] == ["k1", "k2", "k3"]
    assert config.key_for("k3") is not None and config.key_for("k4") is None
    with pytest.raises(ApiError, match="this proxy serves: m"):
        config.model_string("other")


@pytest.mark.parametrize(
    ("models", "keys", "message"),
    [
        ([], ["k"], "--model NAME=MODEL_STRING"),
        (["m=x:y"], [], "no API key"),
        (["no-equals-sign"], ["k"], "expected NAME=MODEL_STRING"),
    ],
)
def test_missing_pieces_are_named(
    models: list[str], keys: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PTC_PROXY_API_KEYS", raising=False)
    with pytest.raises(ServeConfigError, match=re.escape(message)):
        build_config(None, models, keys, None)


def test_a_config_file_and_flags_combine(tmp_path: Path) -> None:
    path = tmp_path / "proxy.json"
    path.write_text(
        '{"api_keys": [{"key": "file-key"}], "models": {"a": "scripted:expense-audit"},'
        ' "container_idle_s": 60}'
    )
    config = build_config(path, ["b=scripted:expense-audit"], ["flag-key"], "redis://127.0.0.1/0")
    assert sorted(config.models) == ["a", "b"]
    assert config.key_for("file-key") is not None and config.key_for("flag-key") is not None
    assert config.container_idle_s == 60 and config.redis_url == "redis://127.0.0.1/0"


def test_deployment_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTC_ADVERTISE_URL", "http://10.1.2.3:8082")
    monkeypatch.setenv("PTC_SANDBOX_URL", "http://sandbox:8090")
    monkeypatch.setenv("PTC_SANDBOX_TOKEN", "tok")
    config = build_config(None, ["*=scripted:expense-audit"], ["k"], None)
    assert config.advertise_url == "http://10.1.2.3:8082"
    assert config.sandbox_url == "http://sandbox:8090"
    assert config.sandbox_token is not None and config.sandbox_token.get_secret_value() == "tok"
    flagged = build_config(
        None, ["*=scripted:expense-audit"], ["k"], None, advertise_url="http://flag:1"
    )
    assert flagged.advertise_url == "http://flag:1"  # a flag beats the environment


def test_a_sandbox_url_without_a_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PTC_SANDBOX_TOKEN", raising=False)
    with pytest.raises(ValueError, match="sandbox_token"):
        build_config(None, ["m=x:y"], ["k"], None, sandbox_url="http://sandbox:8090")


# -- every field from every source: a new ProxyConfig field without a sample fails here --------

# A valid value, unlike the default, for each field (as Python; each source spells it its way).
SAMPLES: dict[str, Any] = {
    "api_keys": ["k-sample"],
    "models": {"x": "scripted:expense-audit"},
    "container_idle_s": 61.0,
    "container_warm_s": 62.0,
    "container_max_age_s": 63.0,
    "tool_result_timeout_s": 64.0,
    "program_timeout_s": 65.0,
    "max_body_bytes": 2048,
    "max_code_runs_per_request": 3,
    "redis_url": "redis://r:6379/0",
    "advertise_url": "http://a:1",
    "sandbox_limits": {"memory_mb": 1024},
    "sandbox_url": "http://s:8090",
    "sandbox_token": "tok-sample",
    "pool_size": 5,
    "drain_timeout_s": 7.0,
}
# What a field needs beside it, from the same source.
NEEDS: dict[str, dict[str, Any]] = {"sandbox_url": {"sandbox_token": "tok"}}
BASE = {"api_keys": ["k"], "models": {"*": "scripted:expense-audit"}}


def as_file(values: dict[str, Any], tmp_path: Path) -> Path:
    """A JSON settings file; its keys are tables, as the documented file has them."""
    data = dict(values)
    if "api_keys" in data:
        data["api_keys"] = [{"key": k} for k in data["api_keys"]]
    path = tmp_path / "proxy.json"
    path.write_text(json.dumps(data))
    return path


def as_env(values: dict[str, Any]) -> dict[str, str]:
    env = {}
    for name, value in values.items():
        if name == "api_keys":
            text = ",".join(value)
        elif isinstance(value, dict):
            text = json.dumps(value)
        else:
            text = str(value)
        env[SPEC.env_name(name)] = text
    return env


def as_argv(values: dict[str, Any]) -> list[str]:
    argv: list[str] = []
    for name, value in values.items():
        flag = SPEC.flag_name(name)
        if name == "api_keys":
            argv += [a for key in value for a in (flag, key)]
        elif name == "models":
            argv += [a for item in value.items() for a in (flag, "=".join(item))]
        else:
            argv += [flag, json.dumps(value) if isinstance(value, dict) else str(value)]
    return argv


def served(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> ProxyConfig:
    """``ptc serve ARGV``'s configuration, caught where it would start listening."""
    seen: list[ProxyConfig] = []
    monkeypatch.setattr(serve, "check_startup", lambda config: None)
    monkeypatch.setattr(serve, "run_server", lambda config, *rest: seen.append(config))
    result = CliRunner().invoke(app, ["serve", *argv])
    assert result.exit_code == 0 and seen, result.output
    return seen[0]


def observed(config: ProxyConfig, name: str) -> Any:
    value = getattr(config, name)
    if name == "api_keys":
        return [k.key.get_secret_value() for k in value]
    if name == "sandbox_limits":
        return {"memory_mb": value.memory_mb}
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def other_than(sample: Any) -> Any:
    """A second valid value of the sample's type, for the lower-precedence source."""
    if isinstance(sample, dict):
        return {"memory_mb": 256}
    return sample + "0" if isinstance(sample, str) else sample + 1


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for variable in os.environ:
        if variable.startswith("PTC_"):
            monkeypatch.delenv(variable)
    return monkeypatch


def test_every_field_has_a_sample() -> None:
    assert set(SAMPLES) == set(ProxyConfig.model_fields)


@pytest.mark.parametrize("source", ["file", "env", "flag"])
@pytest.mark.parametrize("name", sorted(ProxyConfig.model_fields))
def test_each_field_comes_from_each_source(
    name: str, source: str, tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    values = BASE | NEEDS.get(name, {}) | {name: SAMPLES[name]}
    if source == "file":
        config = served(["--config", str(as_file(values, tmp_path))], clean_env)
    elif source == "env":
        for variable, text in as_env(values).items():
            clean_env.setenv(variable, text)
        config = served([], clean_env)
    else:
        config = served(as_argv(values), clean_env)
    assert observed(config, name) == SAMPLES[name]


@pytest.mark.parametrize("name", sorted(set(ProxyConfig.model_fields) - set(SPEC.accumulate)))
def test_flags_beat_the_environment_which_beats_the_file(
    name: str, tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    sample = SAMPLES[name]
    lower = other_than(sample)
    file = as_file(BASE | NEEDS.get(name, {}) | {name: lower}, tmp_path)
    for variable, text in as_env({name: sample}).items():
        clean_env.setenv(variable, text)
    from_env = build_config(file, [], [], None)
    assert observed(from_env, name) == sample
    clean_env.delenv(SPEC.env_name(name))
    assert observed(build_config(file, [], [], None), name) == lower
    clean_env.setenv(SPEC.env_name(name), as_env({name: lower})[SPEC.env_name(name)])
    assert observed(served(["--config", str(file), *as_argv({name: sample})], clean_env), name) == (
        sample
    )


def test_the_new_variable_beats_the_older_name(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PTC_ADVERTISE_URL", "http://old:1")
    clean_env.setenv("PTC_PROXY_ADVERTISE_URL", "http://new:1")
    assert build_config(None, ["m=x:y"], ["k"], None).advertise_url == "http://new:1"


@pytest.mark.parametrize(
    ("source", "named"),
    [
        ("file", "proxy.json: pool_size: Input should be greater than or equal to 0"),
        ("env", "PTC_PROXY_POOL_SIZE: pool_size: Input should be greater than or equal to 0"),
        ("flag", "--pool-size: pool_size: Input should be greater than or equal to 0"),
    ],
)
def test_a_bad_value_names_its_source(
    source: str, named: str, tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    bad = {"pool_size": -1}
    file = as_file(BASE | (bad if source == "file" else {}), tmp_path)
    if source == "env":
        clean_env.setenv("PTC_PROXY_POOL_SIZE", "-1")
    with pytest.raises(SettingsError) as caught:
        build_config(file, [], [], None, flags=bad if source == "flag" else None)
    assert str(caught.value).endswith(named)


def test_a_bad_table_from_the_environment_names_the_variable(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("PTC_PROXY_SANDBOX_LIMITS", "{memory_mb: 1}")
    with pytest.raises(SettingsError, match=r"^PTC_PROXY_SANDBOX_LIMITS: expected JSON"):
        build_config(None, ["m=x:y"], ["k"], None)


def test_an_unknown_key_in_the_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "proxy.toml"
    path.write_text('pool_sise = 3\n[models]\n"*" = "x:y"\n')
    with pytest.raises(SettingsError, match=r"proxy.toml: unknown key 'pool_sise'; known keys: "):
        build_config(path, [], ["k"], None)


def test_a_bad_flag_stops_the_cli_with_one_line(clean_env: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(
        app, ["serve", "--api-key", "k", "--model", "*=x:y", "--pool-size", "-2"]
    )
    assert result.exit_code == 2
    assert result.output.strip().startswith("ptc serve: --pool-size: pool_size: ")


def test_the_docs_list_every_field() -> None:
    assert fields_table(SPEC) in DOCS.read_text()

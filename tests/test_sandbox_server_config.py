"""``ptc sandbox-server``'s configuration: every field comes from a ``--config`` file, a
``PTC_SANDBOX_<FIELD>`` variable or a flag — flags > environment > file > defaults — and a bad
value names its source."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from openptc.cli import app
from openptc.server import run
from openptc.server.config import SPEC, ServerConfig, build_server_config
from openptc.settings_layers import SettingsError, fields_table

FLEET_DOC = Path(__file__).resolve().parents[1] / "docs" / "fleet.md"

# A valid value, unlike the default, for each field: a new field without one fails below.
SAMPLES: dict[str, Any] = {
    "tokens": ["tok-sample"],
    "backend": "docker",
    "max_sessions_per_token": 3,
    "session_idle_s": 61.0,
    "drain_timeout_s": 7.0,
    "pool_size": 5,
    "max_execution_s": 62.0,
    "limits": {"memory_mb": 1024},
}
BASE: dict[str, Any] = {"tokens": ["t"]}


def as_file(values: dict[str, Any], tmp_path: Path) -> Path:
    path = tmp_path / "sandbox.json"
    path.write_text(json.dumps(values))
    return path


def as_env(values: dict[str, Any]) -> dict[str, str]:
    def text(value: Any) -> str:
        if isinstance(value, list):
            return ",".join(value)
        return json.dumps(value) if isinstance(value, dict) else str(value)

    return {SPEC.env_name(name): text(value) for name, value in values.items()}


def as_argv(values: dict[str, Any]) -> list[str]:
    argv: list[str] = []
    for name, value in values.items():
        flag = SPEC.flag_name(name)
        if isinstance(value, list):
            argv += [a for item in value for a in (flag, item)]
        else:
            argv += [flag, json.dumps(value) if isinstance(value, dict) else str(value)]
    return argv


def started(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> ServerConfig:
    """``ptc sandbox-server ARGV``'s configuration, caught where it would start listening."""
    seen: list[ServerConfig] = []
    monkeypatch.setattr(run, "run_server", lambda config, *rest: seen.append(config))
    monkeypatch.setattr("openptc.cli.servers.require", lambda *args: None)  # docker SDK or not
    result = CliRunner().invoke(app, ["sandbox-server", *argv])
    assert result.exit_code == 0 and seen, result.output
    return seen[0]


def observed(config: ServerConfig, name: str) -> Any:
    value = getattr(config, name)
    if name == "tokens":
        return [t.get_secret_value() for t in value]
    if name == "limits":
        return {"memory_mb": value.memory_mb}
    return value


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for variable in os.environ:
        if variable.startswith("PTC_"):
            monkeypatch.delenv(variable)
    return monkeypatch


def test_every_field_has_a_sample() -> None:
    assert set(SAMPLES) == set(ServerConfig.model_fields)


@pytest.mark.parametrize("source", ["file", "env", "flag"])
@pytest.mark.parametrize("name", sorted(ServerConfig.model_fields))
def test_each_field_comes_from_each_source(
    name: str, source: str, tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    values = BASE | {name: SAMPLES[name]}
    if source == "file":
        config = started(["--config", str(as_file(values, tmp_path))], clean_env)
    elif source == "env":
        for variable, text in as_env(values).items():
            clean_env.setenv(variable, text)
        config = started([], clean_env)
    else:
        config = started(as_argv(values), clean_env)
    assert observed(config, name) == SAMPLES[name]


@pytest.mark.parametrize("name", sorted(set(ServerConfig.model_fields) - set(SPEC.accumulate)))
def test_flags_beat_the_environment_which_beats_the_file(
    name: str, tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    sample = SAMPLES[name]
    default = observed(ServerConfig(tokens=("t",)), name)  # type: ignore[arg-type]
    lower = {"memory_mb": 256} if isinstance(sample, dict) else default
    file = as_file(BASE | {name: lower}, tmp_path)
    assert observed(build_server_config(file, {}), name) == lower
    variable = SPEC.env_name(name)
    clean_env.setenv(variable, as_env({name: sample})[variable])
    assert observed(build_server_config(file, {}), name) == sample
    clean_env.setenv(variable, as_env({name: lower})[variable])
    flagged = started(["--config", str(file), *as_argv({name: sample})], clean_env)
    assert observed(flagged, name) == sample


def test_tokens_add_up_across_sources(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PTC_SANDBOX_TOKENS", "env-1, env-2")
    config = build_server_config(as_file({"tokens": ["file-1"]}, tmp_path), {"tokens": ["flag"]})
    assert observed(config, "tokens") == ["flag", "env-1", "env-2", "file-1"]
    assert config.owner_of("env-2") is not None and config.owner_of("nope") is None


@pytest.mark.parametrize(
    ("source", "named"),
    [
        (
            "file",
            "sandbox.json: max_sessions_per_token: Input should be greater than or equal to 1",
        ),
        ("env", "PTC_SANDBOX_MAX_SESSIONS_PER_TOKEN: max_sessions_per_token: Input should be "),
        ("flag", "--max-sessions-per-token: max_sessions_per_token: Input should be "),
    ],
)
def test_a_bad_value_names_its_source(
    source: str, named: str, tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    bad = {"max_sessions_per_token": 0}
    file = as_file(BASE | (bad if source == "file" else {}), tmp_path)
    if source == "env":
        clean_env.setenv("PTC_SANDBOX_MAX_SESSIONS_PER_TOKEN", "0")
    with pytest.raises(SettingsError, match="(^|/)" + re.escape(named)):
        build_server_config(file, bad if source == "flag" else {})


def test_a_bad_nested_value_names_the_subfield(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PTC_SANDBOX_LIMITS", '{"memory_mb": "lots"}')
    with pytest.raises(SettingsError, match=r"^PTC_SANDBOX_LIMITS: limits\.memory_mb: "):
        build_server_config(None, {"tokens": ["t"]})


def test_an_unknown_key_in_the_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.toml"
    path.write_text('tokens = ["t"]\nmax_session_per_token = 3\n')
    with pytest.raises(SettingsError, match=r"sandbox.toml: unknown key 'max_session_per_token'"):
        build_server_config(path, {})


def test_a_file_that_does_not_parse_is_named(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.toml"
    path.write_text("tokens = [\n")
    with pytest.raises(SettingsError, match=r"sandbox.toml: not valid TOML: "):
        build_server_config(path, {})


def test_no_token_anywhere_says_where_to_put_one(clean_env: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(app, ["sandbox-server"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "ptc sandbox-server: no token: pass --token, set PTC_SANDBOX_TOKENS=tok1,tok2, "
        "or list tokens in --config"
    )


def test_a_bad_flag_stops_the_cli_with_one_line(clean_env: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(app, ["sandbox-server", "--token", "t", "--pool-size", "-1"])
    assert result.exit_code == 2
    assert result.output.strip().startswith("ptc sandbox-server: --pool-size: pool_size: ")


def test_the_docs_list_every_field() -> None:
    assert fields_table(SPEC) in FLEET_DOC.read_text()

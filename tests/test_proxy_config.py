"""The proxy's configuration: the documented file loads as written; flags and env add to it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from openptc.proxy.config import ProxyConfig
from openptc.proxy.errors import ApiError
from openptc.proxy.serve import ServeConfigError, build_config

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

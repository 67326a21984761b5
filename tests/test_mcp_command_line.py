"""``ptc mcp``'s command line refuses what cannot work before anything starts, on stderr (over
stdio, stdout belongs to the protocol)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from openptc.cli import app


@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        ([], {}, "pass either --config mcp.json or --tools module:attr"),
        (
            ["--config", "mcp.json", "--tools", "x:y"],
            {},
            "pass either --config mcp.json or --tools module:attr",
        ),
        (["--tools", "no_such_module:tools"], {}, "cannot import 'no_such_module'"),
        (["--config", "/no/such/mcp.json"], {}, "cannot read the MCP config /no/such/mcp.json"),
        (
            ["--tools", "fakes.code_mode_toolbox:make_toolbox", "--sandbox-url", "http://s:8090"],
            {"PTC_SANDBOX_TOKEN": ""},
            "a sandbox server needs its token: set PTC_SANDBOX_TOKEN",
        ),
        (
            ["--tools", "fakes.code_mode_toolbox:make_toolbox", "--sandbox", "vm"],
            {},
            "'vm' is not one of 'local', 'docker'",
        ),
        (
            ["--tools", "fakes.code_mode_toolbox:make_toolbox", "--host", "0.0.0.0"],
            {},
            "ptc mcp listens on a loopback address only",
        ),
        (
            ["--tools", "fakes.code_mode_toolbox:make_toolbox", "--transport", "tcp"],
            {},
            "'tcp' is not one of 'stdio', 'http'",
        ),
    ],
)
def test_unusable_flags_exit_2_with_the_reason_on_stderr(
    args: list[str], env: dict[str, str], said: str
) -> None:
    result = CliRunner().invoke(app, ["mcp", *args], env=env)
    assert result.exit_code == 2
    assert said in " ".join(result.stderr.replace("│", " ").split())
    assert result.stdout == ""


async def test_the_sandbox_flags_pick_local_docker_or_a_sandbox_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from openptc.mcp.sandbox_choice import SandboxChoice
    from openptc.sandbox.docker import DockerSandbox
    from openptc.sandbox.local import LocalSandbox
    from openptc.sandbox.remote import RemoteSandbox

    local = SandboxChoice.from_flags("local", None, timeout_s=20, pool_size=1).make()
    assert isinstance(local, LocalSandbox)
    assert (local.limits.timeout_s, local.pool_size) == (20, 1)
    docker = SandboxChoice.from_flags("docker", None, timeout_s=20, pool_size=2).make()
    assert isinstance(docker, DockerSandbox)  # made, not started: no engine is contacted yet
    assert (docker.limits.timeout_s, docker.pool_size) == (20, 2)
    monkeypatch.setenv("PTC_SANDBOX_TOKEN", "s3cret")
    choice = SandboxChoice.from_flags("local", "http://sandboxes:8090", timeout_s=20, pool_size=1)
    assert choice.describe() == "sandbox server http://sandboxes:8090"
    remote = choice.make()
    assert isinstance(remote, RemoteSandbox)
    assert (remote.url, remote.execution_timeout_s) == ("http://sandboxes:8090", 20)
    await remote.aclose()

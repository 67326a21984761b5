"""After a plain ``pip install openptc`` (no extras), asking for what an extra brings is one line
naming the ``pip install 'openptc[...]'`` to run, and exit status 2 — never a traceback ending in
``ModuleNotFoundError``.

The commands run as their own processes in an environment where the extras' packages are absent
(``fakes/not_installed``: the import system itself answers that they are not there)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fakes.ptc_process import EXTRA_PACKAGES, environment, ptc
from openptc.extras import MissingExtra, needs


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The command's only output line; it must not be a traceback."""
    output = done.stdout + done.stderr
    assert "Traceback" not in output and "ModuleNotFoundError" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


@pytest.mark.parametrize(
    ("model", "extra"),
    [
        ("anthropic:claude-sonnet-4-6", "anthropic"),
        ("openai:gpt-4.1", "openai"),
        ("openai-responses:gpt-4.1", "openai"),
        ("bedrock:anthropic.claude-sonnet-4-6", "bedrock"),
        ("bedrock-invoke:anthropic.claude-sonnet-4-6", "bedrock"),
        ("ollama:qwen3", "openai"),
    ],
)
def test_a_model_whose_sdk_is_missing_names_its_extra(model: str, extra: str) -> None:
    done = ptc("demo", "--model", model, "--no-direct", missing=EXTRA_PACKAGES)
    assert done.returncode == 1
    assert f"pip install 'openptc[{extra}]'" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_ptc_run_names_the_extra_of_the_model() -> None:
    done = ptc("run", "hi", "--model", "anthropic:claude-sonnet-4-6", missing=EXTRA_PACKAGES)
    assert done.returncode == 2
    output = " ".join((done.stdout + done.stderr).split())  # however the console wraps it
    assert "needs the anthropic package, which is not installed" in output
    assert "pip install 'openptc[anthropic]'" in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("argv", "extra", "feature"),
    [
        (["serve", "--model", "*=scripted:expense-audit", "--api-key", "k"], "proxy", "ptc serve"),
        (["sandbox-server", "--token", "t"], "server", "ptc sandbox-server"),
        (["mcp", "--tools", "openptc.scenarios.expense:make_tools"], "mcp", "ptc mcp"),
    ],
)
def test_a_server_without_its_extra_says_which_to_install(
    argv: list[str], extra: str, feature: str
) -> None:
    done = ptc(*argv, missing=EXTRA_PACKAGES)
    assert done.returncode == 2
    line = one_error_line(done)
    assert line.startswith(f"error: {feature} needs the ")
    assert line.endswith(f"which is not installed: pip install 'openptc[{extra}]'")


def test_each_backend_choice_checks_its_own_extra() -> None:
    """The web stack is there; what the chosen backend needs is not."""
    docker = ptc("sandbox-server", "--token", "t", "--backend", "docker", missing=["docker"])
    assert docker.returncode == 2
    assert one_error_line(docker) == (
        "error: --backend docker needs the docker package, which is not installed: "
        "pip install 'openptc[docker]'"
    )
    remote = ptc(
        "mcp",
        "--tools",
        "openptc.scenarios.expense:make_tools",
        "--sandbox-url",
        "http://127.0.0.1:9",
        missing=["websockets"],
    )
    assert remote.returncode == 2
    assert one_error_line(remote) == (
        "error: --sandbox-url needs the websockets package, which is not installed: "
        "pip install 'openptc[remote]'"
    )


def test_the_library_raises_an_error_that_is_both_import_and_value_error() -> None:
    program = (
        "from openptc import model_from_string\n"
        "try:\n"
        "    model_from_string('openai:gpt-4.1')\n"
        "except ImportError as exc:\n"
        "    print(isinstance(exc, ValueError), exc.name, exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment(missing=["openai"]),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "True openai the model 'openai:gpt-4.1' needs the openai package, which is not "
        "installed: pip install 'openptc[openai]'"
    )


def test_a_missing_openptc_module_is_a_bug_not_a_missing_extra() -> None:
    with pytest.raises(ModuleNotFoundError) as raised, needs("mcp", "ptc mcp"):
        import openptc.no_such_module  # type: ignore[import-not-found]  # noqa: F401
    assert not isinstance(raised.value, MissingExtra)
    with pytest.raises(MissingExtra, match=r"pip install 'openptc\[mcp\]'"), needs("mcp", "x"):
        import no_such_package_anywhere  # type: ignore[import-not-found]  # noqa: F401

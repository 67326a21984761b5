"""What the commands print keeps its brackets (``openptc[docker]``, ``[models]``): messages are
never read as console markup. And the small things a new user looks for first: ``--version``,
and the choices of ``--backend``, ``--sandbox`` and ``--transport`` in ``--help``."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

from fakes.ptc_process import ptc


def test_ptc_version_prints_the_installed_version() -> None:
    done = ptc("--version")
    assert done.returncode == 0
    assert done.stdout == f"openptc {version('openptc')}\n"


def test_a_config_error_keeps_its_brackets(tmp_path: Path) -> None:
    settings = tmp_path / "proxy.toml"
    settings.write_text('api_keys = [{ key = "k" }]\n')
    done = ptc("serve", "--config", str(settings))
    assert done.returncode == 2
    assert done.stdout == (
        "ptc serve: no backend model: pass --model NAME=MODEL_STRING (NAME '*' serves every "
        "name) or a --config file with a [models] table\n"
    )


def test_an_exception_from_the_users_module_keeps_its_brackets(tmp_path: Path) -> None:
    (tmp_path / "strict.py").write_text(
        "raise RuntimeError(\"set [tools] in settings.toml, or pip install 'openptc[mcp]'\")\n"
    )
    done = ptc("mcp", "--tools", "strict:TOOLS", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        "ptc mcp: cannot import 'strict': strict.py:1: RuntimeError: set [tools] in "
        "settings.toml, or pip install 'openptc[mcp]'\n"
    )


def test_a_missing_extra_keeps_its_brackets_in_the_demo() -> None:
    done = ptc("demo", "--model", "bedrock:anthropic.claude-sonnet-4-6", missing=["botocore"])
    assert done.returncode == 1
    assert done.stdout.splitlines()[-1].endswith("pip install 'openptc[bedrock]'")


def test_help_lists_the_choices() -> None:
    server = ptc("sandbox-server", "--help")
    assert "<local|docker>" in server.stdout
    mcp = ptc("mcp", "--help")
    assert "<stdio|http>" in mcp.stdout and "<local|docker>" in mcp.stdout
    wrong = ptc("sandbox-server", "--token", "t", "--backend", "kubernetes")
    assert wrong.returncode == 2
    unboxed = " ".join(wrong.stderr.replace("│", " ").split())  # click's error is in a box
    assert "'kubernetes' is not one of 'local', 'docker'" in unboxed

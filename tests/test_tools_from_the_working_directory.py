"""``--tools package.module:attribute`` finds the module in the user's project (the working
directory), as uvicorn finds an app, without ``PYTHONPATH=.``; whatever is wrong in that module
is one line naming file:line. ``python -m openptc`` is the same command line."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from fakes.ptc_process import environment, ptc

TOOLS = '''\
from openptc import tool


@tool
async def lookup(key: str) -> str:
    """Look a key up."""
    return key.upper()


TOOLS = [lookup]
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's project: a ``tools`` package beside where they run ``ptc``."""
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "__init__.py").write_text("")
    (tmp_path / "tools" / "mytools.py").write_text(TOOLS)
    return tmp_path


def test_ptc_run_imports_tools_from_the_working_directory(project: Path) -> None:
    done = ptc("run", "hi", "--tools", "tools.mytools:TOOLS", cwd=project)
    output = " ".join((done.stdout + done.stderr).split())
    assert "cannot import" not in output
    # The tools were loaded: the default (scripted) model names them when it refuses them.
    assert "not these (lookup)" in output


def test_load_toolbox_searches_app_dir_first(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    program = (
        "import asyncio, sys\n"
        "from openptc.loading import load_toolbox\n"
        "box = load_toolbox('tools.mytools:TOOLS', app_dir=sys.argv[1])\n"
        "print(box.names, asyncio.run(box.call('lookup', {'key': 'abc'})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program, str(project)],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=60,
        env=environment(),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "('lookup',) ABC"


@pytest.mark.parametrize(
    ("source", "spec", "expected"),
    [
        (
            "from openptc import tool\n\ndef broken(:\n    pass\n",
            "tools.bad:TOOLS",
            "error: cannot import 'tools.bad': tools/bad.py:3: invalid syntax",
        ),
        (
            "import json\n\nSETTINGS = json.loads('{nope')\n",
            "tools.bad:TOOLS",
            "error: cannot import 'tools.bad': tools/bad.py:3: JSONDecodeError: ",
        ),
        (
            "import not_installed_anywhere\n",
            "tools.bad:TOOLS",
            "error: cannot import 'tools.bad': tools/bad.py:1: No module named "
            "'not_installed_anywhere'",
        ),
        (
            TOOLS,
            "tools.bad:TOOL",
            "error: tools/bad.py: module 'tools.bad' has no 'TOOL' (did you mean 'TOOLS'?)",
        ),
        (
            "def make():\n    return undefined_name\n",
            "tools.bad:make",
            "error: tools.bad:make: tools/bad.py:2: NameError: name 'undefined_name' is not "
            "defined",
        ),
        (
            "",
            "tool.bad:TOOLS",
            "error: cannot import 'tool.bad': no module 'tool' in ",
        ),
    ],
)
def test_a_broken_tools_module_is_one_line_naming_file_and_line(
    project: Path, source: str, spec: str, expected: str
) -> None:
    (project / "tools" / "bad.py").write_text(source)
    # ptc mcp loads --tools as ptc run does, and prints its errors on stderr (stdout is MCP's).
    done = ptc("mcp", "--tools", spec, cwd=project)
    assert done.returncode == 2
    assert "Traceback" not in done.stdout + done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(expected.replace("error:", "ptc mcp:")), line


def test_python_dash_m_openptc_is_the_ptc_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "openptc", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment(),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"openptc {version('openptc')}"
    listed = subprocess.run(
        [sys.executable, "-m", "openptc", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**environment(), "COLUMNS": "120"},
    )
    assert listed.returncode == 0
    assert "Usage: ptc [OPTIONS] COMMAND" in listed.stdout
    assert "sandbox-server" in listed.stdout

"""A new user's first run, as the README tells it: a wheel of openptc installed with only the
``[openai]`` extra into a fresh virtualenv, their own tools module in their own project, and
``ptc run`` against an OpenAI-compatible server — all from the project's directory.

The server is the wire-faithful OpenAI fake (Chat Completions, as vLLM or Ollama serve it); its
brain writes one program over the user's tools, then answers with what the program printed.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from fakes.openai_chat_server import Local
from fakes.openai_client import KEY, fake
from openptc.models import ModelRequest, ToolUseBlock, Turn

ROOT = Path(__file__).resolve().parents[1]
TOOLS_MODULE = '''
from openptc import tool

STOCK = {"apples": 3, "pears": 5, "plums": 0}


@tool
async def stock(item: str) -> int:
    """How many of one item are in stock.

    Args:
        item: The item's name, e.g. "apples".
    """
    return STOCK[item]


@tool
async def items() -> list[str]:
    """Every item the shop sells."""
    return sorted(STOCK)


TOOLS = [stock, items]
'''
PROGRAM = """names = await items()
counts = await asyncio.gather(*(stock(item=n) for n in names))
empty = [n for n, c in zip(names, counts) if c == 0]
print(f"{sum(counts)} items in stock; sold out: {', '.join(empty)}")
"""


def shop_brain(request: ModelRequest) -> Turn:
    """Writes the program over the user's tools, then answers with its output."""
    results = request.messages[-1].results
    if not results:
        stubs = request.tools[0].description
        assert "async def stock(item: str) -> int" in stubs, stubs  # the user's tools, as stubs
        return [ToolUseBlock("call_1", "execute_code", {"code": PROGRAM})]
    return f"The shop reports: {results[0].content.strip()}"


def pip(venv: Path, *args: str) -> None:
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


async def test_wheel_with_the_openai_extra_runs_the_users_tools_from_their_project(
    tmp_path: Path,
) -> None:
    dist = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = dist.glob("openptc-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip(venv, f"{wheel}[openai]")
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    names = {p["name"].lower() for p in json.loads(installed.stdout)}
    assert "openai" in names and not names & {"anthropic", "boto3", "uvicorn", "mcp"}

    project = tmp_path / "shop"
    (project / "tools").mkdir(parents=True)
    (project / "tools" / "__init__.py").write_text("")
    (project / "tools" / "mytools.py").write_text(TOOLS_MODULE)

    async with fake(shop_brain, local=Local()) as server:
        process = await asyncio.create_subprocess_exec(
            str(venv / "bin" / "ptc"),
            "run",
            "How many items are in stock, and which are sold out?",
            "--tools",
            "tools.mytools:TOOLS",
            "--model",
            f"openai-compatible:qwen3@{server.url}",
            cwd=project,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OPENAI_API_KEY": KEY},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=180)
    text = out.decode()
    assert process.returncode == 0, text + err.decode()
    # The program's output is shown, and the answer built from it.
    assert text.count("8 items in stock; sold out: plums") >= 2, text
    assert "The shop reports: 8 items in stock; sold out: plums" in text

"""openptc needs none of the agent frameworks: ``import openptc`` works without them, and each
adapter, imported without its framework, fails with one line naming the extra to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

NOT_INSTALLED = Path(__file__).parent / "fakes" / "not_installed"
FRAMEWORKS = "pydantic_ai,agents,langchain_core,langchain,langgraph,smolagents"


def _python(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter where none of the frameworks can be imported."""
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(NOT_INSTALLED),
        "PTC_NOT_INSTALLED": FRAMEWORKS,
    }
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )


def test_openptc_and_its_code_tool_import_without_any_framework() -> None:
    done = _python("import openptc; from openptc import CodeTool; print(CodeTool.__name__)")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "CodeTool\n"


@pytest.mark.parametrize(
    ("module", "line"),
    [
        (
            "pydantic_ai",
            "needs pydantic-ai, which is not installed: pip install 'openptc[pydantic-ai]'",
        ),
        (
            "openai_agents",
            "needs openai-agents, which is not installed: pip install 'openptc[openai-agents]'",
        ),
        (
            "langchain",
            "needs langchain-core, which is not installed: pip install 'openptc[langchain]'",
        ),
        (
            "smolagents",
            "needs smolagents, which is not installed: pip install 'openptc[smolagents]'",
        ),
    ],
)
def test_an_adapter_without_its_framework_names_the_extra(module: str, line: str) -> None:
    done = _python(f"import openptc.integrations.{module}")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last == f"ImportError: openptc.integrations.{module} {line}"

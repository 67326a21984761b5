"""The README's "Use it in your framework" blocks, run as written: each defines ``ask(model,
tools, question)``, which this test calls with its framework's own test model on the expense
audit, so the program runs in openptc's sandbox and the answer comes from what it printed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic_ai.models.function import FunctionModel

from fakes.framework_models import (
    PydanticAiAuditor,
    SmolagentsAuditor,
    agents_auditor,
    langchain_auditor,
)
from openptc.scenarios import expense

README = Path(__file__).resolve().parents[1] / "README.md"
LAST_LINE = "4 of 24 engineering members exceeded their Q3 travel budget"


def readme_ask(containing: str) -> Any:
    """``ask`` as defined by the README's one python block that contains ``containing``."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    (block,) = [b for b in blocks if containing in b]
    namespace: dict[str, Any] = {}
    exec(compile(block, f"README.md ({containing})", "exec"), namespace)
    return namespace["ask"]


def _check(answer: object) -> None:
    assert isinstance(answer, str)
    assert answer.splitlines()[-1] == LAST_LINE
    assert expense.is_correct(answer)


async def test_the_pydantic_ai_block() -> None:
    ask = readme_ask("openptc.integrations.pydantic_ai")
    auditor = PydanticAiAuditor(expense.REFERENCE_PROGRAM)
    _check(await ask(FunctionModel(auditor), expense.make_tools(), expense.QUESTION))
    assert "async def get_expenses(" in str(auditor.seen[0].function_tools[0].description)


async def test_the_openai_agents_block() -> None:
    ask = readme_ask("openptc.integrations.openai_agents")
    model = agents_auditor(expense.REFERENCE_PROGRAM)
    _check(await ask(model, expense.make_tools(), expense.QUESTION))
    assert model.remaining_steps == 0


async def test_the_langchain_block() -> None:
    ask = readme_ask("openptc.integrations.langchain")
    model = langchain_auditor(expense.REFERENCE_PROGRAM)
    _check(await ask(model, expense.make_tools(), expense.QUESTION))
    assert "async def get_expenses(" in model.bound[0]["function"]["description"]


def test_the_smolagents_block() -> None:
    ask = readme_ask("openptc.integrations.smolagents")
    model = SmolagentsAuditor(expense.REFERENCE_PROGRAM)
    _check(ask(model, expense.make_tools(), expense.QUESTION))
    assert "async def get_expenses(" in model.offered[0][0].description

"""``scripted:expense-audit`` is written for the expense audit's tools. Offered anyone else's, it
refuses at its first call with one clear error — ``ptc run`` exits non-zero with that line, the
proxy answers 400 — instead of calling tools nobody declared and reporting a made-up story."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import pytest

from fakes.proxy_setup import CODE_TOOL, config, expense_tools, running_proxy
from fakes.ptc_process import ptc
from openptc import Agent, tool
from openptc.models.errors import ModelBadRequest
from openptc.scenarios import expense

REFUSAL = (
    "scripted:expense-audit is written for the expense audit's tools (get_team_members, "
    "get_expenses, get_custom_budget), "
)
LOOKUP: Any = {
    "name": "lookup",
    "description": "Looks a key up.",
    "input_schema": {"type": "object"},
}


@tool
async def lookup(key: str) -> str:
    """Look a key up."""
    return key.upper()


def test_ptc_run_with_your_tools_and_no_model_fails_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "mytools.py").write_text(
        "from openptc import tool\n\n@tool\nasync def lookup(key: str) -> str:\n"
        '    """Look a key up."""\n    return key\n\nTOOLS = [lookup]\n'
    )
    done = ptc("run", "What is the key?", "--tools", "mytools:TOOLS", cwd=tmp_path)
    assert done.returncode == 1
    output = " ".join((done.stdout + done.stderr).split())  # however the console wraps it
    assert REFUSAL + "not these (lookup); pass --model for your own tools" in output
    assert "stopped: answered" not in output and "NameError" not in output


@pytest.mark.parametrize("mode", ["ptc", "direct", "hybrid"])
async def test_the_library_refuses_at_the_first_call_in_every_mode(mode: Any) -> None:
    agent = Agent("scripted:expense-audit", [lookup], mode=mode)
    with pytest.raises(ModelBadRequest, match="not these \\(lookup\\)"):
        await agent.run("What is the key?")


async def test_its_own_tools_still_get_the_right_answer() -> None:
    agent = Agent("scripted:expense-audit", expense.make_tools(), mode="hybrid")
    result = await agent.run(expense.QUESTION)
    assert expense.is_correct(result.answer)


async def test_the_proxy_answers_400_rather_than_invent_a_tool_call() -> None:
    async with running_proxy(config()) as proxy:
        client = proxy.client()
        hello: dict[str, Any] = {
            "model": "claude-expense",
            "max_tokens": 256,
            "messages": [{"role": "user", "content": "hi"}],
        }
        with pytest.raises(anthropic.BadRequestError) as other_tools:
            await client.messages.create(**hello, tools=[LOOKUP])
        with pytest.raises(anthropic.BadRequestError) as some_of_its_tools:
            one_of_its: Any = expense_tools("direct")[:1]
            await client.messages.create(**hello, tools=one_of_its)
        no_tools = await client.messages.create(**hello)
        its_own: Any = [CODE_TOOL, *expense_tools()]
        audit = await client.messages.create(
            **{**hello, "messages": [{"role": "user", "content": expense.QUESTION}]},
            tools=its_own,
        )
    assert other_tools.value.status_code == 400
    assert REFUSAL + "not these (lookup); pass --model" in other_tools.value.message
    assert REFUSAL + "not only get_team_members;" in some_of_its_tools.value.message
    # Offered no tools, it calls none: it says what it is.
    assert no_tools.stop_reason == "end_turn"
    assert [block.type for block in no_tools.content] == ["text"]
    assert "offline scripted model written for the expense audit" in no_tools.content[0].text
    # With the audit's tools it runs its program, which pauses on the client's tools.
    assert audit.stop_reason == "tool_use"
    called = {block.name for block in audit.content if block.type == "tool_use"}
    assert called == {"get_team_members"}

"""openptc's code tool in LangGraph's ``create_react_agent`` and LangChain's ``create_agent``,
driven by LangChain's own ``GenericFakeChatModel``: the tool bound to the model carries the
stubs in its description, the model's tool call runs the audit program in openptc's sandbox
(calling the expense tools on the host), and the program's output comes back as the
``ToolMessage`` the model answers from."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import ToolMessage

from fakes.framework_models import LangChainAuditor, langchain_auditor
from openptc import CodeTool
from openptc.integrations.langchain import langchain_tool
from openptc.scenarios import expense

LAST_LINE = "4 of 24 engineering members exceeded their Q3 travel budget"


def _check(model: LangChainAuditor, state: dict[str, Any], code: CodeTool) -> None:
    (bound,) = model.bound
    assert bound["function"]["name"] == "execute_code"
    assert "async def get_expenses(employee_id: str, quarter: " in bound["function"]["description"]
    assert bound["function"]["parameters"]["required"] == ["code"]
    messages = state["messages"]
    (result,) = [m for m in messages if isinstance(m, ToolMessage)]
    assert result.tool_call_id == "call_1" and result.status == "success"
    assert isinstance(result.content, str) and result.content.splitlines()[-1] == LAST_LINE
    assert code.last_execution is not None and len(code.last_execution.tool_calls) == 49
    answer = messages[-1].content
    assert answer.endswith(LAST_LINE) and expense.is_correct(answer)


async def test_langgraph_react_agent_runs_the_audit_in_openptc() -> None:
    from langgraph.prebuilt import create_react_agent

    model = langchain_auditor(expense.REFERENCE_PROGRAM)
    async with CodeTool(expense.make_tools()) as code:
        with warnings.catch_warnings():  # LangGraph 1.x points to langchain.agents, tested below
            warnings.simplefilter("ignore", DeprecationWarning)
            graph = create_react_agent(model, [langchain_tool(code)])
        state = await graph.ainvoke({"messages": [("user", expense.QUESTION)]})
        _check(model, state, code)


async def test_langchain_create_agent_runs_the_audit_in_openptc() -> None:
    model = langchain_auditor(expense.REFERENCE_PROGRAM)
    async with CodeTool(expense.make_tools()) as code:
        graph = create_agent(model, [langchain_tool(code)])
        state = await graph.ainvoke({"messages": [("user", expense.QUESTION)]})
        _check(model, state, code)


async def test_the_tool_is_async_only_and_answers_a_malformed_call_in_words() -> None:
    async with CodeTool(expense.make_tools()) as code:
        tool = langchain_tool(code)
        assert await tool.ainvoke({"code": "print(6 * 7)"}) == "42"
        for malformed in ({}, {"program": "print(1)"}, {"code": 7}):
            text = await tool.ainvoke(malformed)
            assert text.startswith('execute_code needs {"code": "<a Python program>"}')
        with pytest.raises(NotImplementedError):
            tool.invoke({"code": "print(1)"})

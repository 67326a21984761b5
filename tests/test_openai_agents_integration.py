"""openptc's code tool in a real OpenAI Agents SDK run, driven by the SDK's own test model
(``agents.testing.ScriptedModel``): the model is shown a strict ``execute_code`` function whose
description holds the stubs, calls it with the audit program, the program runs in openptc's
sandbox calling the expense tools on the host, and the model answers from what it printed."""

from __future__ import annotations

from typing import Any

from agents import Agent, FunctionTool, RunConfig, Runner
from agents.testing import ModelCall, ModelStep, ScriptedModel, assistant_message, function_call

from fakes.framework_models import agents_auditor, function_outputs
from openptc import CodeTool
from openptc.code_tool import NO_CODE
from openptc.integrations.openai_agents import openai_agents_tool
from openptc.scenarios import expense

OFFLINE = RunConfig(tracing_disabled=True)


async def test_an_agents_sdk_run_executes_the_audit_in_openptc() -> None:
    model = agents_auditor(expense.REFERENCE_PROGRAM)
    async with CodeTool(expense.make_tools()) as code:
        agent = Agent(name="auditor", model=model, tools=[openai_agents_tool(code)])
        result = await Runner.run(agent, expense.QUESTION, run_config=OFFLINE)
        execution = code.last_execution

    first = model.first_call
    assert first is not None
    (offered,) = first.tools
    assert isinstance(offered, FunctionTool)
    assert offered.name == "execute_code" and offered.strict_json_schema
    assert "async def get_custom_budget(user_id: str) -> CustomBudget:" in offered.description
    assert offered.params_json_schema["required"] == ["code"]
    assert execution is not None and len(execution.tool_calls) == 49
    assert model.remaining_steps == 0
    answer = result.final_output
    assert isinstance(answer, str)
    assert answer.endswith("4 of 24 engineering members exceeded their Q3 travel budget")
    assert expense.is_correct(answer)


async def test_a_call_without_a_program_is_answered_in_words() -> None:
    def echo(call: ModelCall) -> list[Any]:
        return [assistant_message(function_outputs(call)["bad"])]

    model = ScriptedModel(
        [[function_call("execute_code", '{"program": 1}', call_id="bad")], ModelStep.respond(echo)]
    )
    async with CodeTool(expense.make_tools()) as code:
        agent = Agent(name="auditor", model=model, tools=[openai_agents_tool(code)])
        result = await Runner.run(agent, "go", run_config=OFFLINE)
        assert code.last_execution is None  # nothing ran
    assert result.final_output == NO_CODE.format(name="execute_code")

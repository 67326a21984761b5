"""Two programs, one conversation each, for tests of a proxy's containers over time.

"load" runs LOAD (a tool call that pauses the program, then a variable kept in the container),
"read" runs READ (which needs that variable); a program's result is answered with its output.
"""

from __future__ import annotations

from typing import Any

from fakes.proxy_setup import CODE_TOOL, code_turn, expense_tools
from openptc.models.base import ModelRequest, TextBlock, ToolResultBlock
from openptc.models.scripted import ScriptedModel, Turn
from openptc.scenarios import expense
from openptc.tools import Toolbox

LOAD = """\
members = json.loads(await get_team_members({"department": "sales"}))
print(len(members), "members")
"""
READ = "print(sorted(m['id'] for m in members)[0])"
TOOLS = [CODE_TOOL, *expense_tools()]


def load_and_read_backend(name: str) -> dict[str, Any]:
    """The proxy's backend models: a scripted one for any number of such conversations."""

    def policy(request: ModelRequest) -> Turn:
        last = request.messages[-1]
        results = [b for b in last.content if isinstance(b, ToolResultBlock)]
        if results:
            return f"the program said: {results[-1].content}"
        text = next(b.text for b in last.content if isinstance(b, TextBlock))
        return code_turn(1, READ if text == "read" else LOAD)

    return {"scripted:expense-audit": ScriptedModel(policy, name=name, about=name)}


async def expected_outputs() -> tuple[str, str]:
    """What LOAD and READ must print."""
    members = await Toolbox(expense.make_tools()).call("get_team_members", {"department": "sales"})
    assert isinstance(members, list)
    return f"{len(members)} members\n", f"{min(m['id'] for m in members)}\n"

"""What the model is told, per mode. Versioned, because benchmark figures depend on the wording.

The mechanics of calling tools from a program live in the code tool's description, next to the
stubs they apply to; the system prompt only sets the approach.
"""

from __future__ import annotations

from typing import Literal

from openptc.models.base import ToolSpec

PROMPT_VERSION = "2"

Mode = Literal["ptc", "direct", "hybrid"]

CODE_TOOL_NAME = "execute_code"

CODE_TOOL_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "description": "A complete Python program to run."},
    },
    "required": ["code"],
    "additionalProperties": False,
}

_PTC_SYSTEM = """\
You solve tasks by writing Python programs. Your tool `execute_code` runs a program in a \
sandbox where the application's tools are async Python functions (listed in its description).

Write one program that does the whole job: fetch, loop, filter and compute inside the program, \
then print only the result you need — a compact summary, never raw records. Only printed output \
comes back to you. If a program fails, read the error, fix it and run it again. When you have \
the answer, reply in plain text without calling a tool."""

_DIRECT_SYSTEM = """\
You are a helpful assistant with tools. Call a tool when you need data you do not have; when \
you have what you need, reply with the answer in plain text without calling a tool."""

_HYBRID_ADDENDUM = """

Some tools are also offered as ordinary tool calls. Use a direct call for a single quick \
action; use a program for anything with several calls or much data. A tool listed only inside \
`execute_code` can only be called from a program."""

_CODE_TOOL_RULES = """\
Run a Python 3 program in a sandboxed interpreter and return what it prints.

How tools work inside the program:
- Every tool below is an async function: call it with `await`, e.g. `rows = await tool(x=1)`.
- Pass arguments as keywords (`await tool(x=1)`) or as one dict (`await tool({"x": 1})`).
- Run independent calls concurrently: `await asyncio.gather(*(tool(x=i) for i in items))`.
- Top-level `await` works, and `asyncio` is already imported.
- Results are plain JSON values (dicts, lists, strings, numbers) shaped as in the stubs; they \
are already parsed, do not `json.loads` them.
- A failing tool raises an exception that the program can catch.
- Only what the program prints comes back: print a compact summary, not raw records.
- Variables, imports and functions persist between executions in this session; reuse them \
instead of fetching the same data again.

The shape of a good program (with made-up tools `list_items` and `get_detail`):

```python
items = await list_items(kind="open")
details = await asyncio.gather(*(get_detail(item_id=i["id"]) for i in items))
late = [d for d in details if d["days_overdue"] > 30]
print(f"{len(late)} of {len(items)} open items are over 30 days late:")
for d in late:
    print(f"- {d['id']}: {d['days_overdue']} days")
```
"""


def system_prompt(mode: Mode) -> str:
    """The system prompt for one mode."""
    if mode == "direct":
        return _DIRECT_SYSTEM
    if mode == "hybrid":
        return _PTC_SYSTEM + _HYBRID_ADDENDUM
    return _PTC_SYSTEM


def code_tool_description(stubs: str) -> str:
    """The code tool's description: calling rules, then the stubs of the code-callable tools."""
    body = stubs.strip() or "# (no tools are available inside programs)"
    return f"{_CODE_TOOL_RULES}\nTools available inside the program:\n\n```python\n{body}\n```\n"


def code_tool_spec(stubs: str) -> ToolSpec:
    """The one tool a PTC model sees: ``execute_code({"code": str})``."""
    return ToolSpec(CODE_TOOL_NAME, code_tool_description(stubs), dict(CODE_TOOL_SCHEMA))


def session_lost_text(cause: object) -> str:
    """What the model reads when the sandbox session died under its program (the agent's loop
    and ``CodeTool`` alike): what is gone, and that some calls may have run."""
    return (
        f"[error] The sandbox session was lost ({cause}). The next program runs in a fresh "
        "session: variables, imports and files from earlier programs are gone, and tool calls "
        "this program made before the loss may have run. Run the program again if needed."
    )

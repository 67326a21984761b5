"""What the backend model is told about the client's tools.

A real Claude knows the code execution tool natively; any other model learns it from the tool's
description: the calling rules of the hosted service (one dict or keywords in, the result text
out) and a Python stub per client tool, rendered from the JSON Schema the client sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from openptc import stubs
from openptc.models.base import ToolSpec
from openptc.proxy.tooling import RequestTools
from openptc.proxy.wire import CODE_TOOL_NAME, CustomTool
from openptc.sandbox.base import ToolSignature
from openptc.schema_tools import SchemaBinding

# Results reach a program as the text the client sent back (the hosted service's rule).
RESULT_SCHEMA: dict[str, Any] = {"type": "string"}

CODE_TOOL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"code": {"type": "string", "description": "A complete Python program."}},
    "required": ["code"],
}

_RULES = """\
Run a Python 3 program in a sandboxed container and return what it prints.

How tools work inside the program:
- Every tool below is an async function: `text = await tool({"arg": 1})`; keyword arguments \
(`await tool(arg=1)`) work too.
- A tool returns its result as a string; when the result is JSON, parse it: \
`rows = json.loads(await tool({...}))`.
- Run independent calls concurrently: `await asyncio.gather(*(tool({"x": i}) for i in items))`.
- Top-level `await` works; `asyncio` and `json` are already imported.
- A failing tool raises an exception the program can catch.
- Only what the program prints comes back to you: print a compact summary, never raw records.
- Variables persist between programs in the same container.
"""


def _binding(tool: CustomTool) -> SchemaBinding:
    """The tool's parameters and stub, read from the schema the client sent (a schema that
    cannot be read still leaves the tool callable with one dict)."""
    schema = tool.input_schema.model_dump(exclude_none=True)
    try:
        return SchemaBinding.build(tool.name, schema, RESULT_SCHEMA)
    except ValueError:
        return SchemaBinding.build(tool.name, {"type": "object"}, RESULT_SCHEMA)


def render_stub(tool: CustomTool) -> str:
    """``async def name(a: str, b: int | None = None) -> str`` with the description as docstring,
    rendered as every other stub is ($ref, unions, enums, nested objects and all)."""
    stub = _binding(tool).stub(tool.name, tool.description or "")
    return stubs.render_stubs([stub], imports=False)


def code_tool_spec(tools: Iterable[CustomTool]) -> ToolSpec:
    stubs = "\n\n".join(render_stub(t) for t in tools) or "# (no tools are callable from code)"
    description = f"{_RULES}\nTools available inside the program:\n\n```python\n{stubs}\n```\n"
    return ToolSpec(CODE_TOOL_NAME, description, dict(CODE_TOOL_SCHEMA))


def direct_tool_spec(tool: CustomTool) -> ToolSpec:
    schema = tool.input_schema.model_dump(exclude_none=True)
    return ToolSpec(tool.name, tool.description or "", schema)


def signature(tool: CustomTool) -> ToolSignature:
    """Parameter order for positional calls; the host receives one dict in every form."""
    return ToolSignature(tool.name, _binding(tool).params)


def backend_tools(tools: RequestTools) -> tuple[ToolSpec, ...]:
    """What the backend model is offered: the code tool (when asked for), then direct tools."""
    specs = [direct_tool_spec(t) for t in tools.direct()]
    if tools.code is not None:
        specs.insert(0, code_tool_spec(tools.from_code()))
    return tuple(specs)

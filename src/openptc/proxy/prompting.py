"""What the backend model is told about the client's tools.

A real Claude knows the code execution tool natively; any other model learns it from the tool's
description: the calling rules of the hosted service (one dict or keywords in, the result text
out) and a Python stub per client tool, rendered from the JSON Schema the client sent.
"""

from __future__ import annotations

import json
import keyword
from collections.abc import Iterable
from typing import Any

from openptc.models.base import ToolSpec
from openptc.proxy.tooling import RequestTools
from openptc.proxy.wire import CODE_TOOL_NAME, CustomTool
from openptc.sandbox.base import ToolSignature

_JSON_TYPES = {"string": "str", "integer": "int", "number": "float", "boolean": "bool"}
_JSON_TYPES |= {"array": "list", "object": "dict", "null": "None"}

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


def _annotation(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "Any"
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(_JSON_TYPES.get(k, "Any") for k in kind if isinstance(k, str)) or "Any"
    if "enum" in schema and isinstance(schema["enum"], list):
        return "Literal[" + ", ".join(json.dumps(v) for v in schema["enum"]) + "]"
    return _JSON_TYPES.get(kind, "Any") if isinstance(kind, str) else "Any"


def _parameters(tool: CustomTool) -> list[tuple[str, dict[str, Any], bool]]:
    properties = tool.input_schema.properties or {}
    required = set(tool.input_schema.required or ())
    names = [n for n in properties if n in required] + [n for n in properties if n not in required]
    return [
        (n, properties[n] if isinstance(properties[n], dict) else {}, n in required) for n in names
    ]


def render_stub(tool: CustomTool) -> str:
    """``async def name(a: str, b: int | None = None) -> str`` with the description as docstring."""
    params = []
    documented = []
    for name, schema, required in _parameters(tool):
        if not name.isidentifier() or keyword.iskeyword(name):
            continue  # reachable through the one-dict form only
        annotation = _annotation(schema)
        params.append(f"{name}: {annotation}" if required else f"{name}: {annotation} = None")
        if schema.get("description"):
            documented.append(f"    {name}: {schema['description']}")
    doc = (tool.description or "").strip()
    lines = [f"async def {tool.name}({', '.join(params)}) -> str:", '    """' + doc]
    if documented:
        lines += ["", "    Args:", *("    " + d for d in documented)]
    lines.append('    """')
    return "\n".join(lines)


def code_tool_spec(tools: Iterable[CustomTool]) -> ToolSpec:
    stubs = "\n\n".join(render_stub(t) for t in tools) or "# (no tools are callable from code)"
    description = f"{_RULES}\nTools available inside the program:\n\n```python\n{stubs}\n```\n"
    return ToolSpec(CODE_TOOL_NAME, description, dict(CODE_TOOL_SCHEMA))


def direct_tool_spec(tool: CustomTool) -> ToolSpec:
    schema = tool.input_schema.model_dump(exclude_none=True)
    return ToolSpec(tool.name, tool.description or "", schema)


def signature(tool: CustomTool) -> ToolSignature:
    """Parameter order for positional calls; the host receives one dict in every form."""
    return ToolSignature(tool.name, tuple(name for name, _, _ in _parameters(tool)))


def backend_tools(tools: RequestTools) -> tuple[ToolSpec, ...]:
    """What the backend model is offered: the code tool (when asked for), then direct tools."""
    specs = [direct_tool_spec(t) for t in tools.direct()]
    if tools.code is not None:
        specs.insert(0, code_tool_spec(tools.from_code()))
    return tuple(specs)

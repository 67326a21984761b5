"""What a program gets back from an MCP tool: the most useful plain-JSON form of its result.

MCP tools answer in many shapes (structured content, JSON written as text, plain text, images,
resources), and programs written by models ``json.loads`` what may already be parsed. So:

- ``structuredContent``, when the server sends it (always, for a tool that declares an
  ``outputSchema``), is the value: a dict the program indexes directly, as its stub says.
- Otherwise the content blocks: a text block is the text, or the parsed value when the text is a
  JSON object or array (a bare ``42``, ``true`` or ``"x"`` stays text: "1.10" or "007" must not
  turn into numbers); an image, audio or resource block is a dict of its fields. One block is that
  value; several are a list; none is ``None``.
- ``isError`` results raise ``ToolCallError`` with the server's own text, which the program sees
  as ``ToolError`` and can catch.
"""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types

from openptc.sandbox.base import ToolCallError

__all__ = ["error_text", "result_value", "unwrapped_output_schema"]


def unwrapped_output_schema(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """The schema of a wrapped result's value, or None when the result is not wrapped.

    The official SDKs' high-level servers wrap a tool's non-object return value as
    ``{"result": value}`` under a generated ``<name>Output`` schema; a program (and its stub)
    should see the value itself, not ``["result"]``.
    """
    if not isinstance(schema, dict) or not str(schema.get("title", "")).endswith("Output"):
        return None
    properties = schema.get("properties")
    if not isinstance(properties, dict) or list(properties) != ["result"]:
        return None
    inner = dict(properties["result"]) if isinstance(properties["result"], dict) else {}
    for key in ("$defs", "definitions"):  # references inside the value still resolve
        if key in schema:
            inner.setdefault(key, schema[key])
    return inner


def result_value(result: types.CallToolResult, tool: str, *, wrapped: bool = False) -> Any:
    """The program's value for one ``tools/call`` result; raises ``ToolCallError`` on isError.

    ``wrapped``: the tool's output schema wraps its value as ``{"result": value}``."""
    if result.is_error:
        raise ToolCallError(f"{tool}: {error_text(result)}", kind="ToolError")
    if result.structured_content is not None:
        content = result.structured_content
        if wrapped and isinstance(content, dict) and set(content) == {"result"}:
            return content["result"]
        return content
    values = [_block_value(block) for block in result.content]
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def error_text(result: types.CallToolResult) -> str:
    """The server's explanation of an error result, as one string."""
    parts = [b.text for b in result.content if isinstance(b, types.TextContent) and b.text]
    if parts:
        return "\n".join(parts)
    if result.structured_content:
        return json.dumps(result.structured_content, ensure_ascii=False)
    return "the server reported an error without saying what went wrong"


def _block_value(block: types.ContentBlock) -> Any:
    if isinstance(block, types.TextContent):
        return parse_json_text(block.text)
    data = block.model_dump(mode="json", by_alias=True, exclude_none=True)
    data.pop("annotations", None)
    data.pop("_meta", None)
    if isinstance(block, types.EmbeddedResource):  # flatten: {"type": "resource", "uri", "text"}
        data.update(data.pop("resource", {}))
    return data


def parse_json_text(text: str) -> Any:
    """The parsed value when ``text`` is a JSON object or array, else the text itself."""
    stripped = text.strip()
    if stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]"):
        try:
            return json.loads(stripped)
        except ValueError:
            pass
    return text

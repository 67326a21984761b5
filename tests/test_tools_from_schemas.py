"""Tools from JSON Schemas: stubs rendered from the schemas, arguments checked with jsonschema,
the call end to end through a real sandbox; and the three findings of issue 13 (partials,
``**kwargs``, how sync tools run)."""

from __future__ import annotations

import ast
import asyncio
import functools
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from openptc import LocalSandbox, Tool, Toolbox, ToolCallError, tool
from openptc.sandbox.base import Limits, ToolSignature

ROOT = Path(__file__).resolve().parents[1]


async def echo(arguments: dict[str, Any]) -> Any:
    return arguments


def schema_tool(
    input_schema: dict[str, Any],
    output_schema: dict[str, Any] | None = None,
    *,
    name: str = "f",
    description: str = "Do it.",
) -> Tool[[dict[str, Any]], Any]:
    return Tool.from_schema(name, description, input_schema, echo, output_schema=output_schema)


def stub(*args: Any, **kwargs: Any) -> str:
    source = schema_tool(*args, **kwargs).render_stub()
    ast.parse(source)
    return source


# --- stubs -------------------------------------------------------------------------------------

ORDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "$defs": {
        "LineItem": {
            "type": "object",
            "description": "One line of an order.",
            "properties": {
                "sku": {"type": "string", "description": "stock keeping unit"},
                "qty": {"type": "integer", "minimum": 1, "default": 1},
            },
            "required": ["sku"],
        },
        "Node": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
            },
            "required": ["name"],
        },
    },
    "properties": {
        "order_id": {"type": "string", "description": "The order's id.", "pattern": "^o[0-9]+$"},
        "limit": {"type": "integer", "default": 10},
        "items": {"type": "array", "items": {"$ref": "#/$defs/LineItem"}},
        "tree": {"$ref": "#/$defs/Node"},
        "shipping": {
            "type": "object",
            "properties": {"address": {"type": "string"}, "express": {"type": "boolean"}},
            "required": ["address"],
        },
        "since": {"type": "string", "format": "date", "description": "Only after this day."},
    },
    "required": ["order_id", "items"],
}


def test_refs_defs_recursion_arrays_of_objects_required_and_defaults() -> None:
    assert stub(ORDER_SCHEMA, name="get_order", description="Find one order.") == (
        "from typing import Any, NotRequired, TypedDict\n"
        "\n"
        "class LineItem(TypedDict):\n"
        '    """One line of an order."""\n'
        "\n"
        "    sku: str  # stock keeping unit\n"
        "    qty: NotRequired[int]  # >= 1; default 1\n"
        "\n"
        "class Node(TypedDict):\n"
        "    name: str\n"
        "    children: NotRequired[list[Node]]\n"
        "\n"
        "class Shipping(TypedDict):\n"
        "    address: str\n"
        "    express: NotRequired[bool]\n"
        "\n"
        "async def get_order(\n"
        "    order_id: str,\n"
        "    items: list[LineItem],\n"
        "    limit: int = 10,\n"
        "    tree: Node = ...,\n"
        "    shipping: Shipping = ...,\n"
        "    since: str = ...,\n"
        ") -> Any:\n"
        '    """Find one order.\n'
        "\n"
        "    Args:\n"
        "        order_id: The order's id. (matches ^o[0-9]+$)\n"
        "        since: Only after this day. (ISO 8601 date)\n"
        '    """\n'
    )


def test_unions_enums_consts_and_nullables() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": ["string", "null"]},
            "b": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None},
            "c": {"type": "string", "nullable": True},  # OpenAPI 3.0
            "d": {"enum": ["x", "y", None]},
            "e": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
            "f": {"type": "integer", "enum": [1, 2, 3]},
            "g": {"oneOf": [{"const": "asc", "title": "up"}, {"const": "desc"}]},
            "h": {"type": "array", "prefixItems": [{"type": "number"}, {"type": "string"}]},
            "i": {"anyOf": [{"$ref": "#/$defs/Point"}, {"type": "null"}]},
            "j": {"enum": [1, True, "1"]},
        },
        "required": ["a", "c"],
        "$defs": {
            "Point": {
                "type": "object",
                "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
                "required": ["x", "y"],
            }
        },
    }
    assert stub(schema) == (
        "from typing import Any, Literal, TypedDict\n"
        "\n"
        "class Point(TypedDict):\n"
        "    x: float\n"
        "    y: float\n"
        "\n"
        "async def f(\n"
        "    a: str | None,\n"
        "    c: str | None,\n"
        "    b: int | None = None,\n"
        '    d: Literal["x", "y"] | None = ...,\n'
        "    e: str | list[str] = ...,\n"
        "    f: Literal[1, 2, 3] = ...,\n"
        '    g: Literal["asc", "desc"] = ...,\n'
        "    h: list[float | str] = ...,\n"
        "    i: Point | None = ...,\n"
        '    j: Literal[1, True, "1"] = ...,\n'
        ") -> Any:\n"
        '    """Do it."""\n'
    )


def test_output_schema_is_the_result_shape() -> None:
    listing = {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "size": {"type": "integer", "description": "in bytes"},
                "modified": {"type": "string", "format": "date-time"},
            },
            "required": ["name"],
        },
    }
    source = stub({"type": "object", "properties": {}}, listing, name="list_files")
    assert source == (
        "from typing import NotRequired, TypedDict\n"
        "\n"
        "class ListFilesResultItem(TypedDict):\n"
        "    name: str\n"
        "    size: NotRequired[int]  # in bytes\n"
        "    modified: NotRequired[str]  # ISO 8601 datetime\n"
        "\n"
        "async def list_files() -> list[ListFilesResultItem]:\n"
        '    """Do it."""\n'
    )
    assert "-> Any:" in stub({"type": "object"})  # no output schema: the result is not known


def test_all_of_is_merged_and_a_root_ref_is_followed() -> None:
    schema = {
        "$ref": "#/definitions/Args",
        "definitions": {
            "Base": {
                "type": "object",
                "properties": {"id": {"type": "string"}},
                "required": ["id"],
            },
            "Args": {
                "type": "object",
                "properties": {
                    "item": {
                        "allOf": [
                            {"$ref": "#/definitions/Base"},
                            {"properties": {"price": {"type": "number"}}, "required": ["price"]},
                        ]
                    },
                    "only": {"allOf": [{"$ref": "#/definitions/Base"}], "description": "v1 style"},
                },
                "required": ["item"],
            },
        },
    }
    source = stub(schema)
    assert "class Item(TypedDict):\n    id: str\n    price: float\n" in source
    assert "class Base(TypedDict):\n    id: str\n" in source
    assert "async def f(item: Item, only: Base = ...) -> Any:" in source
    assert "only: v1 style" in source


def test_keys_that_are_not_identifiers_and_free_form_arguments() -> None:
    odd = schema_tool(
        {
            "type": "object",
            "properties": {"to": {"type": "string"}, "from": {"type": "string"}},
            "required": ["from"],
        },
        name="search",
    )
    assert odd.render_stub() == (
        "from typing import Any, NotRequired, TypedDict\n"
        "\n"
        'SearchArguments = TypedDict("SearchArguments", {\n'
        '    "to": NotRequired[str],\n'
        '    "from": str,\n'
        "})\n"
        "\n"
        "async def search(arguments: SearchArguments, /) -> Any:\n"
        '    """Do it."""\n'
    )
    assert odd.params == ("from", "to")  # the runtime passes one dict through as it is
    free = schema_tool({"type": "object", "additionalProperties": {"type": "string"}})
    assert "async def f(**arguments: str) -> Any:" in free.render_stub()
    assert free.params == ()


def test_dotted_tools_render_as_a_class_per_group() -> None:
    time_result = {
        "type": "object",
        "title": "TimeResult",
        "properties": {"timezone": {"type": "string"}, "is_dst": {"type": "boolean"}},
        "required": ["timezone", "is_dst"],
    }
    zone = {"type": "string", "description": "IANA timezone name"}
    now = Tool.from_schema(
        "time_tools.get_current_time",
        "Current time in a timezone.",
        {"type": "object", "properties": {"timezone": zone}, "required": ["timezone"]},
        echo,
        output_schema=time_result,
    )
    convert = Tool.from_schema(
        "time_tools.convert_time",
        "Convert a time between timezones.",
        {
            "type": "object",
            "properties": {
                "source_timezone": zone,
                "time": {"type": "string"},
                "target_timezone": zone,
            },
            "required": ["source_timezone", "time", "target_timezone"],
        },
        echo,
    )
    ping = schema_tool({"type": "object", "properties": {}}, name="ping", description="")
    box = Toolbox([now, ping, convert], groups={"time_tools": "The time MCP server."})
    source = box.render_stubs()
    ast.parse(source)
    assert source == (
        "from typing import Any, TypedDict\n"
        "\n"
        "class TimeResult(TypedDict):\n"
        "    timezone: str\n"
        "    is_dst: bool\n"
        "\n"
        "class time_tools:\n"
        '    """The time MCP server."""\n'
        "\n"
        "    async def get_current_time(timezone: str) -> TimeResult:\n"
        '        """Current time in a timezone.\n'
        "\n"
        "        Args:\n"
        "            timezone: IANA timezone name\n"
        '        """\n'
        "\n"
        "    async def convert_time(source_timezone: str, time: str, target_timezone: str)"
        " -> Any:\n"
        '        """Convert a time between timezones.\n'
        "\n"
        "        Args:\n"
        "            source_timezone: IANA timezone name\n"
        "            target_timezone: IANA timezone name\n"
        '        """\n'
        "\n"
        "async def ping() -> Any:\n"
        "    ...\n"
    )
    assert box.signatures()[0] == ToolSignature("time_tools.get_current_time", ("timezone",))
    assert box.for_caller("code").render_stubs() == source  # the groups' descriptions stay


def test_types_are_defined_once_and_never_shadow_a_tool_or_a_typing_name() -> None:
    shared = {
        "type": "object",
        "properties": {"page": {"$ref": "#/$defs/Page"}},
        "$defs": {"Page": {"type": "object", "properties": {"n": {"type": "integer"}}}},
    }
    a = schema_tool(shared, name="a")
    b = schema_tool(shared, name="b")
    weird = schema_tool(
        {
            "type": "object",
            "properties": {
                "x": {"type": "object", "title": "Any", "properties": {"k": {"type": "string"}}},
                "y": {"type": "object", "title": "a", "properties": {"k": {"type": "integer"}}},
            },
        },
        name="c",
    )
    source = Toolbox([a, b, weird]).render_stubs()
    ast.parse(source)
    assert source.count("class Page(TypedDict):") == 1
    assert "class Any2(TypedDict):" in source and "class a2(TypedDict):" in source
    assert "async def c(x: Any2 = ..., y: a2 = ...) -> Any:" in source


# --- arguments checked on the host -------------------------------------------------------------

get_order = schema_tool(ORDER_SCHEMA, name="get_order")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"items": []}, "get_order(): missing required argument 'order_id'"),
        (
            {},
            "get_order(): missing required argument 'order_id'; missing required argument 'items'",
        ),
        (
            {"order_id": "x1", "items": []},
            "get_order(): argument 'order_id': 'x1' does not match '^o[0-9]+$'",
        ),
        (
            {"order_id": "o1", "items": [{"sku": 1}, {"qty": 0}]},
            "get_order(): argument 'items[0].sku': 1 is not of type 'string'; "
            "argument 'items[1]': 'sku' is a required property; "
            "argument 'items[1].qty': 0 is less than the minimum of 1",
        ),
        (
            {"order_id": "o1", "items": [], "tree": {"name": "a", "children": [{"name": 3}]}},
            "get_order(): argument 'tree.children[0].name': 3 is not of type 'string'",
        ),
        (
            {"order_id": "o1", "items": [], "since": "2024-13-01"},
            "get_order(): argument 'since': '2024-13-01' is not a 'date'",
        ),
        (["o1"], "get_order(): arguments must be an object, got list"),
    ],
)
async def test_invalid_arguments_name_tool_argument_and_problem(
    arguments: Any, message: str
) -> None:
    with pytest.raises(ToolCallError) as info:
        await get_order.invoke(arguments)
    assert (str(info.value), info.value.kind) == (message, "ToolArgumentError")


async def test_unions_unknown_arguments_and_long_values() -> None:
    strict = schema_tool(
        {
            "type": "object",
            "properties": {
                "when": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "filter": {"oneOf": [{"type": "string"}, {"$ref": "#/$defs/F"}]},
            },
            "additionalProperties": False,
            "$defs": {"F": {"type": "object", "properties": {"field": {"type": "string"}}}},
        },
        name="find",
    )
    with pytest.raises(ToolCallError) as info:
        await strict.invoke({"when": 5, "zone": "UTC"})
    assert str(info.value) == (
        "find(): unexpected argument 'zone'; parameters are when, filter; "
        "argument 'when': 5 is not valid under any of the given schemas "
        "(5 is not of type 'string'; 5 is not of type 'null')"
    )
    with pytest.raises(ToolCallError, match=r"argument 'filter.field': 1 is not of type 'string'"):
        await strict.invoke({"filter": {"field": 1}})  # the branch that came closest
    with pytest.raises(ToolCallError) as info:
        await strict.invoke({"when": ["x" * 1000]})
    assert len(str(info.value)) < 300 and str(info.value).endswith("...")


def test_validators_are_built_once_per_schema() -> None:
    first, second = schema_tool(ORDER_SCHEMA, name="one"), schema_tool(ORDER_SCHEMA, name="two")
    assert first._binding.validator is second._binding.validator  # type: ignore[attr-defined]


def test_unusable_schemas_and_names_are_refused_when_the_tool_is_made() -> None:
    with pytest.raises(ValueError, match=r"tool f: input_schema is not a valid JSON Schema"):
        schema_tool({"type": "object", "properties": {"a": {"type": "strin"}}})
    with pytest.raises(ValueError, match=r"tool f: input_schema must describe an object"):
        schema_tool({"type": "array"})
    with pytest.raises(ValueError, match=r"tool f: output_schema is not a valid JSON Schema"):
        schema_tool({"type": "object"}, {"type": 3})
    for bad in ("a.b.c", "class.x", "my-tool", ""):
        with pytest.raises(ValueError, match=r"is not a Python identifier or 'group.tool'"):
            schema_tool({"type": "object"}, name=bad)


# --- calling -----------------------------------------------------------------------------------


async def test_call_gets_the_checked_arguments_on_the_event_loop() -> None:
    seen: list[tuple[dict[str, Any], int]] = []

    async def call(arguments: dict[str, Any]) -> Any:
        seen.append((arguments, threading.get_ident()))
        return {"when": arguments.get("when"), "ok": True}

    t = Tool.from_schema("g", "G.", {"type": "object", "properties": {"when": {}}}, call)
    assert await t.invoke({"when": "now"}) == {"when": "now", "ok": True}
    assert seen == [({"when": "now"}, threading.get_ident())]
    lam = Tool.from_schema("h", "H.", {"type": "object"}, lambda a: call({"when": 1}))
    assert await lam.invoke({}) == {"when": 1, "ok": True}


async def test_failures_of_call_reach_the_program_as_tool_errors() -> None:
    async def boom(arguments: dict[str, Any]) -> Any:
        raise LookupError("no such order")

    async def deny(arguments: dict[str, Any]) -> Any:
        raise ToolCallError("upstream says no", kind="ToolError")

    async def odd(arguments: dict[str, Any]) -> Any:
        return threading.Lock()

    for call, expected in [
        (boom, "LookupError: no such order"),
        (deny, "upstream says no"),
        (odd, "k() returned a lock value that cannot be converted to JSON"),
    ]:
        with pytest.raises(ToolCallError) as info:
            await Tool.from_schema("k", "K.", {"type": "object"}, call).invoke({})
        assert str(info.value).startswith(expected) and info.value.kind == "ToolError"


def test_toolbox_refuses_a_group_that_is_also_a_tool() -> None:
    grouped = schema_tool({"type": "object"}, name="time.now")
    plain = schema_tool({"type": "object"}, name="time")
    for order in ([grouped, plain], [plain, grouped]):
        with pytest.raises(ValueError, match="cannot have 'time' as both a tool and a group"):
            Toolbox(order)


def test_tool_options_on_a_schema_tool_keep_its_schemas() -> None:
    t = schema_tool(ORDER_SCHEMA, name="get_order")
    renamed = tool(name="orders.get", callers="code")(t)
    assert renamed.name == "orders.get" and renamed.callers == frozenset({"code"})
    assert renamed.input_schema == ORDER_SCHEMA and renamed.params == t.params
    assert t.spec() == {"name": "get_order", "description": "Do it.", "input_schema": ORDER_SCHEMA}


# --- the findings: partials, **kwargs, sync tools ------------------------------------------------


def execute(name: str, arguments: dict[str, Any]) -> Any:
    """Run any tool by name."""
    return [name, arguments]


def test_a_partial_of_a_dispatcher_is_refused_with_the_way_forward() -> None:
    with pytest.raises(TypeError) as info:
        tool(name="get_order")(functools.partial(execute, "get_order"))
    assert str(info.value) == (
        "tool get_order: functools.partial(execute, 'get_order') leaves one parameter, "
        "'arguments', a dict of the real arguments, so a model would see a tool taking "
        "arguments={...} and nothing of what goes in it. For a tool described by a JSON Schema "
        "and run by a function of the arguments dict, use Tool.from_schema(name, description, "
        "input_schema, call), e.g. Tool.from_schema('get_order', description, input_schema, "
        "lambda arguments: execute('get_order', arguments))"
    )

    def run(name: str, arguments: dict[str, Any]) -> None: ...

    with pytest.raises(TypeError, match=r"partial\(run, name='x'\) leaves one parameter"):
        Toolbox([functools.partial(run, name="x")])  # bound by keyword: refused the same way


async def test_a_partial_of_a_typed_function_is_a_proper_tool() -> None:
    def search(db: Any, query: str, limit: int = 5) -> list[str]:
        """Search the catalogue.

        Args:
            query: Words to look for.
        """
        return [f"{db}:{query}:{limit}"]

    t = tool(functools.partial(search, "catalogue-db"))
    assert (t.name, t.description, t.params) == (
        "search",
        "Search the catalogue.",
        ("query", "limit"),
    )
    assert await t.invoke({"query": "pens"}) == ["catalogue-db:pens:5"]
    hidden = tool(name="find")(functools.partial(search, db=object()))
    assert hidden.params == ("query", "limit")  # the bound keyword is neither shown nor settable
    assert "db" not in hidden.render_stub() and "db" not in hidden.input_schema["properties"]


async def test_plain_def_tools_run_concurrently_in_worker_threads() -> None:
    threads: set[int] = set()

    @tool
    def slow(i: int) -> int:
        threads.add(threading.get_ident())
        time.sleep(0.3)
        return i

    assert "worker threads" in (tool.__doc__ or "")
    start = time.monotonic()
    assert await asyncio.gather(*(slow.invoke({"i": i}) for i in range(4))) == [0, 1, 2, 3]
    assert time.monotonic() - start < 0.9  # four 0.3 s calls at once, not one after another
    assert len(threads) == 4 and threading.get_ident() not in threads


# --- end to end through a real sandbox -----------------------------------------------------------

ORDERS = {"o1": {"id": "o1", "lines": [{"sku": "pen", "qty": 3}, {"sku": "ink", "qty": 2}]}}


def order_tools(name: str) -> tuple[Toolbox, list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []

    async def fetch(arguments: dict[str, Any]) -> Any:
        calls.append(arguments)
        return ORDERS[arguments["order_id"]]

    t = Tool.from_schema(name, "One order.", ORDER_SCHEMA, fetch)
    return Toolbox([t]), calls


PROGRAM = """
a = await {f}("o1", [])
b = await {f}(order_id="o1", items=[{{"sku": "pen"}}], limit=2)
c = await {f}({{"order_id": "o1", "items": []}})
print(sum(line["qty"] for line in a["lines"]), b["id"], len(c["lines"]))
try:
    await {f}(order_id="o1", items=[{{"qty": 2}}])
except ToolArgumentError as e:
    print(type(e).__name__, e)
"""
EXPECTED = "5 o1 2\nToolArgumentError {f}(): argument 'items[0]': 'sku' is a required property\n"


@pytest.mark.parametrize("name", ["get_order", "orders.get_order"])
async def test_end_to_end_through_a_local_sandbox(name: str) -> None:
    box, calls = order_tools(name)
    async with LocalSandbox(Limits(timeout_s=20), pool_size=1) as sandbox:
        session = await sandbox.open_session()
        result = await session.execute(PROGRAM.format(f=name), box)
    assert result.error is None, result
    assert result.stdout == EXPECTED.format(f=name)
    assert calls == [
        {"order_id": "o1", "items": []},
        {"order_id": "o1", "items": [{"sku": "pen"}], "limit": 2},
        {"order_id": "o1", "items": []},
    ]
    assert [c.outcome for c in result.tool_calls][:3] == ["ok", "ok", "ok"]


def test_readme_example_of_tools_from_schemas_runs_as_written() -> None:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    example = next(b for b in blocks if "Tool.from_schema" in b)
    done = subprocess.run(
        [sys.executable, "-c", example],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "class Line(TypedDict):\n"
        "    sku: str\n"
        "    qty: int\n"
        "\n"
        "class GetOrderResult(TypedDict):\n"
        '    status: NotRequired[Literal["open", "shipped"]]\n'
        "    lines: NotRequired[list[Line]]\n"
        "\n"
        "class shop:\n"
        "    async def get_order(order_id: str) -> GetOrderResult:\n"
        '        """One order with its lines."""\n'
        "\n"
        "3\n"
        "shop.get_order(): argument 'order_id': 1 is not of type 'string'\n"
    )

"""What ``ptc mcp``'s discovery tools tell a client: one line per server and tool, searches that
find tools by the words a model would use, and stubs of chosen tools (by tool or server name)."""

from __future__ import annotations

from typing import Any

from fakes.code_mode_toolbox import make_toolbox
from openptc import Toolbox
from openptc.mcp.discovery import (
    Catalog,
    describe_tools,
    list_tools,
    search_tools,
    summary_line,
)
from openptc.tools import Tool


def _grouped() -> list[Tool[..., Any]]:
    """Tools named as an MCP toolbox names them: ``<group>.<tool>``."""
    tools = list(make_toolbox())
    return [
        _renamed(tools[1], "shop_tools.get_orders"),
        _renamed(tools[0], "shop_tools.list_customers"),
        _renamed(tools[2], "calc_tools.add"),
    ]


def _renamed(tool: Tool[..., Any], name: str) -> Tool[..., Any]:
    import dataclasses

    return dataclasses.replace(tool, name=name)


def test_a_summary_line_names_required_then_optional_parameters_and_the_first_sentence() -> None:
    get_orders = make_toolbox()["get_orders"]
    assert summary_line(get_orders) == (
        "get_orders(customer, status=None) — Orders of one customer, optionally only those "
        "with a status (open, shipped, cancelled)."
    )
    assert summary_line(make_toolbox()["refund_order"]) == (
        "refund_order(order_id, reason) — Refund an order."
    )


def test_tools_are_listed_one_line_each_under_their_server() -> None:
    text = list_tools(_grouped())
    assert text.splitlines() == [
        "shop_tools: 2 tools",
        "  shop_tools.get_orders(customer, status=None) — Orders of one customer, optionally "
        "only those with a status (open, shipped, cancelled).",
        "  shop_tools.list_customers() — Names of every customer of the shop.",
        "calc_tools: 1 tool",
        "  calc_tools.add(a, b) — Add two integers.",
    ]
    assert Catalog.of(_grouped()).headline() == (
        "3 tools from 2 servers: shop_tools (2), calc_tools (1)"
    )


def test_one_server_is_listed_by_its_group_or_config_name_and_a_down_server_says_why() -> None:
    assert list_tools(_grouped(), "calc").splitlines()[0] == "calc_tools: 1 tool"
    assert list_tools(_grouped(), "calc_tools").splitlines()[0] == "calc_tools: 1 tool"
    down = {"git_tools": "MCP server 'git': command not found: uvx"}
    assert list_tools(_grouped(), unavailable=down).splitlines()[-1] == (
        "git_tools: unavailable (MCP server 'git': command not found: uvx)"
    )
    assert list_tools(_grouped(), "nope", down) == (
        "no server named 'nope'; servers: shop_tools, calc_tools, git_tools"
    )


def test_search_ranks_name_matches_first_and_understands_plurals_and_snake_case() -> None:
    lines = search_tools(_grouped(), "customer orders").splitlines()
    assert lines[0].startswith("shop_tools.get_orders(")
    assert lines[1].startswith("shop_tools.list_customers(")
    assert len(lines) == 2
    assert search_tools(_grouped(), "sum integers").startswith("calc_tools.add(")
    assert search_tools(_grouped(), "weather in paris") == (
        "no tool matches 'weather in paris'; call list_tools to see them all"
    )
    limited = search_tools(_grouped(), "customer orders", limit=1).splitlines()
    assert limited[1] == "(and 1 more; raise the limit or narrow the words)"


def test_describe_renders_stubs_of_tools_and_whole_servers_and_hints_at_near_misses() -> None:
    toolbox = Toolbox(_grouped())
    stubs, problems = describe_tools(toolbox, ["calc_tools.add"])
    assert "async def add(a: int, b: int) -> int:" in stubs
    assert "Add two integers." in stubs
    assert problems == []

    stubs, _ = describe_tools(toolbox, ["shop"])  # the server's config name: all of its tools
    assert "class Order(TypedDict):" in stubs
    assert "get_orders(customer: str, status: str | None = None) -> list[Order]" in stubs
    assert "list_customers() -> list[str]" in stubs

    stubs, problems = describe_tools(toolbox, ["get_orders", "shop_tools.get_order"])
    assert stubs == ""
    assert problems == [
        "no tool or server named 'get_orders'; did you mean shop_tools.get_orders?",
        "no tool or server named 'shop_tools.get_order'; did you mean shop_tools.get_orders?",
    ]

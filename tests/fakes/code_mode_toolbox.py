"""A small shop's tools, for driving ``ptc mcp --tools fakes.code_mode_toolbox:make_toolbox``
from real MCP clients: typed results, a tool that fails, and enough tools to search among."""

from __future__ import annotations

import asyncio
from typing import TypedDict

from openptc import Toolbox, tool


class Order(TypedDict):
    id: str
    customer: str
    total: float
    status: str


ORDERS = [
    Order(id="o1", customer="ada", total=120.0, status="shipped"),
    Order(id="o2", customer="ada", total=35.5, status="open"),
    Order(id="o3", customer="bob", total=80.0, status="open"),
    Order(id="o4", customer="cy", total=12.25, status="cancelled"),
]


@tool
async def list_customers() -> list[str]:
    """Names of every customer of the shop."""
    return sorted({o["customer"] for o in ORDERS})


@tool
async def get_orders(customer: str, status: str | None = None) -> list[Order]:
    """Orders of one customer, optionally only those with a status (open, shipped, cancelled)."""
    await asyncio.sleep(0.01)
    return [o for o in ORDERS if o["customer"] == customer and status in (None, o["status"])]


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
async def refund_order(order_id: str, reason: str) -> dict[str, str]:
    """Refund an order. Refunds are switched off in this shop: it always fails."""
    raise RuntimeError(f"refunds are disabled (order {order_id})")


@tool
def log_note(text: str) -> str:
    """Write a note to the shop's log (this tool prints on the host's stdout)."""
    print(f"note: {text}")
    return "noted"


def make_toolbox() -> Toolbox:
    return Toolbox([list_customers, get_orders, add, refund_order, log_note])

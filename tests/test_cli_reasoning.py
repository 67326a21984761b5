"""``ptc run`` asks for reasoning, shows it when told to, and reports cache and reasoning tokens.

Driven as a user would, as a process, against the Anthropic fake (which thinks when asked and
bills cache reads for a repeated prefix).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from fakes.anthropic_fixture import running
from fakes.anthropic_server import FAKE_API_KEY
from openptc.scenarios import expense

PTC = Path(sys.executable).parent / "ptc"


async def ptc_run(*args: str, url: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        str(PTC),
        "run",
        expense.QUESTION,
        "--model",
        f"anthropic:claude-x@{url}",
        "--no-stream",
        *args,
        env={"PATH": "/usr/bin:/bin", "ANTHROPIC_API_KEY": FAKE_API_KEY, "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_reasoning_is_asked_for_shown_and_counted() -> None:
    async with running() as fake:
        code, out, err = await ptc_run("--reasoning", "3000", "--show-reasoning", url=fake.url)
        bodies = fake.bodies
    assert code == 0, out + err
    assert [b["thinking"] for b in bodies] == [{"type": "enabled", "budget_tokens": 3000}] * 2
    thoughts = [
        block["thinking"]
        for body in bodies[1:]
        for message in body["messages"]
        if message["role"] == "assistant"
        for block in message["content"]
        if block["type"] == "thinking"
    ]
    assert thoughts and "reasoning 1" in out
    assert thoughts[0].splitlines()[0][:60] in out  # the thinking the fake sent is printed
    assert "read from cache" in out and "reasoning) tokens" in out
    assert "4 of 24 engineering members exceeded" in out


async def test_without_show_reasoning_it_is_not_printed_and_no_cache_sends_no_marks() -> None:
    async with running() as fake:
        code, out, err = await ptc_run("--reasoning", "low", "--no-cache", url=fake.url)
        bodies = fake.bodies
    assert code == 0, out + err
    assert "reasoning 1" not in out
    assert "cache_control" not in str(bodies)
    assert "read from cache" not in out


async def test_a_bad_reasoning_value_is_a_usage_error_naming_the_choices() -> None:
    async with running() as fake:
        code, out, err = await ptc_run("--reasoning", "lots", url=fake.url)
        assert fake.bodies == []
    assert code == 2
    assert "minimal, low, medium, high" in out + err

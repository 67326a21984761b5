"""``ptc bench mcp``: what ``ptc mcp`` saves an MCP client, against the same servers connected
one by one, measured in the same run.

1. **Tool definitions in the client's context.** Every tool of every upstream server (the real
   servers of ``scripts/mcp-servers.sh``: mcp-server-time, mcp-server-git, server-everything,
   server-filesystem, server-memory; and a synthetic server with 200 tools) as a client offers
   them to its model, against what ``ptc mcp`` offers in front of the same servers: four tools
   and its instructions. Also the tokens of ``describe_tools`` for *every* tool, the most a
   model could pull in on demand (it normally asks for the few it needs).
2. **The expense audit served as an MCP server** (``mcp_fixtures expense``), answered by the
   scripted model two ways: *direct over MCP* (an ``Agent`` in mode ``direct`` over an
   ``McpToolbox`` of that server: one model call per tool call) — the baseline — and *through
   ptc mcp* (the model reads the stubs with ``describe_tools``, writes one ``run_code``
   program, answers from its output). Model calls, input tokens, wall time, and their ratios.

Tokens are counted with the project's tokenizer (``models.tokens``); the scripted model reports
no usage, so the agent counts every request the same way in both modes.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from openptc.agent import Agent, RunResult
from openptc.bench.mcp_clients import (
    CODE_MODE_SERVER,
    REAL_SERVERS,
    SOURCES,
    SYNTHETIC_TOOLS,
    Listing,
    TextContentTools,
    code_mode_brain,
    connection,
    direct_over_mcp_brain,
    fixture_entry,
    front_with_ptc_mcp,
    install_servers,
    list_server,
    make_workspace,
    ptc_mcp_entry,
    repo_script,
    server_entries,
)
from openptc.bench.report import report_header
from openptc.mcp import McpToolbox
from openptc.models.scripted import ScriptedModel
from openptc.models.tokens import ENCODING_NAME
from openptc.scenarios import expense

__all__ = ["run_mcp_bench"]

Progress = Callable[[str], None]
ROUNDS, QUICK_ROUNDS = 5, 1


def _quiet(_: str) -> None:
    pass


async def run_mcp_bench(
    *,
    quick: bool = False,
    rounds: int | None = None,
    servers_script: Path | None = None,
    progress: Progress = _quiet,
) -> dict[str, Any]:
    """Run both parts; ``servers_script`` defaults to this checkout's scripts/mcp-servers.sh."""
    rounds = rounds if rounds is not None else QUICK_ROUNDS if quick else ROUNDS
    report = report_header("mcp")
    report.update({"quick": quick, "rounds": rounds, "tokenizer": ENCODING_NAME})
    with tempfile.TemporaryDirectory(prefix="ptc-bench-mcp-") as tmp:
        root = Path(tmp)
        script = servers_script or repo_script()
        progress(f"finding the real MCP servers ({script or 'no install script'})")
        installed = await asyncio.to_thread(install_servers, script)
        entries = server_entries(installed, make_workspace(root / "workspace"))
        servers, listings = await _list_servers(entries, installed, progress)
        report["servers"] = servers
        report["definitions"] = await _definitions(entries, listings, quick, root, progress)
        report["expense"] = await _expense_audit(rounds, root, progress)
    return report


async def _list_servers(
    entries: Mapping[str, Any], installed: Mapping[str, str], progress: Progress
) -> tuple[list[dict[str, Any]], dict[str, Listing]]:
    rows: list[dict[str, Any]] = []
    listings: dict[str, Listing] = {}
    for name in (*REAL_SERVERS, "synthetic"):
        source = SOURCES.get(name, "openptc.bench.mcp_fixtures")
        if name not in entries:
            why = installed[name].removeprefix("missing:").strip()
            rows.append({"name": name, "source": source, "status": "missing", "reason": why})
            progress(f"{name}: missing ({why})")
            continue
        try:
            listing = await list_server(name, entries[name])
        except Exception as e:  # a server that will not start is a finding, not a crash
            rows.append({"name": name, "source": source, "status": "failed", "reason": str(e)})
            progress(f"{name}: could not list its tools: {e}")
            continue
        listings[name] = listing
        rows.append(
            {
                "name": name,
                "source": source,
                "status": "ok",
                "tools": listing.tools,
                "tool_tokens": listing.tool_tokens,
                "instructions_tokens": listing.instructions_tokens,
            }
        )
        progress(f"{name}: {listing.tools} tools, {listing.tool_tokens:,} tokens of definitions")
    return rows, listings


def _sets(listings: Mapping[str, Listing], quick: bool) -> list[tuple[str, list[str]]]:
    """The groups of servers to put ``ptc mcp`` in front of."""
    real = [n for n in REAL_SERVERS if n in listings]
    sets: list[tuple[str, list[str]]] = []
    if not quick:
        sets.extend((name, [name]) for name in real)
    if real:
        sets.append((f"{len(real)} real servers", real))
    if "synthetic" in listings:
        sets.append((f"synthetic ({SYNTHETIC_TOOLS} tools)", ["synthetic"]))
        if real and not quick:
            sets.append((f"{len(real)} real + synthetic", [*real, "synthetic"]))
    return sets


async def _definitions(
    entries: Mapping[str, Any],
    listings: Mapping[str, Listing],
    quick: bool,
    root: Path,
    progress: Progress,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for number, (label, names) in enumerate(_sets(listings, quick)):
        upstream = [listings[n] for n in names]
        config = root / f"front-{number}.json"
        listing, described = await front_with_ptc_mcp({n: entries[n] for n in names}, config)
        baseline = sum(x.tool_tokens for x in upstream)
        baseline_total = sum(x.total for x in upstream)
        row = {
            "name": label,
            "servers": names,
            "upstream_tools": sum(x.tools for x in upstream),
            "upstream_tokens": baseline,
            "upstream_instructions_tokens": baseline_total - baseline,
            "ptc_mcp_tools": listing.tools,
            "ptc_mcp_tokens": listing.tool_tokens,
            "ptc_mcp_instructions_tokens": listing.instructions_tokens,
            "ratio": listing.tool_tokens / baseline if baseline else None,
            "ratio_with_instructions": listing.total / baseline_total if baseline_total else None,
            "describe_all_tokens": described,
        }
        rows.append(row)
        progress(
            f"{label}: {baseline:,} tokens of {row['upstream_tools']} definitions upstream, "
            f"{listing.tool_tokens:,} through ptc mcp ({listing.total:,} with its instructions)"
        )
    return rows


# ---- the expense audit --------------------------------------------------------------------------


async def _expense_audit(rounds: int, root: Path, progress: Progress) -> dict[str, Any]:
    progress(f"expense audit direct over MCP, {rounds} round(s)")
    direct = await _audit_direct(rounds, progress)
    progress(f"expense audit through ptc mcp, {rounds} round(s)")
    code_mode, upstream_calls = await _audit_code_mode(rounds, root / "expense.json", progress)
    d, c = _summary(direct), _summary(code_mode)
    c["upstream_tool_calls"] = upstream_calls
    d["upstream_tool_calls"] = d["tool_calls"]
    return {
        "question": expense.QUESTION,
        "model": direct[0].model_label,
        "direct_over_mcp": d,
        "through_ptc_mcp": c,
        "ratios": {
            key: c[key] / d[key] if d[key] else None
            for key in ("model_calls", "input_tokens", "output_tokens", "wall_time_s")
        },
    }


async def _audit_direct(rounds: int, progress: Progress) -> list[RunResult]:
    config = {"mcpServers": {"expense": fixture_entry("expense")}}
    async with McpToolbox.from_config(config) as toolbox:
        model = ScriptedModel(direct_over_mcp_brain, "scripted:expense-audit")
        agent = Agent(model, toolbox, mode="direct", max_turns=200)
        return await _rounds(agent, rounds, "direct over MCP", progress)


async def _audit_code_mode(
    rounds: int, config: Path, progress: Progress
) -> tuple[list[RunResult], int]:
    config.write_text(json.dumps({"mcpServers": {"expense": fixture_entry("expense")}}))
    conn = connection(CODE_MODE_SERVER, ptc_mcp_entry(config))
    try:
        toolbox = TextContentTools(conn, await conn.list_tools())
        model = ScriptedModel(code_mode_brain, "scripted:expense-audit")
        agent = Agent(model, toolbox, mode="direct", max_turns=20)
        if conn.instructions:  # as Claude Code does: the server's instructions join the system
            agent.system = f"{agent.system}\n\n{conn.instructions}"
        results = await _rounds(agent, rounds, "through ptc mcp", progress)
        structured = toolbox.last_structured or {}
        return results, len(structured.get("tool_calls", []))
    finally:
        await conn.close()


async def _rounds(agent: Agent, rounds: int, label: str, progress: Progress) -> list[RunResult]:
    results: list[RunResult] = []
    for number in range(1, rounds + 1):
        result = await agent.run(expense.QUESTION)
        results.append(result)
        u = result.usage
        verdict = "right" if expense.is_correct(result.answer) else "WRONG"
        progress(
            f"  {label} {number}/{rounds}: {u.model_calls} model calls, "
            f"{u.input_tokens:,} input tokens, {u.wall_time_s * 1000:.0f} ms, answer {verdict}"
        )
    return results


def _summary(results: Sequence[RunResult]) -> dict[str, Any]:
    """Medians over the rounds (the counts are the same every round; wall time is not)."""

    def median(values: Sequence[float]) -> float:
        return float(statistics.median(values))

    usages = [r.usage for r in results]
    return {
        "rounds": len(results),
        "correct": all(expense.is_correct(r.answer) for r in results),
        "stop": [r.stop for r in results],
        "model_calls": median([u.model_calls for u in usages]),
        "input_tokens": median([u.input_tokens for u in usages]),
        "output_tokens": median([u.output_tokens for u in usages]),
        "tool_calls": median([u.tool_calls for u in usages]),
        "wall_time_s": median([u.wall_time_s for u in usages]),
        "wall_times_s": [round(u.wall_time_s, 4) for u in usages],
        "tokens_counted": usages[0].tokens_counted,
        "answer": results[-1].answer,
    }

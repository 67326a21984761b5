"""``ptc bench mcp --quick`` end to end: the report's shape, and what it must show — ptc mcp's
tool definitions far smaller than the upstream schemas, the expense audit right both ways with
far fewer model calls and input tokens through ptc mcp. Behaviour only, never wall-clock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openptc.bench.mcp_clients import CODE_MODE_PROGRAM, REAL_SERVERS, SYNTHETIC_TOOLS
from openptc.bench.mcp_fixtures import synthetic_tools
from openptc.cli import app
from openptc.scenarios import expense


def test_the_synthetic_server_has_200_distinct_tools_with_real_schemas() -> None:
    tools = synthetic_tools()
    assert len(tools) == SYNTHETIC_TOOLS == len({t.name for t in tools})
    kinds = {t.name.split("_")[0] for t in tools}
    assert kinds == {"list", "get", "create", "update", "delete"}
    update = next(t for t in tools if t.name == "update_ticket")
    assert update.input_schema["required"] == ["id", "changes"]
    assert "anyOf" in update.input_schema["properties"]["changes"]["properties"]["due_date"]
    assert len(synthetic_tools(230)) == 230  # past 200 the names get a suffix, still distinct
    assert len({t.name for t in synthetic_tools(230)}) == 230


def test_the_code_mode_program_calls_the_expense_tools_by_group() -> None:
    assert "expense_tools.get_team_members(" in CODE_MODE_PROGRAM
    assert " get_expenses(" not in CODE_MODE_PROGRAM.replace("expense_tools.get_expenses(", "")


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, object], str]:
    out = tmp_path_factory.mktemp("results")
    run = CliRunner().invoke(app, ["bench", "mcp", "--quick", "--out", str(out)])
    assert run.exit_code == 0, run.output
    [path] = list(Path(out).glob("mcp-*.json"))
    report: dict[str, object] = json.loads(path.read_text())
    return report, run.output


def test_quick_bench_reports_every_server_and_the_definitions(
    quick_report: tuple[dict[str, object], str],
) -> None:
    report, output = quick_report
    assert report["benchmark"] == "mcp" and report["quick"] is True and report["rounds"] == 1
    assert report["tokenizer"] == "cl100k_base"
    servers = {s["name"]: s for s in report["servers"]}  # type: ignore[attr-defined]
    assert list(servers) == [*REAL_SERVERS, "synthetic"]
    for s in servers.values():
        assert s["status"] in ("ok", "missing", "failed")
        if s["status"] == "ok":
            assert s["tools"] > 0 and s["tool_tokens"] > 0
        else:
            assert s["reason"]
    assert servers["synthetic"]["status"] == "ok" and servers["synthetic"]["tools"] == 200

    rows = {d["name"]: d for d in report["definitions"]}  # type: ignore[attr-defined]
    synthetic = rows["synthetic (200 tools)"]
    assert synthetic["upstream_tools"] == 200 and synthetic["ptc_mcp_tools"] == 4
    # ptc mcp's four definitions stay the same size whatever it fronts: far below 200 schemas
    assert synthetic["ptc_mcp_tokens"] < 0.05 * synthetic["upstream_tokens"]
    assert synthetic["ratio"] == synthetic["ptc_mcp_tokens"] / synthetic["upstream_tokens"]
    assert synthetic["describe_all_tokens"] > 10 * synthetic["ptc_mcp_tokens"]  # on demand only
    real = [n for n in REAL_SERVERS if servers[n]["status"] == "ok"]
    if len(real) == len(REAL_SERVERS):
        five = rows["5 real servers"]
        assert five["servers"] == list(REAL_SERVERS)
        assert five["upstream_tools"] == sum(servers[n]["tools"] for n in REAL_SERVERS)
        assert five["upstream_tokens"] == sum(servers[n]["tool_tokens"] for n in REAL_SERVERS)
        assert five["ptc_mcp_tokens"] < 0.35 * five["upstream_tokens"]
    for line in ("synthetic: 200 tools", "through ptc mcp", "results written to"):
        assert line in output
    assert "tokens of tool definitions" in output


def test_quick_bench_runs_the_expense_audit_both_ways(
    quick_report: tuple[dict[str, object], str],
) -> None:
    report, output = quick_report
    audit = report["expense"]
    assert isinstance(audit, dict)
    direct, code_mode = audit["direct_over_mcp"], audit["through_ptc_mcp"]
    members = len(expense.default_data().team("engineering"))
    assert direct["correct"] and code_mode["correct"]
    assert direct["stop"] == code_mode["stop"] == ["answered"]
    # direct: one model call per tool call (team, then expenses and budget per member), + answer
    assert direct["model_calls"] == 2 * members + 2
    assert direct["tool_calls"] == direct["upstream_tool_calls"] == 2 * members + 1
    # through ptc mcp: describe_tools, run_code, answer; the same upstream calls, in the program
    assert code_mode["model_calls"] == 3 and code_mode["tool_calls"] == 2
    assert code_mode["upstream_tool_calls"] == 2 * members + 1
    assert audit["ratios"]["model_calls"] == 3 / direct["model_calls"]
    assert audit["ratios"]["input_tokens"] < 0.01
    assert set(audit["ratios"]) == {"model_calls", "input_tokens", "output_tokens", "wall_time_s"}
    assert direct["tokens_counted"] == code_mode["tokens_counted"] == "tiktoken"
    assert "scripted" in audit["model"]
    assert "expense audit through ptc mcp" in output and "answer right" in output

"""What some cases must show that a declarative ``Expect`` cannot say: the host's own caps."""

from __future__ import annotations

import re

from hostile.table import Observed
from openptc.sandbox.base import Execution

# A genuine truncated output ends with a short note saying how much was dropped.
TRUNCATION_NOTE_BYTES = 120


def error_text(execution: Execution) -> str:
    error = execution.error
    return "" if error is None else f"{error.type}: {error.message}\n{error.traceback}"


def output_capped_by_the_host(execution: Execution, observed: Observed) -> None:
    """Whatever the sandbox claims, the host hands on at most the cap (and a note saying what
    was dropped), marked truncated, or refuses the execution as a bridge error."""
    if execution.error is not None and execution.error.kind == "bridge":
        return
    size = len(execution.stdout.encode())
    cap = observed.limits.output_bytes + TRUNCATION_NOTE_BYTES
    assert size <= cap, f"{size} bytes of stdout passed the cap and its note"
    assert execution.stdout_truncated, "over-long stdout not marked truncated"


def genuine_output_capped(execution: Execution, observed: Observed) -> None:
    """A program that prints too much gets its head and a note, and nothing more."""
    assert execution.stdout_truncated, execution.stdout[-200:]
    size = len(execution.stdout.encode())
    assert size <= observed.limits.output_bytes + TRUNCATION_NOTE_BYTES, size


def stray_output_capped(execution: Execution, observed: Observed) -> None:
    """Writes past the runtime (straight to fd 1 or 2) are kept only up to a small head."""
    size = len(execution.stderr.encode())
    assert size <= observed.limits.output_bytes + 16_000 + TRUNCATION_NOTE_BYTES, size


def memory_limit_holds_for_the_whole_sandbox(execution: Execution, observed: Observed) -> None:
    """At most one of the children held its 200 MB at a time (or the sandbox hit its limit)."""
    if execution.error is not None:
        assert execution.error.kind == "memory", execution.error
        return
    found = re.search(r"succeeded (\d+)", execution.stdout)
    assert found is not None, execution.stdout
    assert int(found.group(1)) <= 1, (
        f"{found.group(1)} processes each held 200 MB under a {observed.limits.memory_mb} MB "
        "limit: the limit holds per process, not for the sandbox"
    )


def exit_zero_keeps_output(execution: Execution, observed: Observed) -> None:
    """os._exit(0) is the program's own ending: what it printed before is kept."""
    assert "before" in execution.stdout, execution
    assert execution.error is None or execution.error.kind != "crashed", execution.error


def exit_status_is_the_programs(execution: Execution, observed: Observed) -> None:
    """os._exit(3) is reported with status 3, not the status of a launcher killed by the host."""
    assert execution.error is not None, execution
    text = error_text(execution)
    assert "exit status 3" in text, text
    assert "-9" not in text, text


def tool_call_budget_holds(execution: Execution, observed: Observed) -> None:
    """A flood of calls meets a budget the program hears of, and the host's own bound."""
    # Limits.tool_calls (per execution) and Limits.calls_in_flight are the budget's settings.
    budget = observed.limits.tool_calls
    in_flight = observed.limits.calls_in_flight
    assert re.search(r"(budget|limit)", execution.stdout, re.IGNORECASE), execution.stdout
    assert "ToolError" in execution.stdout, execution.stdout
    assert observed.max_in_flight <= in_flight, (
        f"{observed.max_in_flight} calls ran at once on the host (limit {in_flight})"
    )
    assert len(execution.tool_calls) <= budget, len(execution.tool_calls)
    assert observed.witness_finished_first is True, "another session's call waited for the flood"


def hung_tool_is_cancelled(execution: Execution, observed: Observed) -> None:
    """The deadline ends the host's tool call too, and the log says it never finished."""
    assert [c.outcome for c in execution.tool_calls] == ["cancelled"], execution.tool_calls
    assert observed.hang_cancelled >= 1

"""``ptc run`` shows what happened: each program's output and failed calls, progress on a
terminal, only the answer with ``--quiet``. Run as a user runs it: as a process.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from openptc import Agent, ScriptedModel
from openptc.models import ModelResponse, TextBlock, ToolUseBlock
from openptc.prompts import CODE_TOOL_NAME, PROMPT_VERSION
from openptc.recording import FORMAT, VERSION, response_to_json, tools_fingerprint
from openptc.scenarios import expense

ROOT = Path(__file__).resolve().parents[1]
PTC = str(Path(sys.executable).parent / "ptc")
ENV = {"PATH": "/usr/bin:/bin", "COLUMNS": "120"}
ANSWER = "[red]4 members[/red] overspent [see above]"


def ptc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PTC, "run", *args], capture_output=True, text=True, env=ENV, timeout=120, cwd=ROOT
    )


def write_transcript(path: Path, question: str, programs: list[str], answer: str) -> None:
    """A transcript of the expense tools in ptc mode: these programs, then this answer."""
    offered = Agent(ScriptedModel.from_turns([]), expense.make_tools()).tool_specs
    header = {
        "format": FORMAT,
        "version": VERSION,
        "model": "hand-written",
        "mode": "ptc",
        "prompt": question,
        "prompt_version": PROMPT_VERSION,
        "tools": tools_fingerprint(offered),
    }
    responses = [
        ModelResponse(
            (ToolUseBlock(f"t{n}", CODE_TOOL_NAME, {"code": code}),), "tool_use", None, ""
        )
        for n, code in enumerate(programs)
    ]
    responses.append(ModelResponse((TextBlock(answer),), "end_turn", None, ""))
    lines = [header, *(response_to_json(r) for r in responses)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


CHATTY = """\
for i in range(20):
    print(f"[bold]line {i}[/bold]")
for quarter in ("Q8", "Q9"):
    try:
        await get_expenses(employee_id="E1001", quarter=quarter)
    except Exception:
        pass
await get_team_members(department="engineering")
"""


def test_each_program_is_summarised_with_its_first_lines_and_failed_calls(
    tmp_path: Path,
) -> None:
    transcript = tmp_path / "chatty.jsonl"
    write_transcript(transcript, "q", [CHATTY, "1 / 0"], ANSWER)

    done = ptc("q", "--replay", str(transcript))

    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    first = out[out.index("program 1: 3 tool calls") :]
    shown = [line for line in first.splitlines() if line.startswith("  │ ")]
    assert shown[:6] == [f"  │ [bold]line {i}[/bold]" for i in range(6)]  # brackets kept
    assert shown[6] == "  │ … 14 more lines" and "line 6" not in out
    (failed,) = [line for line in first.splitlines() if "failed: get_expenses" in line]
    assert failed.startswith("  failed: get_expenses ×2: ") and "quarter" in failed
    assert "program 2: 0 tool calls" in out
    assert "  error: ZeroDivisionError: division by zero" in out
    assert ANSWER in out  # the model's text, brackets and all
    assert "Traceback" not in out + done.stderr


def test_without_a_terminal_there_is_no_progress_line() -> None:
    done = ptc(expense.QUESTION, "--model", "scripted:expense-audit")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "program 1: 49 tool calls" in done.stdout
    assert "4 of 24 engineering members exceeded" in done.stdout
    assert "model call 1" not in done.stdout + done.stderr
    assert "\x1b[" not in done.stdout + done.stderr  # no cursor movement, no colour


def test_on_a_terminal_a_progress_line_shows_the_run_working() -> None:
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # rows, cols
    process = subprocess.Popen(
        [PTC, "run", expense.QUESTION, "--model", "scripted:expense-audit"],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env={**ENV, "TERM": "xterm"},
        cwd=ROOT,
    )
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the process closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        elif process.poll() is not None:
            break
    os.close(leader)
    assert process.wait(timeout=10) == 0
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen.decode(errors="replace"))
    assert re.search(r"starting … \| \d+\.\d s", screen)  # drawn from the start
    assert re.search(r"model call 1 \| program 1: \d+ tool calls \| \d+\.\d s", screen)
    assert "4 of 24 engineering members exceeded" in screen


def test_quiet_prints_only_the_answer() -> None:
    done = ptc(expense.QUESTION, "--model", "scripted:expense-audit", "--quiet")

    assert done.returncode == 0, done.stdout + done.stderr
    assert expense.is_correct(done.stdout)
    assert done.stdout.startswith("Here is what the audit program found:\n")
    for noise in ("model:", "program 1", "model calls", "stopped:"):
        assert noise not in done.stdout + done.stderr


def test_help_lists_the_modes_and_a_bad_one_is_refused() -> None:
    helped = ptc("--help")
    assert helped.returncode == 0
    assert "<ptc|direct|hybrid>" in helped.stdout

    refused = ptc("q", "--mode", "smart")
    assert refused.returncode == 2
    assert "'smart' is not one of 'ptc', 'direct', 'hybrid'" in refused.stderr

"""``ptc run --replay`` replays only the run a transcript recorded: same question, mode, tools.

A transcript of another run is refused in one line naming what differs (exit 2), unless
``--replay-anyway``; a file that is missing or not a transcript is one line too, never a
traceback. Run as a user runs it: as a process, offline.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from openptc import Agent, LocalSandbox, ScriptedModel
from openptc.recording import RecordingModel, load_transcript, tools_fingerprint
from openptc.scenarios import brains, expense

ROOT = Path(__file__).resolve().parents[1]
PTC = str(Path(sys.executable).parent / "ptc")


def ptc(*args: str, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "80"}  # narrow: errors must still be one line
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [PTC, "run", *args], capture_output=True, text=True, env=env, timeout=120, cwd=ROOT
    )


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A transcript of the expense audit, recorded by ``ptc run --record``."""
    path = tmp_path_factory.mktemp("recorded") / "audit.jsonl"
    done = ptc(expense.QUESTION, "--model", "scripted:expense-audit", "--record", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    return path


def the_error(done: subprocess.CompletedProcess[str]) -> str:
    """The one line a refused replay prints (and nothing that looks like a traceback)."""
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("error: ")]
    return line


async def test_the_header_records_what_the_model_was_offered(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    model = RecordingModel(
        ScriptedModel(brains.expense_audit_brain), path, mode="ptc", prompt=expense.QUESTION
    )
    async with LocalSandbox(pool_size=1) as sandbox:
        agent = Agent(model, expense.make_tools(), sandbox)
        await agent.run(expense.QUESTION)

    header, responses = load_transcript(path)
    assert header["tools"] == tools_fingerprint(agent.tool_specs)
    assert header["prompt"] == expense.QUESTION and header["mode"] == "ptc"
    assert len(responses) == 2
    direct = Agent(ScriptedModel.from_turns([]), expense.make_tools(), mode="direct")
    fewer = Agent(ScriptedModel.from_turns([]), expense.make_tools()[:2])
    assert tools_fingerprint(direct.tool_specs) != header["tools"]
    assert tools_fingerprint(fewer.tool_specs) != header["tools"]


def test_another_question_is_refused(recorded: Path) -> None:
    line = the_error(ptc("Who spent the most?", "--replay", str(recorded)))
    assert "another question" in line and "Which engineering team members" in line
    assert "--replay-anyway" in line


def test_another_mode_is_refused(recorded: Path) -> None:
    line = the_error(ptc(expense.QUESTION, "--replay", str(recorded), "--mode", "direct"))
    assert "another mode (recorded: ptc, now: direct)" in line


def test_other_tools_are_refused(recorded: Path, tmp_path: Path) -> None:
    (tmp_path / "fewer_tools.py").write_text(
        "from openptc.scenarios.expense import make_tools\n\n"
        "def tools():\n    return make_tools()[:2]\n"
    )
    done = ptc(
        expense.QUESTION,
        "--replay",
        str(recorded),
        "--tools",
        "fewer_tools:tools",
        pythonpath=tmp_path,
    )
    assert "other tools" in the_error(done)


def test_replay_anyway_replays_and_says_so(recorded: Path) -> None:
    done = ptc("Who spent the most?", "--replay", str(recorded), "--replay-anyway")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning: " in done.stdout and "replaying anyway" in done.stdout
    assert "another question" in done.stdout
    assert expense.is_correct(done.stdout)


def test_a_transcript_without_the_tools_replays_with_a_warning(
    recorded: Path, tmp_path: Path
) -> None:
    header, *responses = recorded.read_text().splitlines()
    older = {k: v for k, v in json.loads(header).items() if k != "tools"}
    old = tmp_path / "old.jsonl"
    old.write_text("\n".join([json.dumps(older), *responses]) + "\n")

    done = ptc(expense.QUESTION, "--replay", str(old))

    assert done.returncode == 0, done.stdout + done.stderr
    assert "does not record its tools; replaying without checking" in done.stdout
    assert expense.is_correct(done.stdout)


def test_a_missing_or_broken_transcript_is_one_line(tmp_path: Path) -> None:
    missing = the_error(ptc("q", "--replay", str(tmp_path / "nope.jsonl")))
    assert "cannot read the transcript" in missing and "No such file" in missing

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"format": "openptc-transcript", "version": 1}\n{"type": "resp\n')
    assert "line 2 is not JSON" in the_error(ptc("q", "--replay", str(broken)))

    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert "cannot read the transcript" in the_error(ptc("q", "--replay", str(binary)))


def test_replay_anyway_without_a_transcript_is_a_usage_error() -> None:
    done = ptc("q", "--replay-anyway")
    assert done.returncode == 2
    assert "--replay-anyway needs --replay FILE" in done.stderr

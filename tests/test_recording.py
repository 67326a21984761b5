"""Transcripts: a run is recorded as it happens and replays offline to the same result."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from openptc import Agent, LocalSandbox, ScriptedModel
from openptc.loading import load_toolbox
from openptc.models import ModelError, ModelResponse, ModelUsage, TextBlock, ToolUseBlock
from openptc.recording import (
    RecordingModel,
    load_transcript,
    replay_model,
    response_from_json,
    response_to_json,
)
from openptc.scenarios import brains, expense

ROOT = Path(__file__).resolve().parents[1]


def test_responses_round_trip_through_json() -> None:
    response = ModelResponse(
        content=(
            TextBlock("thinking"),
            ToolUseBlock("t1", "get", {"a": 1}),
            ToolUseBlock("t2", "get", {}, raw_input="{oops", input_error="not JSON"),
        ),
        stop_reason="tool_use",
        usage=ModelUsage(10, 5, cache_read_tokens=3),
        model="anthropic:x",
    )
    assert response_from_json(json.loads(json.dumps(response_to_json(response)))) == response


async def test_recorded_run_replays_to_the_same_result(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    async with LocalSandbox(pool_size=1) as sandbox:
        recorder = RecordingModel(
            ScriptedModel(brains.expense_audit_brain), path, mode="ptc", prompt=expense.QUESTION
        )
        original = await Agent(recorder, expense.make_tools(), sandbox).run(expense.QUESTION)
        header, responses = load_transcript(path)
        replayed = await Agent(replay_model(path), expense.make_tools(), sandbox).run(
            expense.QUESTION
        )
    assert header["mode"] == "ptc" and header["model"] == "scripted"
    assert len(responses) == original.usage.model_calls == 2
    assert replayed.answer == original.answer
    assert replayed.programs == original.programs
    assert expense.is_correct(replayed.answer)
    assert "replaying a transcript" in replayed.model_label


async def test_replay_says_when_the_transcript_runs_out(tmp_path: Path) -> None:
    path = tmp_path / "short.jsonl"
    RecordingModel(ScriptedModel.from_turns(["hi"]), path, mode="ptc", prompt="q")
    model = replay_model(path)
    with pytest.raises(ModelError, match="no turn left"):
        await Agent(model, []).run("q")


def test_not_a_transcript_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"hello": 1}\n')
    with pytest.raises(ModelError, match="not an openptc transcript"):
        load_transcript(path)


def test_load_toolbox_accepts_factories_lists_and_reports_mistakes() -> None:
    assert load_toolbox("openptc.scenarios.expense:make_tools").names == (
        "get_team_members",
        "get_expenses",
        "get_custom_budget",
    )
    with pytest.raises(ValueError, match=r"package\.module:attribute"):
        load_toolbox("openptc.scenarios.expense")
    with pytest.raises(ValueError, match=r"no (attribute )?'nope'"):
        load_toolbox("openptc.scenarios.expense:nope")
    with pytest.raises(ValueError, match="cannot import"):
        load_toolbox("no_such_module_xyz:tools")


def test_ptc_run_records_and_replays(tmp_path: Path) -> None:
    ptc = str(Path(sys.executable).with_name("ptc"))
    transcript = tmp_path / "run.jsonl"
    common = [expense.QUESTION, "--tools", "openptc.scenarios.expense:make_tools"]
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    recorded = subprocess.run(
        [ptc, "run", *common, "--model", "scripted:expense-audit", "--record", str(transcript)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=ROOT,
    )
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    assert expense.is_correct(recorded.stdout)
    assert "2 model calls" in recorded.stdout
    replayed = subprocess.run(
        [ptc, "run", *common, "--replay", str(transcript)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=ROOT,
    )
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "replaying a transcript" in replayed.stdout
    assert expense.is_correct(replayed.stdout)


def test_ptc_run_rejects_an_unknown_model() -> None:
    ptc = str(Path(sys.executable).with_name("ptc"))
    done = subprocess.run(
        [ptc, "run", "q", "--model", "nosuch:model"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        timeout=60,
    )
    assert done.returncode == 2
    assert "unknown model 'nosuch:model'" in done.stdout


def test_demo_picks_the_providers_whose_credentials_are_set() -> None:
    from openptc.demo import provider_models_from_env

    assert provider_models_from_env({}) == []
    env = {"ANTHROPIC_API_KEY": "k", "PTC_OPENAI_MODEL": "gpt-x", "OPENAI_API_KEY": "k"}
    assert provider_models_from_env(env) == ["anthropic:claude-sonnet-4-6", "openai:gpt-x"]
    assert provider_models_from_env({"PTC_BEDROCK_MODEL": "m:1"}) == ["bedrock:m:1"]


async def test_a_real_adapter_run_records_and_replays_offline(tmp_path: Path) -> None:
    from fakes.anthropic_server import FAKE_API_KEY, anthropic_app
    from fakes.harness import Recorder, serve
    from openptc.models.anthropic import AnthropicModel
    from openptc.models.retry import RetryPolicy

    path = tmp_path / "anthropic.jsonl"
    recorder = Recorder()
    async with (
        serve(anthropic_app(brains.expense_audit_brain, recorder)) as url,
        LocalSandbox(pool_size=1) as sandbox,
    ):
        live = AnthropicModel(
            "claude-x", base_url=url, api_key=FAKE_API_KEY, retry=RetryPolicy(attempts=1)
        )
        model = RecordingModel(live, path, mode="ptc", prompt=expense.QUESTION)
        original = await Agent(model, expense.make_tools(), sandbox).run(expense.QUESTION)
        served = len(recorder.requests)
        replayed = await Agent(replay_model(path), expense.make_tools(), sandbox).run(
            expense.QUESTION
        )
    header, responses = load_transcript(path)
    assert header["model"] == "anthropic:claude-x"
    assert served == 2 == len(recorder.requests)  # the replay never reached the provider
    assert all(r.usage is not None and r.usage.input_tokens > 0 for r in responses)
    assert replayed.answer == original.answer and expense.is_correct(replayed.answer)
    assert replayed.programs == original.programs

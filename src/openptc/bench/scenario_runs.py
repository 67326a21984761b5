"""One scenario run in one mode, with everything measured about it and nothing concluded yet.

Where the model comes from (``ModelSource``: the scripted brains, a real model whose
transcripts are recorded, or those transcripts replayed), the run itself, and what it leaves:
per-call records, the events with the time each arrived, the tool calls made (by a program or
directly), and the result or the error. Turning that into figures is ``scenario_bench``'s job.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openptc.agent import Agent
from openptc.bench.metering import MeteredModel
from openptc.events import Event, ModelCallFinished, ModelCallStarted, RunStarted
from openptc.models.base import Model, ToolUseBlock
from openptc.models.errors import ModelError
from openptc.models.scripted import ScriptedModel
from openptc.prompts import Mode
from openptc.recording import RecordingModel, load_transcript, transcript_differences
from openptc.recording import transcript_model as replaying
from openptc.runs import RunResult
from openptc.sandbox.base import Sandbox
from openptc.scenarios.base import Scenario, ToolCall
from openptc.tools import Toolbox


@dataclass(frozen=True)
class ModelSource:
    """Where each run's model comes from: the scripted brains, a real model, or replays."""

    model: str | None = None
    """A model string ("anthropic:claude-sonnet-4-5"); None for the scripted brains."""
    record_to: Path | None = None
    """With a real model: the directory its transcripts are written to."""
    replay_from: Path | None = None
    """Replay the transcripts in this directory instead of calling any model."""

    def transcript(self, directory: Path, scenario: Scenario, mode: Mode) -> Path:
        return directory / f"{scenario.name}-{mode}.jsonl"

    def make(self, scenario: Scenario, mode: Mode) -> tuple[Model, dict[str, Any] | None]:
        """The model for one run, and the transcript's header when it replays one."""
        if self.replay_from is not None:
            path = self.transcript(self.replay_from, scenario, mode)
            if not path.exists():
                raise ModelError(f"no transcript {path}: record one with --model first")
            header, responses = load_transcript(path)
            return replaying(path, header, responses), header
        if self.model is None:
            return ScriptedModel(scenario.brain, name=f"scripted:{scenario.name}"), None
        from openptc.models.resolve import model_from_string

        real = model_from_string(self.model)
        if self.record_to is None:
            return real, None
        self.record_to.mkdir(parents=True, exist_ok=True)
        path = self.transcript(self.record_to, scenario, mode)
        return RecordingModel(real, path, mode=mode, prompt=scenario.question), None

    @property
    def scripted(self) -> bool:
        return self.model is None and self.replay_from is None

    def describe(self) -> str:
        if self.replay_from is not None:
            return f"replays of the transcripts in {self.replay_from}"
        return self.model or "the scenarios' scripted brains (offline, no real model)"


@dataclass(frozen=True)
class Timed:
    """An event and when it arrived (``time.perf_counter``)."""

    at: float
    event: Event


@dataclass
class RunRecord:
    """What one run left behind."""

    scenario: Scenario
    mode: Mode
    metered: MeteredModel | None = None
    events: list[Timed] = field(default_factory=list)
    result: RunResult | None = None
    error: str | None = None
    wall_s: float = 0.0

    def tool_calls(self) -> list[ToolCall]:
        """Every tool call of the run, made by a program or directly, with its arguments."""
        if self.result is None:
            return []
        if self.mode == "direct":
            return [
                (block.name, dict(block.input))
                for message in self.result.transcript
                for block in message.content
                if isinstance(block, ToolUseBlock)
            ]
        return [
            (call.tool, call.arguments)
            for execution in self.result.executions
            for call in execution.tool_calls
        ]

    def outside_model_s(self) -> float:
        """Time between the run's start and its last model call's end spent outside model
        calls: tools, sandbox and the agent, measured. The benchmark's own token counting
        happens inside the model calls and is not in it."""
        starts = [t.at for t in self.events if isinstance(t.event, ModelCallStarted)]
        ends = [t.at for t in self.events if isinstance(t.event, ModelCallFinished)]
        begun = [t.at for t in self.events if isinstance(t.event, RunStarted)]
        if not starts or not begun:
            return 0.0
        gaps = starts[0] - begun[0]
        gaps += sum(later - end for end, later in zip(ends, starts[1:], strict=False))
        return max(0.0, gaps)


def _replay_differences(header: dict[str, Any], agent: Agent, question: str) -> str | None:
    differences, _ = transcript_differences(
        header, mode=agent.mode, prompt=question, tools=agent.tool_specs
    )
    if not differences:
        return None
    return f"the transcript was recorded with {'; '.join(differences)}: record it again"


async def run_mode(
    scenario: Scenario, mode: Mode, source: ModelSource, tool_latency_s: float,
    sandbox: Sandbox | None,
) -> RunRecord:  # fmt: skip
    """Run one scenario in one mode; a failure is recorded, never raised."""
    record = RunRecord(scenario, mode)
    started = time.perf_counter()
    try:
        model, header = source.make(scenario, mode)
        record.metered = MeteredModel(model)
        toolbox = Toolbox(scenario.make_tools(tool_latency_s))
        async with Agent(
            record.metered,
            toolbox,
            sandbox if mode != "direct" else None,
            mode=mode,
            max_turns=scenario.direct_max_turns,
        ) as agent:
            if header is not None and (
                stale := _replay_differences(header, agent, scenario.question)
            ):
                raise ModelError(stale)
            record.result = await agent.run(
                scenario.question,
                on_event=lambda e: record.events.append(Timed(time.perf_counter(), e)),
            )
    except Exception as exc:  # a failed run is a result: reported, never counted as a saving
        record.error = f"{type(exc).__name__}: {exc}"
    finally:
        if record.metered is not None:
            await record.metered.aclose()
    record.wall_s = time.perf_counter() - started
    return record

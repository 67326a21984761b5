"""``ptc run``: one question, with the user's tools, in any mode, on any model."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.panel import Panel
from rich.syntax import Syntax
from rich.text import Text

from openptc.agent import Agent, RunResult
from openptc.cli.console import console
from openptc.cli.run_output import RunDisplay
from openptc.demo import DEFAULT_MODEL
from openptc.loading import load_toolbox
from openptc.models import Model, ModelError, ModelSettings, Reasoning, model_from_string
from openptc.models.base import close_model
from openptc.recording import (
    RecordingModel,
    load_transcript,
    transcript_differences,
    transcript_model,
)
from openptc.runs import usage_summary
from openptc.sandbox.base import SandboxError
from openptc.tools import Toolbox


class RunMode(StrEnum):
    """The modes ``--mode`` offers (``--help`` lists them)."""

    ptc = "ptc"
    direct = "direct"
    hybrid = "hybrid"


def _fail(message: str, code: int = 2) -> NoReturn:
    """One line, never parsed as markup (messages quote paths, code and brackets), then exit."""
    console.print(Text("error: ", style="red") + Text(message), soft_wrap=True)
    raise typer.Exit(code)


class _Replay:
    """A transcript to replay, and the check that this run is the one it recorded."""

    def __init__(self, path: Path, anyway: bool, notices: Console) -> None:
        self.path = path
        self.anyway = anyway
        self.notices = notices
        self.header, self.responses = load_transcript(path)

    def check(self, agent: Agent, question: str) -> None:
        """Refuse (exit 2) a transcript of another mode, question or tools, unless anyway."""
        differences, missing = transcript_differences(
            self.header, mode=agent.mode, prompt=question, tools=agent.tool_specs
        )
        if differences and not self.anyway:
            _fail(
                f"{self.path} was recorded with {'; '.join(differences)}: its answers belong to "
                "another run. Ask the same, or pass --replay-anyway."
            )
        if differences:
            self._warn(f"replaying anyway, although it was recorded with {'; '.join(differences)}")
        if missing:
            self._warn(f"it does not record its {', '.join(missing)}; replaying without checking")

    def model(self) -> Model:
        return transcript_model(self.path, self.header, self.responses)

    def _warn(self, message: str) -> None:
        self.notices.print(Text(f"warning: {self.path}: {message}", style="yellow"), soft_wrap=True)


def run(
    question: Annotated[str, typer.Argument(help="What to ask the model.")],
    model: Annotated[
        str, typer.Option(help="Model string, e.g. anthropic:claude-sonnet-4-6.")
    ] = DEFAULT_MODEL,
    tools: Annotated[
        str | None,
        typer.Option(
            help="Tools as package.module:attribute (Toolbox, list or factory); default: the "
            "expense audit's, unless --mcp is given."
        ),
    ] = None,
    mcp: Annotated[
        Path | None,
        typer.Option(help="An mcpServers JSON file: its servers' tools, grouped by server."),
    ] = None,
    mode: Annotated[
        RunMode, typer.Option(help="Programs (ptc), classic tool calls (direct), or both.")
    ] = RunMode.ptc,
    record: Annotated[
        Path | None, typer.Option(help="Save the model's responses to this transcript.")
    ] = None,
    replay: Annotated[
        Path | None,
        typer.Option(
            help="Answer with a recorded transcript, offline; it must have been recorded with "
            "the same question, mode and tools."
        ),
    ] = None,
    replay_anyway: Annotated[
        bool, typer.Option(help="With --replay: replay a transcript that differs, with a warning.")
    ] = False,
    max_turns: Annotated[int, typer.Option(help="Most model calls in one run.")] = 40,
    stream: Annotated[bool, typer.Option(help="Print the model's text as it arrives.")] = True,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print the answer only (and errors).")
    ] = False,
    show_programs: Annotated[bool, typer.Option(help="Print the programs it wrote.")] = False,
    reasoning: Annotated[
        str | None,
        typer.Option(help="Reason first: an effort (minimal, low, medium, high) or a budget."),
    ] = None,
    show_reasoning: Annotated[
        bool, typer.Option(help="Print the model's reasoning (dimmed) where it returns it.")
    ] = False,
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature.")] = None,
    cache: Annotated[
        bool, typer.Option(help="Mark the stable prompt prefix for the provider's cache.")
    ] = True,
) -> None:
    """Ask one question with your tools, in any mode, on any model."""
    if replay_anyway and replay is None:
        raise typer.BadParameter(
            "--replay-anyway needs --replay FILE", param_hint="--replay-anyway"
        )
    try:
        settings = ModelSettings(
            reasoning=Reasoning.parse(reasoning) if reasoning else None,
            temperature=temperature,
            cache=cache,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    notices = Console(stderr=True) if quiet else console  # --quiet: stdout has the answer only
    try:
        if tools is None and mcp is None:
            tools = "openptc.scenarios.expense:make_tools"
        toolbox = load_toolbox(tools) if tools is not None else None
        transcript = _Replay(replay, replay_anyway, notices) if replay is not None else None
        chosen: Model = transcript.model() if transcript else model_from_string(model)
    except (ValueError, ModelError) as exc:
        _fail(str(exc))
    if record is not None:
        try:
            chosen = RecordingModel(chosen, record, mode=mode.value, prompt=question)
        except OSError as exc:
            _fail(f"cannot write the transcript {record}: {exc.strerror or exc}")
    display = RunDisplay(console, stream=stream, live=False if quiet else None)
    watch: dict[str, Any] = {}
    if not quiet:  # --quiet: the answer, printed at the end, is all
        watch = {"on_text": display.on_text if stream else None, "on_event": display.on_event}

    def agent_for(box: Toolbox) -> Agent:
        agent = Agent(chosen, box, mode=mode.value, max_turns=max_turns, settings=settings)
        if not quiet:
            header = f"model: {chosen.label} | mode: {mode.value} | tools: {', '.join(box.names)}"
            console.print(Text(header, style="dim"), soft_wrap=True)
        if transcript is not None:
            transcript.check(agent, question)
        return agent

    async def ask() -> RunResult:
        try:
            return await ask_with_tools()
        finally:
            await close_model(chosen)

    async def ask_with_tools() -> RunResult:
        """With --mcp, the servers start before the stubs are written and stop with the run."""
        if mcp is None:
            assert toolbox is not None
            agent = agent_for(toolbox)
            with display:
                return await agent.run(question, **watch)
        try:
            from openptc.mcp import McpConfigError, McpServerError, McpToolbox
        except ImportError as exc:
            _fail(f"--mcp needs the mcp extra ({exc})")
        try:
            async with McpToolbox.from_file(mcp) as servers:
                agent = agent_for(servers if toolbox is None else Toolbox([*toolbox, *servers]))
                with display:
                    return await agent.run(question, **watch)
        except (McpConfigError, McpServerError) as exc:
            _fail(str(exc))

    try:
        result = asyncio.run(ask())
    except ModelError as exc:
        console.print(Text("\nmodel error: ", style="red") + Text(str(exc)), soft_wrap=True)
        raise typer.Exit(1) from None
    except SandboxError as exc:  # no sandbox session could be opened for a program
        _fail(f"the sandbox failed: {exc}", code=1)
    if quiet:
        console.print(result.answer, markup=False, highlight=False)
        raise typer.Exit(0 if result.stop == "answered" else 1)
    if result.stop != "answered":  # the reason the run stopped was never streamed
        console.print(result.answer, style="red", markup=False, highlight=False)
    elif not stream:
        console.print(result.answer, markup=False, highlight=False)
    if show_reasoning:
        for number, thought in enumerate(result.reasoning, 1):
            console.print(
                Panel(Text(thought), title=f"reasoning {number}", style="dim", expand=False)
            )
    if show_programs:
        for number, program in enumerate(result.programs, 1):
            console.print(
                Panel(Syntax(program, "python", word_wrap=True), title=f"program {number}")
            )
    summary = f"{usage_summary(result.usage)}; stopped: {result.stop}"
    console.print(summary, style="dim", markup=False, highlight=False)
    if record is not None:
        console.print(f"transcript saved to {record}", style="dim", markup=False, highlight=False)
    if result.stop != "answered":
        raise typer.Exit(1)

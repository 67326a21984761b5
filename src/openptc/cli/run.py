"""``ptc run``: one question, with the user's tools, in any mode, on any model."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.syntax import Syntax

from openptc.agent import Agent, RunResult
from openptc.cli.console import console
from openptc.demo import (
    DEFAULT_MODEL,
)
from openptc.loading import load_toolbox
from openptc.models import Model, ModelError, ModelSettings, Reasoning, model_from_string
from openptc.models.base import close_model
from openptc.prompts import Mode
from openptc.recording import RecordingModel, replay_model
from openptc.runs import usage_summary
from openptc.tools import Toolbox


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
    mode: Annotated[str, typer.Option(help="ptc, direct or hybrid.")] = "ptc",
    record: Annotated[
        Path | None, typer.Option(help="Save the model's responses to this transcript.")
    ] = None,
    replay: Annotated[
        Path | None, typer.Option(help="Answer with a recorded transcript, offline.")
    ] = None,
    max_turns: Annotated[int, typer.Option(help="Most model calls in one run.")] = 40,
    stream: Annotated[bool, typer.Option(help="Print the model's text as it arrives.")] = True,
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
    if mode not in ("ptc", "direct", "hybrid"):
        raise typer.BadParameter("mode must be ptc, direct or hybrid", param_hint="--mode")
    try:
        settings = ModelSettings(
            reasoning=Reasoning.parse(reasoning) if reasoning else None,
            temperature=temperature,
            cache=cache,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        if tools is None and mcp is None:
            tools = "openptc.scenarios.expense:make_tools"
        toolbox = load_toolbox(tools) if tools is not None else None
        chosen: Model = replay_model(replay) if replay else model_from_string(model)
    except (ValueError, ModelError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if record is not None:
        chosen = RecordingModel(chosen, record, mode=mode, prompt=question)
    on_text = (lambda text: print(text, end="", flush=True)) if stream else None

    def agent_for(box: Toolbox) -> Agent:
        console.print(
            f"[dim]model: {chosen.label} | mode: {mode} | tools: {', '.join(box.names)}[/dim]"
        )
        return Agent(chosen, box, mode=cast(Mode, mode), max_turns=max_turns, settings=settings)

    async def ask() -> RunResult:
        try:
            return await ask_with_tools()
        finally:
            await close_model(chosen)

    async def ask_with_tools() -> RunResult:
        """With --mcp, the servers start before the stubs are written and stop with the run."""
        if mcp is None:
            assert toolbox is not None
            return await agent_for(toolbox).run(question, on_text=on_text)
        try:
            from openptc.mcp import McpConfigError, McpServerError, McpToolbox
        except ImportError as exc:
            console.print(f"[red]error:[/red] --mcp needs the mcp extra ({exc})")
            raise typer.Exit(2) from None
        try:
            async with McpToolbox.from_file(mcp) as servers:
                box = servers if toolbox is None else Toolbox([*toolbox, *servers])
                return await agent_for(box).run(question, on_text=on_text)
        except (McpConfigError, McpServerError) as exc:
            console.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(2) from None

    try:
        result = asyncio.run(ask())
    except ModelError as exc:
        console.print(f"\n[red]model error:[/red] {exc}")
        raise typer.Exit(1) from None
    if stream:
        print()
    if result.stop != "answered":  # the reason the run stopped was never streamed
        console.print(result.answer, style="red", markup=False, highlight=False)
    elif not stream:
        console.print(result.answer, markup=False)
    if show_reasoning:
        for number, thought in enumerate(result.reasoning, 1):
            console.print(
                Panel(escape(thought), title=f"reasoning {number}", style="dim", expand=False)
            )
    if show_programs:
        for number, program in enumerate(result.programs, 1):
            console.print(
                Panel(Syntax(program, "python", word_wrap=True), title=f"program {number}")
            )
    summary = f"{usage_summary(result.usage)}; stopped: {result.stop}"
    console.print(summary, style="dim", markup=False, highlight=False)
    if record is not None:
        console.print(f"[dim]transcript saved to {record}[/dim]")
    if result.stop != "answered":
        raise typer.Exit(1)

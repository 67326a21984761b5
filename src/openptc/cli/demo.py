"""``ptc demo``: the expense audit in both modes, side by side."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table

from openptc.cli.console import console, fail, say
from openptc.demo import (
    DEFAULT_MODEL,
    DemoOutcome,
    ModeOutcome,
    provider_models_from_env,
    run_expense_audit,
)
from openptc.models import ModelError
from openptc.scenarios.expense import QUESTION


def demo(
    model: Annotated[str, typer.Option(help="Model string.")] = DEFAULT_MODEL,
    direct: Annotated[
        bool | None,
        typer.Option(help="Also run direct mode (default: yes for scripted, no for real models)."),
    ] = None,
    providers_with_keys: Annotated[
        bool, typer.Option(help="Run the demo on every provider whose credentials are set.")
    ] = False,
    latency: Annotated[float, typer.Option(help="Simulated latency of a tool call, s.")] = 0.02,
    show_program: Annotated[bool, typer.Option(help="Print the program the model wrote.")] = True,
) -> None:
    """Run the expense audit in PTC and direct mode and compare them."""
    models = provider_models_from_env(os.environ) if providers_with_keys else [model]
    if not models:
        console.print(
            "[dim]no provider credentials set (ANTHROPIC_API_KEY, OPENAI_API_KEY, "
            "PTC_BEDROCK_MODEL): real-provider demo skipped[/dim]"
        )
        return
    failures = 0
    for chosen in models:
        scripted = chosen.startswith("scripted:")
        run_direct = direct if direct is not None else scripted
        failures += not _demo_one(chosen, run_direct, latency, show_program)
    if failures:
        raise typer.Exit(1)


def _demo_one(model: str, run_direct: bool, latency: float, show_program: bool) -> bool:
    say("Question:", QUESTION, style="bold")
    streamed = not model.startswith("scripted:")
    on_text = (lambda text: console.print(text, end="", markup=False)) if streamed else None
    try:
        with console.status(f"running the expense audit on {escape(model)}..."):
            outcome = asyncio.run(
                run_expense_audit(model, direct=run_direct, latency_s=latency, on_text=on_text)
            )
    except (ModelError, ValueError) as exc:
        fail(model, exc)
        return False
    label = outcome.ptc.result.model_label
    style = "yellow" if "scripted" in label else "green"
    console.print(Panel(f"model: {escape(label)}", style=style, expand=False))
    if show_program and outcome.ptc.result.programs:
        program = Syntax(
            outcome.ptc.result.programs[0], "python", line_numbers=True, word_wrap=True
        )
        console.print(Panel(program, title="the program the model wrote (PTC)"))
    console.print(_comparison_table(outcome))
    say("PTC answer:", outcome.ptc.result.answer, style="bold")
    if outcome.direct is not None:
        say("Direct answer:", outcome.direct.result.answer, style="bold")
    executions = outcome.ptc.result.executions
    if executions:
        isolation = executions[0].isolation.describe()
        console.print(f"sandbox isolation: {isolation}", style="dim", markup=False)
    console.print(outcome.verdict(), style="bold green", markup=False)
    return outcome.all_correct


def _comparison_table(outcome: DemoOutcome) -> Table:
    runs: list[tuple[str, ModeOutcome]] = [("PTC", outcome.ptc)]
    if outcome.direct is not None:
        runs.append(("direct", outcome.direct))
    table = Table(title="expense audit: PTC vs direct tool calling (same model, same tools)")
    table.add_column("")
    for name, _ in runs:
        table.add_column(name, justify="right")
    usages = [run.result.usage for _, run in runs]
    table.add_row("model calls", *(str(u.model_calls) for u in usages))
    table.add_row("input tokens", *(f"{u.input_tokens:,}" for u in usages))
    table.add_row(
        "  of which cached (read / written)",
        *(
            f"{u.cache_read_tokens:,} / {u.cache_write_tokens:,}"
            if u.tokens_counted == "provider"
            else "n/a"  # counted offline: no cache
            for u in usages
        ),
    )
    table.add_row("output tokens", *(f"{u.output_tokens:,}" for u in usages))
    table.add_row("tool calls", *(str(u.tool_calls) for u in usages))
    table.add_row("wall time", *(f"{u.wall_time_s:.2f} s" for u in usages))
    table.add_row("correct", *(_mark(run.correct) for _, run in runs))
    table.caption = f"tokens counted by: {outcome.ptc.result.usage.tokens_counted}"
    return table


def _mark(ok: bool) -> str:
    return "[green]yes[/green]" if ok else "[red]NO[/red]"

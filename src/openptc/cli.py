"""The ``ptc`` command line: demo, doctor, bench."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table

from openptc.agent import Agent, RunResult
from openptc.bench.commands import bench_app
from openptc.demo import (
    DEFAULT_MODEL,
    DemoOutcome,
    ModeOutcome,
    provider_models_from_env,
    run_expense_audit,
)
from openptc.doctor import diagnose
from openptc.loading import load_toolbox
from openptc.models import Model, ModelError, ModelSettings, Reasoning, model_from_string
from openptc.models.base import close_model
from openptc.prompts import Mode
from openptc.recording import RecordingModel, replay_model
from openptc.runs import usage_summary
from openptc.scenarios.expense import QUESTION
from openptc.tools import Toolbox

app = typer.Typer(
    help="openptc: programmatic tool calling for any model.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(bench_app, name="bench")
sandbox_app = typer.Typer(help="Sandbox housekeeping.")
app.add_typer(sandbox_app, name="sandbox")
console = Console()


@app.command()
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
    console.print(f"[bold]Question:[/bold] {QUESTION}")
    streamed = not model.startswith("scripted:")
    on_text = (lambda text: console.print(text, end="", markup=False)) if streamed else None
    try:
        with console.status(f"running the expense audit on {model}..."):
            outcome = asyncio.run(
                run_expense_audit(model, direct=run_direct, latency_s=latency, on_text=on_text)
            )
    except (ModelError, ValueError) as exc:
        console.print(f"[red]{model}: {exc}[/red]")
        return False
    label = outcome.ptc.result.model_label
    style = "yellow" if "scripted" in label else "green"
    console.print(Panel(f"model: {label}", style=style, expand=False))
    if show_program and outcome.ptc.result.programs:
        program = Syntax(
            outcome.ptc.result.programs[0], "python", line_numbers=True, word_wrap=True
        )
        console.print(Panel(program, title="the program the model wrote (PTC)"))
    console.print(_comparison_table(outcome))
    console.print(f"[bold]PTC answer:[/bold] {outcome.ptc.result.answer}")
    if outcome.direct is not None:
        console.print(f"[bold]Direct answer:[/bold] {outcome.direct.result.answer}")
    executions = outcome.ptc.result.executions
    if executions:
        console.print(f"[dim]sandbox isolation: {executions[0].isolation.describe()}[/dim]")
    console.print(f"[bold green]{outcome.verdict()}[/bold green]")
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


@app.command()
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


@app.command()
def doctor(
    strict: Annotated[bool, typer.Option(help="Exit 1 unless namespace isolation works.")] = False,
) -> None:
    """Start a sandbox and report, check by check, how well it is isolated."""
    report = asyncio.run(diagnose())
    isolation = report.isolation
    level_style = "green" if isolation.level == "bubblewrap" else "bold red"
    console.print(f"isolation level: [{level_style}]{isolation.level}[/{level_style}]")
    console.print(f"bubblewrap: {report.bwrap_path or 'not installed'}")
    console.print(f"namespaces: {', '.join(isolation.namespaces) or 'none'}")
    console.print(f"dedicated uid per sandbox: {'yes' if isolation.dedicated_uid else 'no'}")
    table = Table("check", "result")
    for check in report.checks:
        if not check.passed:
            result = f"[red]{check.detail}[/red]"
        elif check.kind == "protection":  # what it is, not only that it is there
            result = f"[green]ok[/green]: {check.detail}"
        else:
            result = "[green]ok[/green]"
        table.add_row(check.name, result)
    console.print(table)
    for warning in isolation.warnings:
        console.print(f"[bold red]WARNING:[/bold red] {warning}")
    if not report.strong:
        console.print(
            "[bold red]This machine does not give sandboxes full isolation.[/bold red] "
            "Install bubblewrap (apt-get install bubblewrap) and allow user namespaces."
        )
        if strict:
            raise typer.Exit(1)
    else:
        console.print(
            "[green]sandboxes are isolated with namespaces, limits and a fresh uid[/green]"
        )


@app.command()
def serve(
    model: Annotated[
        list[str],
        typer.Option(
            help="NAME=MODEL_STRING: which backend serves a requested model name "
            "('*' for every name). Repeatable."
        ),
    ] = [],  # noqa: B006 - typer needs a literal default
    api_key: Annotated[
        list[str], typer.Option(help="A client key (or set PTC_PROXY_API_KEYS). Repeatable.")
    ] = [],  # noqa: B006
    config: Annotated[
        Path | None, typer.Option(help="A TOML or JSON file with the whole configuration.")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8082,
    redis_url: Annotated[
        str | None, typer.Option(help="Share containers between replicas through Redis.")
    ] = None,
    advertise_url: Annotated[
        str | None,
        typer.Option(help="How other replicas reach this one, or 'auto' (or PTC_ADVERTISE_URL)."),
    ] = None,
    sandbox_url: Annotated[
        str | None,
        typer.Option(help="Run programs on this sandbox server (token: PTC_SANDBOX_TOKEN)."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve the Anthropic Messages API, with programmatic tool calling, on any model."""
    from openptc.proxy.serve import ServeConfigError, build_config, run_server

    try:
        settings = build_config(
            config,
            model,
            api_key,
            redis_url,
            advertise_url=advertise_url,
            sandbox_url=sandbox_url,
        )
    except (ServeConfigError, ValueError, OSError) as exc:
        console.print(f"[red]ptc serve:[/red] {exc}")
        raise typer.Exit(2) from None
    if settings.advertise_url == "auto":
        from openptc.proxy.advertise import AdvertiseError, discover_advertise_url

        try:
            found = discover_advertise_url(port)
        except AdvertiseError as exc:
            console.print(f"[red]ptc serve:[/red] {exc}")
            raise typer.Exit(2) from None
        settings = settings.model_copy(update={"advertise_url": found})
        console.print(f"advertising {found} to the other replicas")
    console.print(
        f"[green]openptc proxy[/green] on http://{host}:{port} — point the anthropic SDK's "
        f"base_url there; models: {', '.join(sorted(settings.models))}",
        highlight=False,
    )
    run_server(settings, host, port, log_level)


@sandbox_app.command("gc")
def sandbox_gc(
    everything: Annotated[
        bool, typer.Option("--all", help="Also remove containers whose owner still runs.")
    ] = False,
    docker_host: Annotated[
        str | None, typer.Option(help="The engine (default: DOCKER_HOST or the local socket).")
    ] = None,
) -> None:
    """Remove sandbox containers left behind by a crashed process (labelled openptc.sandbox)."""
    from openptc.sandbox.docker import gc_command

    raise typer.Exit(gc_command(everything=everything, docker_host=docker_host, echo=console.print))


@app.command("sandbox-server")
def sandbox_server(
    token: Annotated[
        list[str], typer.Option(help="A client token (or set PTC_SANDBOX_TOKENS). Repeatable.")
    ] = [],  # noqa: B006 - typer needs a literal default
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8090,
    backend: Annotated[str, typer.Option(help="local (bubblewrap/process) or docker.")] = "local",
    max_sessions_per_token: Annotated[int, typer.Option(help="Open sessions per token.")] = 16,
    session_idle_s: Annotated[float, typer.Option(help="Close sessions idle this long.")] = 600.0,
    drain_timeout_s: Annotated[
        float, typer.Option(help="On SIGTERM, how long running executions may finish.")
    ] = 60.0,
    pool_size: Annotated[int, typer.Option(help="Sandboxes kept started and ready.")] = 2,
    max_execution_s: Annotated[
        float, typer.Option(help="Longest wall clock a client may ask for one execution.")
    ] = 600.0,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run sandbox sessions for remote orchestrators (HTTP + WebSocket); tools stay with them."""
    from pydantic import ValidationError

    from openptc.server.config import TOKENS_ENV, ServerConfig, tokens_from
    from openptc.server.run import run_server

    tokens = tokens_from(token)
    if not tokens:
        console.print(f"[red]ptc sandbox-server:[/red] no token: pass --token or set {TOKENS_ENV}")
        raise typer.Exit(2)
    try:
        settings = ServerConfig(
            tokens=tokens,
            backend=backend,  # type: ignore[arg-type]
            max_sessions_per_token=max_sessions_per_token,
            session_idle_s=session_idle_s,
            drain_timeout_s=drain_timeout_s,
            pool_size=pool_size,
            max_execution_s=max_execution_s,
        )
    except ValidationError as exc:
        console.print(
            f"[red]ptc sandbox-server:[/red] {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}"
        )
        raise typer.Exit(2) from None
    console.print(f"[green]openptc sandbox server[/green] on http://{host}:{port} ({backend})")
    run_server(settings, host, port, log_level)


@app.command("mcp")
def mcp_server(
    config: Annotated[
        Path | None, typer.Option(help="An mcpServers JSON file: the upstream MCP servers.")
    ] = None,
    tools: Annotated[
        str | None, typer.Option(help="Or tools as package.module:attribute (as for ptc run).")
    ] = None,
    transport: Annotated[str, typer.Option(help="stdio, or http (streamable HTTP).")] = "stdio",
    host: Annotated[str, typer.Option(help="Address to listen on (http).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (http).")] = 8765,
    sandbox: Annotated[str, typer.Option(help="local (bubblewrap/process) or docker.")] = "local",
    sandbox_url: Annotated[
        str | None,
        typer.Option(help="Run programs on this sandbox server (token: PTC_SANDBOX_TOKEN)."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Longest wall clock of one program, s.")] = 50.0,
    call_timeout: Annotated[float, typer.Option(help="Longest upstream tool call, s.")] = 60.0,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "warning",
) -> None:
    """Serve MCP servers' tools in code mode: run_code plus tool discovery, over stdio or HTTP."""
    from rich.markup import escape

    from openptc.mcp.code_mode_main import Transport, run_code_mode
    from openptc.mcp.sandbox_choice import SandboxChoice
    from openptc.mcp.transports import require_loopback

    errors = Console(stderr=True)  # over stdio, stdout is the protocol's
    if (config is None) == (tools is None):
        errors.print("[red]ptc mcp:[/red] pass either --config mcp.json or --tools module:attr")
        raise typer.Exit(2)
    if transport not in ("stdio", "http"):
        raise typer.BadParameter("transport must be stdio or http", param_hint="--transport")
    try:
        require_loopback(host)
        toolbox = load_toolbox(tools) if tools is not None else None
        choice = SandboxChoice.from_flags(
            sandbox, sandbox_url, timeout_s=timeout, pool_size=1 if transport == "stdio" else 2
        )
    except ValueError as exc:
        errors.print(f"[red]ptc mcp:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    mode: Transport = "http" if transport == "http" else "stdio"
    try:
        asyncio.run(
            run_code_mode(
                config=config,
                toolbox=toolbox,
                choice=choice,
                transport=mode,
                host=host,
                port=port,
                call_timeout_s=call_timeout,
                log_level=log_level,
            )
        )
    except KeyboardInterrupt:
        pass
    except ValueError as exc:  # a bad mcpServers file: the message names the server and field
        errors.print(f"[red]ptc mcp:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None

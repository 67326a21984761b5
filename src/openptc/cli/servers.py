"""The long-running commands: ``ptc serve``, ``ptc sandbox-server``, ``ptc mcp``, and
sandbox housekeeping."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from openptc.cli.console import console
from openptc.loading import load_toolbox


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

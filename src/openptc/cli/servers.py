"""The long-running commands: ``ptc serve``, ``ptc sandbox-server``, ``ptc mcp``, and
sandbox housekeeping.

Each needs an extra (``proxy``, ``server``, ``mcp``; ``docker`` for that backend): its imports
come first, so a missing one is one line naming the ``pip install`` before anything starts.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console

from openptc.cli.console import console, fail, say
from openptc.extras import MissingExtra, require
from openptc.loading import load_toolbox

SandboxKind = Literal["local", "docker"]
DOCKER_SDK = "openptc.sandbox.docker.engine"  # the Docker backend's client, over the docker SDK


def _missing(exc: MissingExtra, to: Console = console) -> typer.Exit:
    """Say which extra to install; the exit (2: the installation, not the run, is wrong)."""
    say("error:", exc, to=to)
    return typer.Exit(2)


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
    sandbox_token: Annotated[
        str | None, typer.Option(help="The sandbox server's token (better: PTC_SANDBOX_TOKEN).")
    ] = None,
    container_idle_s: Annotated[float | None, typer.Option(help="Forget idle containers.")] = None,
    container_warm_s: Annotated[
        float | None, typer.Option(help="An idle container keeps its sandbox this long.")
    ] = None,
    container_max_age_s: Annotated[
        float | None, typer.Option(help="Forget containers this old.")
    ] = None,
    tool_result_timeout_s: Annotated[
        float | None, typer.Option(help="How long a paused program waits for a tool result.")
    ] = None,
    program_timeout_s: Annotated[
        float | None, typer.Option(help="Longest wall clock of one program.")
    ] = None,
    max_body_bytes: Annotated[int | None, typer.Option(help="Largest request body.")] = None,
    max_code_runs_per_request: Annotated[
        int | None, typer.Option(help="Programs one request may run.")
    ] = None,
    sandbox_limits: Annotated[
        str | None, typer.Option(help="Sandbox limits as JSON, e.g. '{\"memory_mb\": 1024}'.")
    ] = None,
    pool_size: Annotated[int | None, typer.Option(help="Sandboxes kept started and ready.")] = None,
    drain_timeout_s: Annotated[
        float | None, typer.Option(help="On SIGTERM, how long requests in flight may finish.")
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve the Anthropic Messages API, with programmatic tool calling, on any model.

    Every setting comes from flags, else PTC_PROXY_<FIELD>, else the --config file."""
    try:
        require("proxy", "ptc serve", "openptc.proxy.app", "openptc.proxy.serve")
    except MissingExtra as exc:
        raise _missing(exc) from None
    from openptc.proxy.serve import build_config, check_startup, run_server

    try:
        settings = build_config(
            config,
            model,
            api_key,
            redis_url,
            advertise_url=advertise_url,
            sandbox_url=sandbox_url,
            flags={
                "sandbox_token": sandbox_token,
                "container_idle_s": container_idle_s,
                "container_warm_s": container_warm_s,
                "container_max_age_s": container_max_age_s,
                "tool_result_timeout_s": tool_result_timeout_s,
                "program_timeout_s": program_timeout_s,
                "max_body_bytes": max_body_bytes,
                "max_code_runs_per_request": max_code_runs_per_request,
                "sandbox_limits": sandbox_limits,
                "pool_size": pool_size,
                "drain_timeout_s": drain_timeout_s,
            },
        )
        check_startup(settings)
    except MissingExtra as exc:
        raise _missing(exc) from None
    except (ValueError, OSError) as exc:  # ServeConfigError is a ValueError
        fail("ptc serve", exc)
        raise typer.Exit(2) from None
    if settings.advertise_url == "auto":
        from openptc.proxy.advertise import AdvertiseError, discover_advertise_url

        try:
            found = discover_advertise_url(port)
        except AdvertiseError as exc:
            fail("ptc serve", exc)
            raise typer.Exit(2) from None
        settings = settings.model_copy(update={"advertise_url": found})
        console.print(f"advertising {found} to the other replicas", markup=False)
    say(
        "openptc proxy",
        f"on http://{host}:{port} — point the anthropic SDK's base_url there; "
        f"models: {', '.join(sorted(settings.models))}",
        style="green",
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

    def echo(line: str) -> None:
        console.print(line, markup=False, highlight=False)

    raise typer.Exit(gc_command(everything=everything, docker_host=docker_host, echo=echo))


def sandbox_server(
    token: Annotated[
        list[str], typer.Option(help="A client token (or set PTC_SANDBOX_TOKENS). Repeatable.")
    ] = [],  # noqa: B006 - typer needs a literal default
    config: Annotated[
        Path | None, typer.Option(help="A TOML or JSON file with any of the settings.")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8090,
    backend: Annotated[
        SandboxKind | None,
        typer.Option(help="Where programs run: local (bubblewrap/process) or docker."),
    ] = None,
    max_sessions_per_token: Annotated[
        int | None, typer.Option(help="Open sessions per token (16).")
    ] = None,
    session_idle_s: Annotated[
        float | None, typer.Option(help="Close sessions idle this long (600).")
    ] = None,
    drain_timeout_s: Annotated[
        float | None, typer.Option(help="On SIGTERM, how long running executions may finish (60).")
    ] = None,
    pool_size: Annotated[
        int | None, typer.Option(help="Sandboxes kept started and ready (2).")
    ] = None,
    max_execution_s: Annotated[
        float | None,
        typer.Option(help="Longest wall clock a client may ask for one execution (600)."),
    ] = None,
    limits: Annotated[
        str | None, typer.Option(help="Sandbox limits as JSON, e.g. '{\"memory_mb\": 1024}'.")
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run sandbox sessions for remote orchestrators (HTTP + WebSocket); tools stay with them.

    Every setting comes from flags, else PTC_SANDBOX_<FIELD>, else the --config file."""
    from openptc.server.config import build_server_config

    try:
        settings = build_server_config(
            config,
            {
                "tokens": token,
                "backend": backend,
                "max_sessions_per_token": max_sessions_per_token,
                "session_idle_s": session_idle_s,
                "drain_timeout_s": drain_timeout_s,
                "pool_size": pool_size,
                "max_execution_s": max_execution_s,
                "limits": limits,
            },
        )
    except (ValueError, OSError) as exc:  # SettingsError names the field and its source
        fail("ptc sandbox-server", exc)
        raise typer.Exit(2) from None
    try:
        require("server", "ptc sandbox-server", "openptc.server.run")
        if settings.backend == "docker":
            require("docker", "--backend docker", DOCKER_SDK)
    except MissingExtra as exc:
        raise _missing(exc) from None
    from openptc.server.run import run_server

    say("openptc sandbox server", f"on http://{host}:{port} ({settings.backend})", style="green")
    run_server(settings, host, port, log_level)


def mcp_server(
    config: Annotated[
        Path | None, typer.Option(help="An mcpServers JSON file: the upstream MCP servers.")
    ] = None,
    tools: Annotated[
        str | None, typer.Option(help="Or tools as package.module:attribute (as for ptc run).")
    ] = None,
    transport: Annotated[
        Literal["stdio", "http"], typer.Option(help="stdio, or http (streamable HTTP).")
    ] = "stdio",
    host: Annotated[str, typer.Option(help="Address to listen on (http).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (http).")] = 8765,
    sandbox: Annotated[
        SandboxKind, typer.Option(help="Where programs run: local (bubblewrap/process) or docker.")
    ] = "local",
    sandbox_url: Annotated[
        str | None,
        typer.Option(help="Run programs on this sandbox server (token: PTC_SANDBOX_TOKEN)."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Longest wall clock of one program, s.")] = 50.0,
    call_timeout: Annotated[float, typer.Option(help="Longest upstream tool call, s.")] = 60.0,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "warning",
) -> None:
    """Serve MCP servers' tools in code mode: run_code plus tool discovery, over stdio or HTTP."""
    errors = Console(stderr=True)  # over stdio, stdout is the protocol's
    try:
        require("mcp", "ptc mcp", "openptc.mcp.code_mode_main")
        if sandbox_url is not None:
            require("remote", "--sandbox-url", "openptc.sandbox.remote")
        elif sandbox == "docker":
            require("docker", "--sandbox docker", DOCKER_SDK)
    except MissingExtra as exc:
        raise _missing(exc, errors) from None
    from openptc.mcp.code_mode_main import run_code_mode
    from openptc.mcp.sandbox_choice import SandboxChoice
    from openptc.mcp.transports import require_loopback

    if (config is None) == (tools is None):
        fail("ptc mcp", "pass either --config mcp.json or --tools module:attr", to=errors)
        raise typer.Exit(2)
    try:
        require_loopback(host)
        toolbox = load_toolbox(tools) if tools is not None else None
        choice = SandboxChoice.from_flags(
            sandbox, sandbox_url, timeout_s=timeout, pool_size=1 if transport == "stdio" else 2
        )
    except ValueError as exc:
        fail("ptc mcp", exc, to=errors)
        raise typer.Exit(2) from None
    try:
        asyncio.run(
            run_code_mode(
                config=config,
                toolbox=toolbox,
                choice=choice,
                transport=transport,
                host=host,
                port=port,
                call_timeout_s=call_timeout,
                log_level=log_level,
            )
        )
    except KeyboardInterrupt:
        pass
    except ValueError as exc:  # a bad mcpServers file: the message names the server and field
        fail("ptc mcp", exc, to=errors)
        raise typer.Exit(2) from None

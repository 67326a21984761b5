"""The ``ptc`` command line: each command lives in its own module; this one assembles them."""

from __future__ import annotations

import typer

from openptc.bench.commands import bench_app
from openptc.cli.demo import demo
from openptc.cli.doctor import doctor
from openptc.cli.run import run
from openptc.cli.servers import mcp_server, sandbox_gc, sandbox_server, serve

app = typer.Typer(
    help="openptc: programmatic tool calling for any model.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(bench_app, name="bench")
sandbox_app = typer.Typer(help="Sandbox housekeeping.")
app.add_typer(sandbox_app, name="sandbox")

app.command()(demo)
app.command()(run)
app.command()(doctor)
app.command()(serve)
sandbox_app.command("gc")(sandbox_gc)
app.command("sandbox-server")(sandbox_server)
app.command("mcp")(mcp_server)

__all__ = ["app"]

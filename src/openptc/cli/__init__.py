"""The ``ptc`` command line: each command lives in its own module; this one assembles them."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from openptc.bench.commands import bench_app
from openptc.cli.console import console
from openptc.cli.demo import demo
from openptc.cli.doctor import doctor
from openptc.cli.run import run
from openptc.cli.servers import mcp_server, sandbox_gc, sandbox_server, serve

app = typer.Typer(
    help="openptc: programmatic tool calling for any model.",
    no_args_is_help=True,
    add_completion=False,
)


def _installed_version() -> str:
    try:
        return version("openptc")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed: pip install -e .)"


def _print_version(asked: bool) -> None:
    if asked:
        console.print(f"openptc {_installed_version()}", markup=False, highlight=False)
        raise typer.Exit()


@app.callback()
def main(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", is_eager=True, callback=_print_version
        ),
    ] = False,
) -> None:
    """openptc: programmatic tool calling for any model."""


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

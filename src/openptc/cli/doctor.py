"""``ptc doctor``: what isolation this machine gives, and what is missing."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from openptc.cli.console import console, say
from openptc.doctor import diagnose


def doctor(
    strict: Annotated[bool, typer.Option(help="Exit 1 unless namespace isolation works.")] = False,
) -> None:
    """Start a sandbox and report, check by check, how well it is isolated."""
    report = asyncio.run(diagnose())
    isolation = report.isolation
    level_style = "green" if isolation.level == "bubblewrap" else "bold red"
    console.print(f"isolation level: [{level_style}]{isolation.level}[/{level_style}]")
    console.print(f"bubblewrap: {report.bwrap_path or 'not installed'}", markup=False)
    console.print(f"namespaces: {', '.join(isolation.namespaces) or 'none'}", markup=False)
    console.print(f"dedicated uid per sandbox: {'yes' if isolation.dedicated_uid else 'no'}")
    table = Table("check", "result")
    for check in report.checks:
        if not check.passed:
            result = f"[red]{escape(check.detail)}[/red]"
        elif check.kind == "protection":  # what it is, not only that it is there
            result = f"[green]ok[/green]: {escape(check.detail)}"
        else:
            result = "[green]ok[/green]"
        table.add_row(escape(check.name), result)
    console.print(table)
    for warning in isolation.warnings:
        say("WARNING:", warning, style="bold red")
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

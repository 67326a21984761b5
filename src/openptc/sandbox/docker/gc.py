"""Removing stray sandbox containers: those whose owning process is gone (``ptc sandbox gc``).

A process that exits normally removes its containers (``aclose``); one that crashes or is killed
cannot. Its containers usually end by themselves (the runtime exits when the attach connection
closes), but a program stuck in a loop keeps its container running, and an ended container
still takes space. Each container is labelled with its owner (host, boot, pid, process start),
so strays are told from containers of live processes, which are never touched unless asked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from openptc.sandbox.base import SandboxError
from openptc.sandbox.docker.connection import connect
from openptc.sandbox.docker.container import Owner


@dataclass(frozen=True)
class GcReport:
    """What a collection did: removed strays, and containers kept because they may be in use."""

    removed: tuple[str, ...] = ()
    kept_live: tuple[str, ...] = ()
    kept_unknown: tuple[str, ...] = field(default=())  # owner on another host: cannot tell


def collect_strays(*, everything: bool = False, docker_host: str | None = None) -> GcReport:
    """Remove every sandbox container whose owner is gone (``everything``: every one at all)."""
    engine = connect(docker_host)
    removed: list[str] = []
    kept_live: list[str] = []
    kept_unknown: list[str] = []
    try:
        for container in engine.labelled():
            container_id = str(container.get("Id", ""))
            labels = container.get("Labels") or {}
            owner = Owner.from_labels(labels)
            running = owner.is_running() if owner is not None else False
            if everything or running is False:
                engine.remove(container_id)
                removed.append(container_id[:12])
            elif running:
                kept_live.append(container_id[:12])
            else:
                kept_unknown.append(container_id[:12])
    finally:
        engine.close()
    return GcReport(tuple(removed), tuple(kept_live), tuple(kept_unknown))


def gc_strays(*, everything: bool = False, docker_host: str | None = None) -> int:
    """Remove stray sandbox containers; how many were removed. SandboxError without an engine."""
    return len(collect_strays(everything=everything, docker_host=docker_host).removed)


def gc_command(
    *,
    everything: bool = False,
    docker_host: str | None = None,
    echo: Callable[[str], None] = print,
) -> int:
    """``ptc sandbox gc`` without the CLI framework: report in plain words; the exit status."""
    try:
        report = collect_strays(everything=everything, docker_host=docker_host)
    except SandboxError as exc:
        echo(f"error: {exc}")
        return 1
    echo(f"removed {len(report.removed)} stray sandbox container(s)")
    for container_id in report.removed:
        echo(f"  removed {container_id}")
    if report.kept_live:
        echo(f"kept {len(report.kept_live)} owned by running processes (--all removes them too)")
    if report.kept_unknown:
        echo(
            f"kept {len(report.kept_unknown)} made on another machine, whose owners cannot be "
            "checked from here (run gc there, or --all)"
        )
    return 0

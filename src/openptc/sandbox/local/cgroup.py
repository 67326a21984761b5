"""A cgroup per local sandbox: memory and process limits that hold for all its processes at once.

RLIMIT_AS and RLIMIT_NPROC count one process (or one uid) at a time: four processes under a
512 MB limit held 1.65 GB. A cgroup counts the whole sandbox, as Docker's does, and lists its
processes, so the host can find and stop whatever a program left running without asking the
runtime (which shares a process with the program and cannot be trusted to say).

Version 2 where memory and pids are delegated to this process's cgroup; version 1 where those
controllers are mounted apart and writable (as root on hosts that still use v1); neither: no
cgroup, and the sandbox's ``Isolation`` says so.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

MB = 1024 * 1024
PREFIX = "openptc-"
_counter = itertools.count(1)

# A shell that joins the cgroup and then becomes the sandbox: ``exec`` keeps its pid, so the
# sandbox's first process and every one it starts are counted from their first instruction.
JOIN_SCRIPT = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'


@dataclass(frozen=True)
class CgroupRoot:
    """Where sandbox cgroups are made: one parent directory per hierarchy (v1) or one (v2)."""

    version: Literal[1, 2]
    memory: Path
    pids: Path

    def describe(self) -> str:
        return f"cgroup v{self.version} (memory, pids)"

    @property
    def parents(self) -> tuple[Path, ...]:
        return (self.memory,) if self.memory == self.pids else (self.memory, self.pids)


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, file system type, options) of every cgroup mount."""
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) >= 4 and fields[2] in ("cgroup", "cgroup2"):
                found.append((fields[1], fields[2], set(fields[3].split(","))))
    return found


def _own_paths() -> dict[str, str]:
    """This process's cgroup path per v1 controller, and under "" its v2 path."""
    paths: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                paths[controller] = path
    return paths


def _writable_dir(mount: str, path: str) -> Path | None:
    """The directory of our own cgroup (or the hierarchy's root) if we may make children."""
    for candidate in (Path(mount) / path.lstrip("/"), Path(mount)):
        if candidate.is_dir() and os.access(candidate, os.W_OK):
            return candidate
    return None


def _v2_root(mounts: list[tuple[str, str, set[str]]], own: dict[str, str]) -> CgroupRoot | str:
    for mount, kind, _ in mounts:
        if kind != "cgroup2" or "" not in own:
            continue
        parent = _writable_dir(mount, own[""])
        if parent is None:
            return "cgroup v2 is not writable by this user (not delegated)"
        control = parent / "cgroup.subtree_control"
        enabled = set(control.read_text().split()) if control.exists() else set()
        missing = {"memory", "pids"} - enabled
        if missing:
            try:
                control.write_text(" ".join(f"+{c}" for c in sorted(missing)))
            except OSError as exc:
                return (
                    f"cgroup v2 does not delegate {', '.join(sorted(missing))} here "
                    f"({exc.strerror}); "
                    "run under a cgroup with them delegated (e.g. systemd Delegate=yes)"
                )
        return CgroupRoot(2, parent, parent)
    return "no cgroup v2 hierarchy"


def find_root() -> CgroupRoot | str:
    """The cgroup hierarchy sandboxes can be put in, or why there is none."""
    mounts, own = _mounts(), _own_paths()
    v1: dict[str, Path] = {}
    for mount, kind, options in mounts:
        for controller in ("memory", "pids"):
            if kind == "cgroup" and controller in options:
                parent = _writable_dir(mount, own.get(controller, "/"))
                if parent is not None:
                    v1[controller] = parent
    if "memory" in v1 and "pids" in v1:
        return CgroupRoot(1, v1["memory"], v1["pids"])
    found = _v2_root(mounts, own)
    if isinstance(found, CgroupRoot):
        return found
    missing = ", ".join(c for c in ("memory", "pids") if c not in v1)
    return f"no writable cgroup v1 controller ({missing}) and {found}"


class SandboxCgroup:
    """The cgroup of one sandbox: made with its limits, read while it runs, removed at its end."""

    def __init__(
        self, root: CgroupRoot, name: str, parents: tuple[Path, ...] | None = None
    ) -> None:
        """``parents``: where its directories are (all of the root's by default)."""
        self.root = root
        self.name = name
        self.dirs = tuple(parent / name for parent in (parents or root.parents))
        self.memory_dir = self.dirs[0] if parents else root.memory / name
        self.pids_dir = self.dirs[-1] if parents else root.pids / name

    @classmethod
    def create(cls, root: CgroupRoot, *, memory_mb: int, tasks: int) -> SandboxCgroup:
        """A fresh cgroup holding at most ``memory_mb`` (no swap on top) and ``tasks`` tasks."""
        cgroup = cls(root, f"{PREFIX}{os.getpid()}-{next(_counter)}")
        try:
            for directory in cgroup.dirs:
                directory.mkdir()
            limit = str(memory_mb * MB)
            if root.version == 1:
                with contextlib.suppress(OSError):  # charges made before joining move too
                    (cgroup.memory_dir / "memory.move_charge_at_immigrate").write_text("3")
                (cgroup.memory_dir / "memory.limit_in_bytes").write_text(limit)
                with contextlib.suppress(OSError):  # absent where swap is not accounted
                    (cgroup.memory_dir / "memory.memsw.limit_in_bytes").write_text(limit)
            else:
                (cgroup.memory_dir / "memory.max").write_text(limit)
                with contextlib.suppress(OSError):
                    (cgroup.memory_dir / "memory.swap.max").write_text("0")
            (cgroup.pids_dir / "pids.max").write_text(str(tasks))
        except OSError:
            cgroup.remove()
            raise
        return cgroup

    def join_argv(self) -> list[str]:
        """The command prefix that puts the sandbox's first process in this cgroup."""
        procs = [str(d / "cgroup.procs") for d in self.dirs]
        return ["/bin/sh", "-c", JOIN_SCRIPT, "openptc-join", *procs, "--"]

    def pids(self) -> set[int]:
        """The processes in the sandbox now (threads are counted by ``pids.max`` but not here)."""
        try:
            text = (self.pids_dir / "cgroup.procs").read_text()
        except OSError:
            return set()
        return {int(p) for p in text.split()}

    def oom_kills(self) -> int:
        """How many processes the kernel killed for the memory limit so far."""
        name = "memory.oom_control" if self.root.version == 1 else "memory.events"
        with contextlib.suppress(OSError, ValueError):
            for line in (self.memory_dir / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        return 0

    def kill(self, pids: set[int]) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def remove(self) -> bool:
        """Kill what is left and remove the directories; False if some are still busy."""
        self.kill(self.pids())
        removed = True
        for directory in self.dirs:
            try:
                directory.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                removed = False
        return removed


def remove_stale(root: CgroupRoot) -> int:
    """Remove cgroups of sandboxes whose host process is gone (it was killed): their processes
    are killed first. Returns how many were removed."""
    removed = 0
    for parent in root.parents:
        with contextlib.suppress(OSError):
            for entry in parent.iterdir():
                owner = entry.name.removeprefix(PREFIX).partition("-")[0]
                if not (entry.name.startswith(PREFIX) and owner.isdigit()):
                    continue
                if int(owner) == os.getpid() or Path(f"/proc/{owner}").exists():
                    continue
                if SandboxCgroup(root, entry.name, (parent,)).remove():
                    removed += 1
    return removed

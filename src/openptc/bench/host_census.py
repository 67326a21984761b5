"""What a benchmark leaves on the host: processes, descriptors, memory, temporary directories.

Read from ``/proc`` (Linux), so it needs no dependency. The machine may be shared with other
users running sandboxes of their own, so a process counts as left behind by *this* run only if it
descends from this process, or was seen among this run's descendants (same pid and start time),
or is a sandbox runtime in a session (``setsid``) that one of those processes led; other runtime
processes that appeared meanwhile are reported apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openptc.sandbox.bundle import MODULE

# A process "mentions the runtime" if its command line names the runtime module (the sandbox
# interpreter's ``-c`` boot code) or a runtime bundle directory.
RUNTIME_MARKERS = (MODULE, "openptc-runtime-")
TEMP_PREFIX = "openptc-"
_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Proc:
    """One process as ``/proc`` shows it."""

    pid: int
    ppid: int
    sid: int
    start: int  # clock ticks after boot: tells a reused pid from the process once seen
    rss_mb: float
    cpu_s: float  # user + system time of this process alone
    cmdline: str

    @property
    def mentions_runtime(self) -> bool:
        return any(marker in self.cmdline for marker in RUNTIME_MARKERS)

    def describe(self) -> dict[str, Any]:
        return {"pid": self.pid, "ppid": self.ppid, "cmdline": self.cmdline[:160]}


def _read_proc(pid: int) -> Proc | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # gone meanwhile, or not ours to read
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
    cmdline = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    return Proc(
        pid=pid,
        ppid=int(fields[1]),
        sid=int(fields[3]),
        start=int(fields[19]),
        rss_mb=int(fields[21]) * _PAGE_MB,
        cpu_s=(int(fields[11]) + int(fields[12])) / _TICKS,
        cmdline=cmdline,
    )


def processes() -> dict[int, Proc]:
    """Every process this user may read, by pid."""
    table: dict[int, Proc] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (proc := _read_proc(int(entry))) is not None:
            table[proc.pid] = proc
    return table


def descendants(root: int, table: dict[int, Proc] | None = None) -> list[Proc]:
    """Children of ``root``, their children, and so on (not ``root`` itself)."""
    table = processes() if table is None else table
    children: dict[int, list[Proc]] = {}
    for proc in table.values():
        children.setdefault(proc.ppid, []).append(proc)
    found: list[Proc] = []
    frontier = [root]
    while frontier:
        for child in children.get(frontier.pop(), []):
            found.append(child)
            frontier.append(child.pid)
    return found


def cpu_s(pid: int | None = None) -> float:
    """User + system CPU time of one process (this one by default), in seconds."""
    proc = _read_proc(pid or os.getpid())
    return proc.cpu_s if proc is not None else 0.0


def rss_mb(pid: int | None = None) -> float:
    """Resident memory of one process (this one by default), in MB."""
    for line in Path(f"/proc/{pid or 'self'}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def open_fds() -> int:
    """Open file descriptors of this process (the listing's own descriptor included)."""
    return len(os.listdir("/proc/self/fd"))


def temp_dirs() -> frozenset[str]:
    """``openptc-*`` entries in the temporary directory (``/tmp`` unless TMPDIR says otherwise)."""
    root = Path(tempfile.gettempdir())
    return frozenset(str(p) for p in root.glob(f"{TEMP_PREFIX}*"))


def _temp_dirs_of(proc: Proc) -> set[str]:
    """The ``openptc-*`` temporary directories a process names (a bundle) or works in."""
    pattern = re.escape(str(Path(tempfile.gettempdir()) / TEMP_PREFIX)) + r"[^\s/'\"]+"
    found = set(re.findall(pattern, proc.cmdline))
    with contextlib.suppress(OSError):
        found.update(re.findall(pattern, os.readlink(f"/proc/{proc.pid}/cwd")))
    return found


@dataclass(frozen=True)
class Snapshot:
    """This process's resources at one moment, and the machine's runtime processes."""

    fds: int
    rss_mb: float
    temp_dirs: frozenset[str]
    runtime_pids: frozenset[tuple[int, int]]  # (pid, start)

    @classmethod
    def take(cls) -> Snapshot:
        runtime = frozenset((p.pid, p.start) for p in processes().values() if p.mentions_runtime)
        return cls(open_fds(), rss_mb(), temp_dirs(), runtime)


@dataclass
class Tracker:
    """The processes this run started, noted while they run, to find any left after it."""

    seen: dict[int, int] = field(default_factory=dict)  # pid -> start
    sessions: set[int] = field(default_factory=set)
    temp_dirs: set[str] = field(default_factory=set)  # named by their command lines or cwd
    # Descendants from before the run (a test's fixtures, say) are not the run's to account for.
    preexisting: frozenset[tuple[int, int]] = frozenset()

    @classmethod
    def begin(cls) -> Tracker:
        return cls(preexisting=frozenset((p.pid, p.start) for p in descendants(os.getpid())))

    def note(self, root: int | None = None) -> int:
        """Note every descendant of ``root`` (this process by default); returns how many."""
        found = [
            p for p in descendants(root or os.getpid()) if (p.pid, p.start) not in self.preexisting
        ]
        for proc in found:
            self.seen[proc.pid] = proc.start
            self.temp_dirs.update(_temp_dirs_of(proc))
            if proc.sid == proc.pid:  # a session leader: strays keep its session id
                self.sessions.add(proc.sid)
        return len(found)

    def left(self, table: dict[int, Proc] | None = None) -> list[Proc]:
        """Processes of this run still alive (this process's new descendants always count)."""
        table = processes() if table is None else table
        left = {
            p.pid: p
            for p in descendants(os.getpid(), table)
            if (p.pid, p.start) not in self.preexisting
        }
        for proc in table.values():
            if self.seen.get(proc.pid) == proc.start or (
                proc.mentions_runtime and proc.sid in self.sessions
            ):
                left[proc.pid] = proc
        return sorted(left.values(), key=lambda p: p.pid)

    async def settle(self, timeout_s: float = 5.0) -> list[Proc]:
        """What is left once killed processes had ``timeout_s`` to be reaped."""
        deadline = time.monotonic() + timeout_s
        while (left := self.left()) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        return left


def leak_report(
    before: Snapshot, after: Snapshot, left: list[Proc], tracker: Tracker
) -> dict[str, Any]:
    """Before vs after, for the JSON results: what this run left, and what appeared elsewhere."""
    ours = {p.pid for p in left}
    others = [pid for pid, _ in after.runtime_pids - before.runtime_pids if pid not in ours]
    return {
        "processes_left": [p.describe() for p in left],
        "other_new_runtime_processes": len(others),
        "fds_before": before.fds,
        "fds_after": after.fds,
        "run_temp_dirs": len(tracker.temp_dirs),
        "run_temp_dirs_left": sorted(d for d in tracker.temp_dirs if os.path.exists(d)),
        "temp_dirs_before": len(before.temp_dirs),
        "temp_dirs_after": len(after.temp_dirs),
        "temp_dirs_new": sorted(after.temp_dirs - before.temp_dirs),
        "temp_dirs_gone": sorted(before.temp_dirs - after.temp_dirs),
    }

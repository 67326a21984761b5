"""The runtime, compiled once per sandbox pool and mounted read-only into every sandbox.

Importing a ready ``.pyc`` instead of compiling ``runtime.py`` from source in every interpreter
saves start-up time and about 1.2 MB of each idle session's memory (the compiler's arenas).
The bundle holds two modules under the names they are imported by inside the sandbox:
``ptc_runtime`` and ``ptc_program``, the part the runtime shares with the replay harness. The
boot code puts the bundle's directory first on ``sys.path``, where the runtime finds both.

A process removes its bundle when it closes its sandbox, but a SIGKILLed one cannot. So the
directory's name says whose it is (pid namespace, pid, and the process's start time, which a
reused pid does not share), and building a bundle first removes those whose owner is gone. A
bundle whose owner cannot be judged (another pid namespace, an older name) is left alone.
"""

from __future__ import annotations

import os
import py_compile
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

PREFIX = "openptc-runtime-"
MODULE = "ptc_runtime"
MOUNT_POINT = "/opt/openptc"
# Modules shipped under their own top-level names (the hyphen keeps the directory from being a
# package: see ptc_program.py there).
SHIPPED_MODULES = Path(__file__).with_name("shipped-modules")
# Each module of the bundle, by the name it is imported by inside the sandbox, and its source.
SOURCES = {
    MODULE: Path(__file__).with_name("runtime.py"),
    "ptc_program": SHIPPED_MODULES / "ptc_program.py",
}


@dataclass(frozen=True)
class RuntimeBundle:
    """A directory holding ``ptc_runtime.pyc`` and ``ptc_program.pyc`` for the sandbox."""

    directory: str

    def boot_code(self, *, mounted: bool) -> str:
        """The ``-c`` program that starts the runtime from the bundle."""
        where = MOUNT_POINT if mounted else self.directory
        return f"import sys; sys.path.insert(0, {where!r}); import {MODULE}; {MODULE}.main()"

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _start_time(pid: int) -> str | None:
    """When the process started (clock ticks since boot, from /proc), "" where there is no /proc
    to ask, None when there is no such live process (gone, or a zombie)."""
    if not os.path.exists("/proc/self/stat"):
        return ""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None
    except (OSError, IndexError):
        return "?"  # unreadable: it is there, so count it as alive
    return None if fields[0] in ("Z", "X") else fields[19]  # field 22, counted from 1


def _pid_namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "0"


def _owner_gone(name: str) -> bool:
    """Whether the process named in a bundle directory's name is certainly gone."""
    parts = name.removeprefix(PREFIX).split("-")
    if len(parts) < 4 or not all(p.isdigit() for p in parts[:3]):
        return False  # not a name this module makes (an older version's): cannot judge
    namespace, pid, started = parts[0], int(parts[1]), parts[2]
    if namespace != _pid_namespace():
        return False  # another pid namespace (a container sharing /tmp): its pids are not ours
    now = _start_time(pid)
    if now == "":  # no /proc: the pid alone says whether it lives
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        return False
    return now is None or (now != "?" and now != started)


def remove_stale_bundles(parent: str | None = None) -> list[str]:
    """Remove the bundle directories in ``parent`` (the temporary directory) whose owning
    process is gone; never one of a live process, nor another user's. Returns what went."""
    root = Path(parent or tempfile.gettempdir())
    removed = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return []
    for entry in entries:
        if not entry.name.startswith(PREFIX):
            continue
        try:
            info = entry.lstat()
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            continue
        if _owner_gone(entry.name):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(str(entry))
    return removed


def build_bundle(parent: str | None = None) -> RuntimeBundle:
    """Compile the bundle's modules with this interpreter (the one sandboxes run) into a fresh
    directory in ``parent`` (the temporary directory), after removing stale ones there."""
    remove_stale_bundles(parent)
    pid = os.getpid()
    owner = f"{_pid_namespace()}-{pid}-{_start_time(pid) or 0}-"
    directory = tempfile.mkdtemp(prefix=PREFIX + owner, dir=parent)
    os.chmod(directory, 0o755)  # the sandbox's unprivileged uid must read it
    for module, source in SOURCES.items():
        target = Path(directory) / f"{module}.pyc"
        py_compile.compile(
            str(source),
            cfile=str(target),
            dfile=f"<openptc {module.removeprefix('ptc_')}>",  # never a host path in tracebacks
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        os.chmod(target, 0o644)
    return RuntimeBundle(directory)

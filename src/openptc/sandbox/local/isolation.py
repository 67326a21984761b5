"""How a sandbox process is started: bubblewrap namespaces where they work, a bare process if not.

The decision is made once per ``LocalSandbox`` by actually starting a probe, and reported in plain
words (``Isolation``) on every execution and by ``ptc doctor`` — never silently downgraded.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from openptc.sandbox.base import Isolation, Limits
from openptc.sandbox.bundle import MOUNT_POINT, RuntimeBundle
from openptc.sandbox.local.cgroup import CgroupRoot, find_root, remove_stale

WORKDIR = "/workspace"
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
NAMESPACES = ("user", "pid", "net", "ipc", "uts", "cgroup", "mount")
# Sandboxes run under uids from a high range no real account uses: one uid per process so that
# the kernel's process limit (RLIMIT_NPROC, ignored for root) counts each sandbox on its own.
SANDBOX_UID_RANGE = (1_500_000_000, 1_600_000_000)

IsolationMode = Literal["auto", "bubblewrap", "process"]
SETSID_WARNING = "a process that calls setsid() escapes the kill at timeout"


@dataclass(frozen=True)
class Interpreter:
    """The real interpreter binary (never a shim) and the prefix its standard library lives in."""

    executable: str
    prefix: str

    @classmethod
    def current(cls) -> Interpreter:
        executable = os.path.realpath(sys.executable)
        return cls(executable=executable, prefix=os.path.realpath(sys.base_prefix))


def sandbox_env() -> dict[str, str]:
    """The whole environment of a sandbox: nothing inherited, so no host secret leaks in."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": WORKDIR,
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "PYTHONHASHSEED": "0",
    }


def pick_uid() -> int | None:
    """A fresh unprivileged uid when we are root (so limits apply); None otherwise."""
    if os.geteuid() != 0:
        return None
    return SANDBOX_UID_RANGE[0] + secrets.randbelow(SANDBOX_UID_RANGE[1] - SANDBOX_UID_RANGE[0])


def bwrap_argv(
    bwrap: str,
    interpreter: Interpreter,
    limits: Limits,
    *,
    privileged: bool,
    bundle: RuntimeBundle | None = None,
) -> list[str]:
    """bubblewrap arguments: a new root of read-only system dirs, tmpfs work dirs, no network.

    As root (``privileged``) bubblewrap needs no user namespace; the runtime then drops to a
    fresh uid itself, keeping only the two capabilities that takes. As another user, a user
    namespace makes the rest possible.
    """
    argv = [bwrap, "--die-with-parent", "--new-session"]
    if privileged:
        argv += [f"--unshare-{ns}" for ns in NAMESPACES if ns not in ("user", "mount")]
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        argv += ["--unshare-all"]
    argv += ["--tmpfs", "/"]
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    if needs_prefix_bind(interpreter):
        parents = Path(interpreter.prefix).parents
        for parent in reversed([p for p in parents if str(p) != "/"]):
            argv += ["--perms", "0755", "--dir", str(parent)]
        argv += ["--ro-bind", interpreter.prefix, interpreter.prefix]
    if bundle is not None:
        argv += ["--ro-bind", bundle.directory, MOUNT_POINT]
    size = str(limits.disk_mb * 1024 * 1024)
    argv += ["--proc", "/proc", "--dev", "/dev"]
    for path in ("/tmp", WORKDIR):
        argv += ["--perms", "1777", "--size", size, "--tmpfs", path]
    argv += ["--remount-ro", "/", "--chdir", WORKDIR, "--clearenv"]
    for key, value in sandbox_env().items():
        argv += ["--setenv", key, value]
    return argv


def needs_prefix_bind(interpreter: Interpreter) -> bool:
    return not any(
        interpreter.prefix == d or interpreter.prefix.startswith(d + "/") for d in SYSTEM_DIRS
    )


PROBE_CODE = """
import os, sys, json, resource
uid = json.loads(sys.argv[1])
if uid is not None:
    os.setgroups([]); os.setresgid(uid, uid, uid); os.setresuid(uid, uid, uid)
import socket, statistics
open("probe", "w").write("ok")
"""


def probe_bwrap(bwrap: str, interpreter: Interpreter, *, privileged: bool) -> str | None:
    """Start a throwaway sandbox the way real ones start; None when it works, else why not."""
    uid = pick_uid() if privileged else None
    argv = bwrap_argv(bwrap, interpreter, Limits(), privileged=privileged)
    argv += [interpreter.executable, "-I", "-S", "-c", PROBE_CODE, json.dumps(uid)]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=20, env=sandbox_env())
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    if done.returncode != 0:
        return done.stderr.decode(errors="replace").strip() or f"exit code {done.returncode}"
    return None


@dataclass(frozen=True)
class IsolationChoice:
    """The outcome of probing: which launcher to use, and whether the runtime drops to a uid."""

    isolation: Isolation
    bwrap: str | None
    privileged: bool
    cgroup: CgroupRoot | None = None


def with_cgroup(choice: IsolationChoice) -> IsolationChoice:
    """Add a cgroup per sandbox where the machine allows one; say so where it does not."""
    found = find_root()
    isolation = choice.isolation
    if isinstance(found, CgroupRoot):
        remove_stale(found)  # left by a host process that was killed
        # The host kills by cgroup, so a process that left the group of processes dies too.
        warnings = tuple(w for w in isolation.warnings if w != SETSID_WARNING)
        isolation = dataclasses.replace(isolation, cgroup=found.describe(), warnings=warnings)
        return dataclasses.replace(choice, isolation=isolation, cgroup=found)
    warning = f"memory and process limits hold per process, not for the sandbox as a whole: {found}"
    isolation = dataclasses.replace(isolation, warnings=(*isolation.warnings, warning))
    return dataclasses.replace(choice, isolation=isolation)


def choose_isolation(mode: IsolationMode, interpreter: Interpreter) -> IsolationChoice:
    """Pick the strongest isolation that works here, and say plainly what is missing."""
    warnings: list[str] = []
    bwrap = shutil.which("bwrap")
    if mode != "process":
        if bwrap is None:
            warnings.append("bubblewrap (bwrap) is not installed: no namespaces")
        else:
            privileged = os.geteuid() == 0
            failure = probe_bwrap(bwrap, interpreter, privileged=privileged)
            if failure is None:
                namespaces = tuple(ns for ns in NAMESPACES if ns != "user" or not privileged)
                notes = (
                    ()
                    if privileged
                    else (
                        "the process limit is not applied: it would count every process "
                        "of this user",
                    )
                )
                isolation = Isolation(
                    "bubblewrap",
                    namespaces,
                    dedicated_uid=privileged,
                    read_only_root=True,
                    warnings=notes,
                )
                return IsolationChoice(isolation, bwrap, privileged)
            warnings.append(f"bubblewrap does not work here: {failure.splitlines()[-1]}")
        if mode == "bubblewrap":
            raise RuntimeError("bubblewrap isolation was required but " + "; ".join(warnings))
    warnings.append("network, file system and other processes are reachable from the program")
    warnings.append(SETSID_WARNING)
    if os.geteuid() == 0:
        warnings.append("runs as root: process limit not enforced")
    return IsolationChoice(Isolation("process", warnings=tuple(warnings)), None, privileged=False)

"""``ptc doctor``: what isolation this machine really gives a sandbox, checked live.

The isolation level is never assumed: a sandbox is started and asked to do what it must not
(reach the network, write outside its working directory, see the host's environment), and to
report from inside which protections it runs under (namespaces, a read-only root, its own uid,
no capabilities, no new privileges, rlimits, a seccomp filter, cgroup limits). Protections that
are missing are listed as such, never left out; see SECURITY.md for what each one guarantees.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from typing import Any, Literal

from openptc.sandbox.base import Isolation, Limits
from openptc.sandbox.local import LocalSandbox

SECRET_NAME = "OPENPTC_DOCTOR_CANARY"
MB = 1024 * 1024

CHECKS = {
    "network blocked": """
import socket
s = socket.socket()
s.settimeout(1)
try:
    s.connect(("1.1.1.1", 53))
    print("FAIL connected")
except OSError:
    print("ok")
""",
    "DNS blocked": """
import socket
try:
    socket.getaddrinfo("pypi.org", 443)
    print("FAIL resolved")
except OSError:
    print("ok")
""",
    "root file system read-only": """
try:
    open("/usr/openptc-doctor", "w")
    print("FAIL wrote /usr")
except OSError:
    print("ok")
""",
    "working directory writable": """
open("doctor.txt", "w").write("x")
print("ok")
""",
    "host environment absent": f"""
import os
print("FAIL" if "{SECRET_NAME}" in os.environ else "ok")
""",
    "runs as non-root": """
import os
print("ok" if os.getuid() != 0 else "FAIL uid 0")
""",
}

# What the sandbox sees of its own confinement, from inside: one line of JSON.
PROTECTIONS_PROBE = """
import json, resource
status = {}
for line in open("/proc/self/status").read().splitlines():
    key, _, value = line.partition(":")
    status[key] = value.strip()
limits = {}
for name in ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_NPROC"):
    limits[name] = resource.getrlimit(getattr(resource, name))[1]
print(json.dumps({"seccomp": status.get("Seccomp", ""),
                  "no_new_privs": status.get("NoNewPrivs", ""),
                  "cap_eff": status.get("CapEff", ""),
                  "limits": limits}))
"""

Status = Literal["active", "missing", "not available"]


@dataclass(frozen=True)
class Check:
    """One line of the report: a live check (``kind="check"``) or a protection's status.

    A protection passes when it is active; ``DoctorReport.strong`` judges live checks only, so
    a protection this backend does not have yet (a seccomp filter, cgroup limits) is reported
    without turning a working sandbox into a failing one.
    """

    name: str
    passed: bool
    detail: str
    kind: Literal["check", "protection"] = "check"


@dataclass(frozen=True)
class Protection:
    """One protection a sandbox runs under on this machine, and whether it is in force."""

    name: str
    status: Status
    detail: str

    def as_check(self) -> Check:
        text = self.detail if self.status == "active" else f"{self.status}: {self.detail}"
        return Check(f"protection: {self.name}", self.status == "active", text, "protection")


@dataclass(frozen=True)
class DoctorReport:
    isolation: Isolation
    bwrap_path: str | None
    checks: tuple[Check, ...]  # the live checks, then one line per protection

    @property
    def strong(self) -> bool:
        live = [c for c in self.checks if c.kind == "check"]
        return self.isolation.level == "bubblewrap" and all(c.passed for c in live)

    @property
    def protections(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.kind == "protection")


def cgroup_status(isolation: Isolation) -> Protection:
    """Whether the whole sandbox (all its processes) is held to memory and process limits:
    ``Isolation.cgroup`` says how a backend holds them (e.g. "cgroup v1 (memory, pids)")."""
    if not isolation.cgroup:
        return Protection(
            "cgroup limits",
            "not available",
            "no cgroup per sandbox: memory and process limits hold per process (rlimits), "
            "not for the sandbox as a whole",
        )
    return Protection("cgroup limits", "active", isolation.cgroup)


def protections(isolation: Isolation, limits: Limits, probe: dict[str, Any]) -> list[Protection]:
    """The protections a sandbox has here, from its ``Isolation`` and what it saw inside."""
    found = [
        Protection(
            "namespaces",
            "active" if isolation.namespaces else "missing",
            ", ".join(isolation.namespaces) or "none: the program shares the host's",
        ),
        Protection(
            "read-only root",
            "active" if isolation.read_only_root else "missing",
            "system directories mounted read-only, writable tmpfs only in /tmp and the "
            "working directory"
            if isolation.read_only_root
            else "the program sees the host's file system with the host user's rights",
        ),
        Protection(
            "dedicated uid",
            "active" if isolation.dedicated_uid else "missing",
            "a fresh unprivileged uid per sandbox"
            if isolation.dedicated_uid
            else "runs as the host's user",
        ),
    ]
    caps = probe.get("cap_eff", "")
    found.append(
        Protection(
            "no capabilities",
            "active" if caps and int(caps, 16) == 0 else "missing",
            f"effective capabilities {caps or 'unknown'}",
        )
    )
    found.append(
        Protection(
            "no new privileges",
            "active" if probe.get("no_new_privs") == "1" else "missing",
            "set-uid programs cannot raise privileges"
            if probe.get("no_new_privs") == "1"
            else "the no_new_privs flag is not set",
        )
    )
    found.append(_rlimits(limits, probe.get("limits") or {}))
    seccomp = probe.get("seccomp", "")
    found.append(
        Protection(
            "seccomp filter",
            "active" if seccomp not in ("", "0") else "missing",
            f"mode {seccomp}"
            if seccomp not in ("", "0")
            else "none: system calls are limited by namespaces, capabilities and rlimits only",
        )
    )
    found.append(cgroup_status(isolation))
    return found


def _rlimits(limits: Limits, seen: dict[str, Any]) -> Protection:
    wanted = {
        "RLIMIT_AS": ("address space", limits.memory_mb * MB, "MB", MB),
        "RLIMIT_CPU": ("CPU", limits.cpu_s, "s", 1),
        "RLIMIT_FSIZE": ("file size", limits.file_size_mb * MB, "MB", MB),
        "RLIMIT_NOFILE": ("open files", limits.open_files, "", 1),
        "RLIMIT_NPROC": ("processes", limits.processes, "", 1),
    }
    active, missing = [], []
    for key, (label, value, unit, scale) in wanted.items():
        hard = seen.get(key)
        if isinstance(hard, int) and 0 <= hard <= value + 2:  # CPU's hard limit has 2 s of grace
            active.append(f"{label} {hard // scale}{unit}".rstrip())
        else:
            missing.append(label)
    detail = ", ".join(active) or "none"
    if missing:
        detail += f" (not set: {', '.join(missing)})"
    return Protection("rlimits", "active" if active else "missing", detail)


async def diagnose() -> DoctorReport:
    """Start a real sandbox, run each check inside it, and ask it what confines it."""
    os.environ[SECRET_NAME] = "1"
    try:
        async with LocalSandbox(pool_size=0) as sandbox:
            session = await sandbox.open_session()
            checks = []
            for name, code in CHECKS.items():
                result = await session.execute(code)
                text = result.stdout.strip() or result.to_model_text()
                checks.append(Check(name, text == "ok", text))
            probe_run = await session.execute(PROTECTIONS_PROBE)
            try:
                probe = json.loads(probe_run.stdout)
            except ValueError:
                probe = {}
            isolation = sandbox.isolation
            found = protections(isolation, sandbox.limits, probe)
    finally:
        del os.environ[SECRET_NAME]
    checks += [p.as_check() for p in found]
    return DoctorReport(isolation, shutil.which("bwrap"), tuple(checks))

"""``ptc doctor``: what isolation this machine really gives a sandbox, checked live.

The isolation level is never assumed: a sandbox is started and asked to do what it must not
(reach the network, write outside its working directory, see the host's environment).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from openptc.sandbox.base import Isolation
from openptc.sandbox.local import LocalSandbox

SECRET_NAME = "OPENPTC_DOCTOR_CANARY"

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


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class DoctorReport:
    isolation: Isolation
    bwrap_path: str | None
    checks: tuple[Check, ...]

    @property
    def strong(self) -> bool:
        return self.isolation.level == "bubblewrap" and all(c.passed for c in self.checks)


async def diagnose() -> DoctorReport:
    """Start a real sandbox and run each check inside it."""
    os.environ[SECRET_NAME] = "1"
    try:
        async with LocalSandbox(pool_size=0) as sandbox:
            session = await sandbox.open_session()
            checks = []
            for name, code in CHECKS.items():
                result = await session.execute(code)
                text = result.stdout.strip() or result.to_model_text()
                checks.append(Check(name, text == "ok", text))
            isolation = sandbox.isolation
    finally:
        del os.environ[SECRET_NAME]
    return DoctorReport(isolation, shutil.which("bwrap"), tuple(checks))

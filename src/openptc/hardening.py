"""Process hardening for the servers, whose sandboxes may run as the same user.

Where namespaces are unavailable (most pods, Fargate), programs run as the server's own user;
without this they could read the server's environment — its tokens — from
``/proc/<pid>/environ``. A process that is not dumpable has that file (and ptrace) closed to
processes of the same user.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

PR_SET_DUMPABLE = 4


def make_undumpable() -> bool:
    """Mark this process not dumpable (Linux); False where that is not possible."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return int(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False

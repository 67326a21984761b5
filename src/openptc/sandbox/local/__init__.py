"""The local backend: one sandboxed interpreter process per session, on this machine.

``sandbox`` is the backend, ``worker`` one session's process and its bridge, ``isolation``
how that process is confined (bubblewrap namespaces where the machine allows, resource limits,
a scrubbed environment) and the report of what was achieved.
"""

from openptc.sandbox.local.sandbox import RESTART_NOTICE, LocalSandbox, LocalSession

__all__ = ["RESTART_NOTICE", "LocalSandbox", "LocalSession"]

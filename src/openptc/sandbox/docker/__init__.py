"""The hardened Docker backend: a container per session, the bridge over its attach stream.

``sandbox`` is the backend, ``container`` what a container is made of, ``engine`` the engine
through the ``docker`` SDK (reached by ``connection``), ``worker`` one session's container,
``stream`` the attach stream's framing and ``gc`` the removal of strays. Importing this package
does not need the SDK; starting a sandbox does, and says so.
"""

from openptc.sandbox.docker.connection import connect
from openptc.sandbox.docker.container import default_image
from openptc.sandbox.docker.gc import GcReport, collect_strays, gc_command, gc_strays
from openptc.sandbox.docker.sandbox import DockerSandbox, DockerSession

__all__ = [
    "DockerSandbox",
    "DockerSession",
    "GcReport",
    "collect_strays",
    "connect",
    "default_image",
    "gc_command",
    "gc_strays",
]

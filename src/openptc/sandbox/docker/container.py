"""What a sandbox container is: its image, its command, its lock-down settings and its labels.

Pure data, no engine: the settings are the security boundary of the Docker backend, so they
live in one place that a reader (and a test) can check line by line against the design — no
network, read-only root, tmpfs work directories, no capabilities, no-new-privileges, pids,
memory and CPU limits, a non-root user, no mounts from the host.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from openptc.sandbox import protocol
from openptc.sandbox.base import Isolation, Limits
from openptc.sandbox.bundle import SOURCES
from openptc.sandbox.local.isolation import WORKDIR, sandbox_env

IMAGE_REPOSITORY = "openptc-sandbox"
USER = "65534:65534"  # nobody:nogroup; a number, so the image needs no passwd entry
RUNTIME_DIR = "/opt/openptc"  # where deploy/sandbox.Dockerfile puts the bundle's .pyc files
NAMESPACES = ("pid", "net", "ipc", "uts", "mount")

SANDBOX_LABEL = "openptc.sandbox"
OWNER_LABEL = "openptc.owner"  # host/boot id/pid/start time of the process that made it
OWNER_HOST_LABEL = "openptc.owner.host"
OWNER_PID_LABEL = "openptc.owner.pid"

# Started as ``python3 -I -S -c BOOT CONFIG``. The runtime's bridge moves to private copies of
# stdin and stdout (not inherited by children: os.dup makes non-inheritable descriptors); fd 0
# becomes /dev/null and fd 1 the stderr stream, so neither a subprocess nor a write to fd 1 can
# speak on the bridge, and whatever they print arrives as stray output.
BOOT = (
    "import json, os, sys\n"
    "config = json.loads(sys.argv[1])\n"
    "config['in_fd'], config['out_fd'] = os.dup(0), os.dup(1)\n"
    "os.dup2(os.open('/dev/null', os.O_RDONLY), 0)\n"
    "os.dup2(2, 1)\n"
    "sys.argv[1] = json.dumps(config)\n"
    f"sys.path.insert(0, {RUNTIME_DIR!r})\n"
    "import ptc_runtime\n"
    "ptc_runtime.main()\n"
)


@cache
def runtime_digest() -> str:
    """The digest of what the image ships (the image carries its first 12 digits in its tag).

    sha256 of the ``sha256sum`` listing of the bundle's sources, by file name, so that
    scripts/sandbox-image.sh computes the same figure with coreutils alone.
    """
    listing = "".join(
        f"{hashlib.sha256(source.read_bytes()).hexdigest()}  {source.name}\n"
        for source in SOURCES.values()
    )
    return hashlib.sha256(listing.encode()).hexdigest()


def default_image() -> str:
    """The image scripts/sandbox-image.sh builds from this very runtime."""
    return f"{IMAGE_REPOSITORY}:{runtime_digest()[:12]}"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_start(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot), "" when unknown or gone.

    With the boot id, this tells a live owner from a new process that reuses its pid.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


@dataclass(frozen=True)
class Owner:
    """The process that created a container: strays are containers whose owner is gone."""

    host: str
    boot_id: str
    pid: int
    started: str

    @classmethod
    def current(cls) -> Owner:
        pid = os.getpid()
        return cls(socket.gethostname(), _boot_id(), pid, process_start(pid))

    def labels(self) -> dict[str, str]:
        return {
            SANDBOX_LABEL: "1",
            OWNER_LABEL: f"{self.host}/{self.boot_id}/{self.pid}/{self.started}",
            OWNER_HOST_LABEL: self.host,
            OWNER_PID_LABEL: str(self.pid),
        }

    @classmethod
    def from_labels(cls, labels: dict[str, str]) -> Owner | None:
        parts = labels.get(OWNER_LABEL, "").rsplit("/", 3)
        if len(parts) != 4 or not parts[2].isdigit():
            return None
        return cls(parts[0], parts[1], int(parts[2]), parts[3])

    def is_running(self) -> bool | None:
        """Whether the owner still runs; None when that cannot be told from here."""
        here = Owner.current()
        if self.host != here.host or self.boot_id != here.boot_id:
            return None  # another machine (or an earlier boot, where every owner is gone)
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # it exists, under another user
        return not self.started or process_start(self.pid) == self.started


@dataclass(frozen=True)
class ContainerSpec:
    """Everything the engine is told when a sandbox container is created."""

    image: str
    name: str
    entrypoint: list[str]
    command: list[str]
    user: str
    environment: dict[str, str]
    working_dir: str
    labels: dict[str, str]
    host_config: dict[str, Any]


def tmpfs_options(limits: Limits, user: str) -> str:
    """Writable scratch space, in memory, size-limited; nothing written there can be executed.

    Owned by the sandbox's user when it is given by number: the engine copies the image
    directory's mode onto the tmpfs (755 for a WORKDIR made by root), which ``mode`` cannot undo.
    """
    options = f"rw,noexec,nosuid,nodev,size={limits.disk_mb}m,mode=1777"
    uid, _, gid = user.partition(":")
    if uid.isdigit() and (gid or uid).isdigit():
        options += f",uid={uid},gid={gid or uid}"
    return options


def container_spec(
    image: str, limits: Limits, *, cpus: float, owner: Owner, user: str = USER
) -> ContainerSpec:
    """The container of one sandbox session, locked down.

    The runtime still applies its own rlimits (address space, CPU seconds, file size, open
    files): a too-large allocation then fails as a catchable MemoryError long before the
    cgroup's limit kills the container. The process count is left to the cgroup (pids limit):
    RLIMIT_NPROC would count every process of the uid across all containers on the machine.
    """
    config = {
        "in_fd": 0,
        "out_fd": 1,
        "limits": protocol.runtime_limits(limits, count_processes=False),
        "uid": None,
        "pid_namespace": True,  # the runtime is PID 1: it reaps and stops what programs leave
    }
    memory = f"{limits.memory_mb}m"
    host_config: dict[str, Any] = {
        "network_mode": "none",
        "read_only": True,
        "tmpfs": {"/tmp": tmpfs_options(limits, user), WORKDIR: tmpfs_options(limits, user)},
        "shm_size": f"{limits.disk_mb}m",
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "pids_limit": limits.processes,
        "mem_limit": memory,
        "memswap_limit": memory,  # the same figure: no swap on top
        "nano_cpus": int(cpus * 1e9),
        "privileged": False,
        # The bridge is the container's stdout: the engine must not copy it to a log on disk.
        "log_config": {"type": "none", "config": {}},
    }
    return ContainerSpec(
        image=image,
        name=f"openptc-{secrets.token_hex(6)}",
        entrypoint=["python3", "-I", "-S", "-c", BOOT],
        command=[json.dumps(config, separators=(",", ":"))],
        user=user,
        environment=sandbox_env(),
        working_dir=WORKDIR,
        labels={**owner.labels(), "openptc.image": image},
        host_config=host_config,
    )


def docker_isolation(security_options: list[str]) -> Isolation:
    """How isolated containers on this engine are; what is missing is said, not hidden."""
    warnings = []
    if not any(option.startswith("name=seccomp") for option in security_options):
        warnings.append("the engine runs containers without a seccomp profile")
    if any("profile=unconfined" in option for option in security_options):
        warnings.append("the engine's seccomp profile is unconfined")
    return Isolation(
        level="docker",
        namespaces=NAMESPACES,
        dedicated_uid=False,
        read_only_root=True,
        cgroup="the container's cgroup (memory, pids)",
        warnings=tuple(warnings),
    )

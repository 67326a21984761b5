"""The host's side of the hostile suite: what a program must never reach, and how to tell.

- ``Canaries``: secrets planted in the test process's environment, in a file under the test's
  temporary directory and in a file in the real home directory, before any sandbox starts.
- ``Listeners``: a TCP and a UDP listener on 127.0.0.1 and an abstract unix socket, each
  counting what reaches it (the suite never sends anything anywhere else).
- ``HostTools``: the tools programs may call (and one they may not), recording what they saw.
- ``descendants``: the processes below the test process, read from /proc (no psutil).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from openptc.tools import Tool, Toolbox, tool

CANARY_PREFIX = "hostile-canary-"
ENV_NAME = "OPENPTC_HOSTILE_CANARY"
# A real secret's usual name too: a program looking for API keys looks for these.
ENV_NAMES = (ENV_NAME, "ANTHROPIC_API_KEY", "AWS_SECRET_ACCESS_KEY")


def canary() -> str:
    return CANARY_PREFIX + secrets.token_hex(16)


@dataclass
class Canaries:
    """Secrets the host holds; none may ever appear in anything a sandbox returns."""

    env: dict[str, str]
    file: Path
    file_value: str
    home_file: Path
    home_value: str

    @classmethod
    def plant(cls, directory: Path) -> Canaries:
        """Put the canaries in place (the caller restores the environment)."""
        env = {name: canary() for name in ENV_NAMES}
        file = directory / "host-secret.txt"
        home_file = Path.home() / f".openptc-hostile-{secrets.token_hex(6)}"
        planted = cls(env, file, canary(), home_file, canary())
        file.write_text(planted.file_value)
        file.chmod(0o600)
        home_file.write_text(planted.home_value)
        home_file.chmod(0o600)
        return planted

    @property
    def values(self) -> tuple[str, ...]:
        return (*self.env.values(), self.file_value, self.home_value)

    def intact(self) -> bool:
        return (
            self.file.read_text() == self.file_value
            and self.home_file.read_text() == self.home_value
        )

    def remove(self) -> None:
        self.file.unlink(missing_ok=True)
        self.home_file.unlink(missing_ok=True)


class _Connections(asyncio.Protocol):
    def __init__(self, hits: list[str], what: str) -> None:
        self.hits = hits
        self.what = what

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.hits.append(f"{self.what} connection")
        transport.close()


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, hits: list[str]) -> None:
        self.hits = hits
        self.closed = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.hits.append(f"udp datagram {data[:40]!r}")


@dataclass
class Listeners:
    """Listeners of the host on 127.0.0.1 (and an abstract unix socket) that count every hit."""

    hits: list[str] = field(default_factory=list)
    port: int = 0
    udp_port: int = 0
    abstract: str = field(default_factory=lambda: f"openptc-hostile-{secrets.token_hex(6)}")
    _closers: list[Any] = field(default_factory=list)
    _udp_closed: asyncio.Future[None] | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        tcp = await loop.create_server(lambda: _Connections(self.hits, "tcp"), "127.0.0.1", 0)
        self.port = tcp.sockets[0].getsockname()[1]
        udp, datagrams = await loop.create_datagram_endpoint(
            lambda: _Datagrams(self.hits), local_addr=("127.0.0.1", 0)
        )
        self._udp_closed = datagrams.closed
        self.udp_port = udp.get_extra_info("sockname")[1]
        unix = await loop.create_unix_server(
            lambda: _Connections(self.hits, "unix"), "\0" + self.abstract
        )
        self._closers = [tcp, udp, unix]

    async def close(self) -> None:
        for closer in self._closers:
            closer.close()
        for server in self._closers:
            if isinstance(server, asyncio.AbstractServer):
                await server.wait_closed()
        if self._udp_closed is not None:
            await self._udp_closed


class HostTools:
    """The tools of the suite; ``for_code`` is what programs get (``secret`` is direct-only)."""

    def __init__(self, secret_value: str) -> None:
        self.secret_value = secret_value
        self.in_flight = 0
        self.max_in_flight = 0
        self.secret_calls = 0
        self.hang_cancelled = 0
        self.first_cheap_call = asyncio.Event()
        self.all = Toolbox(self._tools())
        self.for_code = self.all.for_caller("code")

    def reset(self) -> None:
        self.in_flight = self.max_in_flight = self.secret_calls = self.hang_cancelled = 0
        self.first_cheap_call = asyncio.Event()

    def _tools(self) -> list[Tool[..., Any]]:
        host = self

        @tool
        async def echo(value: str) -> str:
            """Return the value."""
            return value

        @tool
        async def add(a: int, b: int) -> int:
            """Add two integers."""
            return a + b

        @tool
        async def note(text: Annotated[str, Field(max_length=10_000)]) -> int:
            """Keep a short note; returns its length."""
            return len(text)

        @tool
        async def cheap(n: int) -> int:
            """A call that costs nothing (while counting how many run at once)."""
            host.in_flight += 1
            host.max_in_flight = max(host.max_in_flight, host.in_flight)
            host.first_cheap_call.set()
            try:
                await asyncio.sleep(0)
                return n
            finally:
                host.in_flight -= 1

        @tool
        async def hang() -> None:
            """Never answers."""
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                host.hang_cancelled += 1
                raise

        @tool(callers="direct")
        async def secret() -> str:
            """For the model only, never for a program: returns a host secret."""
            host.secret_calls += 1
            return host.secret_value

        return [echo, add, note, cheap, hang, secret]


@dataclass(frozen=True)
class Proc:
    pid: int
    start: str  # clock ticks since boot: with the pid, names one process for good
    name: str = field(compare=False)  # changes at exec
    state: str = field(compare=False)  # changes while the process lives

    def __str__(self) -> str:
        return f"process {self.pid} ({self.name}, {self.state})"


def _stat(pid: str) -> tuple[int, Proc] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = text[text.find("(") + 1 : text.rfind(")")]
    fields = text[text.rfind(")") + 2 :].split()
    return int(fields[1]), Proc(int(pid), fields[19], name, fields[0])


def descendants(root: int | None = None) -> set[Proc]:
    """Every process below ``root`` (default: this process), zombies included."""
    root = os.getpid() if root is None else root
    children: dict[int, list[Proc]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (found := _stat(entry)) is not None:
            children.setdefault(found[0], []).append(found[1])
    below: set[Proc] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in below:
                below.add(child)
                todo.append(child.pid)
    return below


def open_descriptors() -> dict[int, str]:
    """This process's descriptors and what each points to."""
    found = {}
    for entry in os.listdir("/proc/self/fd"):
        try:
            found[int(entry)] = os.readlink(f"/proc/self/fd/{entry}")
        except OSError:
            continue  # the descriptor listdir itself used
    return found

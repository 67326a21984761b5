"""The shape of a hostile case: a program, where it runs, and the outcome it must get.

A case's program is a ``string.Template``: ``$name`` placeholders are filled with what the host
set up for the run (see ``Context``), so a program can aim at the host's real listener, canary
file or process id without the table knowing them in advance. Every case, whatever it expects
of its own result, is also checked for harm to the host by the arena (``arena.py``): canaries
absent from every text, the listeners never reached, no file written outside, the witness
session still working, nothing left behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from string import Template
from typing import Literal

from openptc.sandbox.base import Execution, Limits

Category = Literal[
    "secrets",
    "network",
    "filesystem",
    "bombs",
    "output",
    "signals",
    "ctypes",
    "introspection",
    "imports",
    "bridge",
    "tools",
    "exit",
    "deadline",
]
# "ok" or the kind of the execution's error.
Outcome = Literal["ok", "syntax", "exception", "timeout", "memory", "cpu", "crashed", "bridge"]
# shared: one session for all harmless cases; fresh: a new session of the shared sandbox;
# own: a sandbox of its own (different limits), closed after the case.
Placement = Literal["shared", "fresh", "own"]

OK: frozenset[Outcome] = frozenset({"ok"})
BROKEN_BRIDGE: frozenset[Outcome] = frozenset({"bridge", "crashed"})
ANY_END: frozenset[Outcome] = frozenset(
    {"ok", "exception", "timeout", "memory", "cpu", "crashed", "bridge"}
)


@dataclass(frozen=True)
class Context:
    """What the host prepared, as the programs may name it (``$port`` and so on)."""

    env_name: str  # name of the canary variable in the host's environment (its value is secret)
    canary_file: str  # a host file under the test's temporary directory, holding a canary
    home_canary: str  # a host file in the real home directory, holding another canary
    home_name: str  # that file's base name: the sandbox must not even see that it exists
    tmp_root: str  # the test's temporary directory on the host
    port: int  # TCP listener of the host on 127.0.0.1
    udp_port: int  # UDP listener of the host on 127.0.0.1
    abstract: str  # name of the host's abstract unix socket (without the leading NUL)
    host_pid: int  # pid of the test process
    escape: str  # file name a program tries to create outside its sandbox

    def fill(self, program: str) -> str:
        return Template(program).substitute(
            env_name=self.env_name,
            canary_file=self.canary_file,
            home_canary=self.home_canary,
            home_name=self.home_name,
            tmp_root=self.tmp_root,
            port=self.port,
            udp_port=self.udp_port,
            abstract=self.abstract,
            host_pid=self.host_pid,
            escape=self.escape,
        )


@dataclass(frozen=True)
class Expect:
    """The outcome one execution must get."""

    outcomes: frozenset[Outcome] = OK
    stdout: str | None = None  # the exact stdout, when given
    contains: tuple[str, ...] = ()  # each in stdout
    lacks: tuple[str, ...] = ()  # none in stdout, stderr or the error text (filled in too)
    message: tuple[str, ...] = ()  # each in the error text (only when it failed)
    message_lacks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Followup:
    """A second program, in the same session right after the case: the session's state."""

    program: str
    expect: Expect


@dataclass(frozen=True)
class Observed:
    """What a check sees besides the execution: the host tools' record and the limits."""

    limits: Limits
    max_in_flight: int
    secret_calls: int
    hang_cancelled: int
    witness_finished_first: bool | None


Check = Callable[[Execution, Observed], None]


@dataclass(frozen=True)
class Case:
    """One hostile program and the outcome it must get (the host's safety is checked always)."""

    name: str
    category: Category
    program: str
    expect: Expect
    placement: Placement = "shared"
    limits: Limits | None = None  # with "own": the limits of its own sandbox
    timeout_s: float | None = None  # a lower wall clock for this execution
    followup: Followup | None = None
    check: Check | None = None  # what the table cannot say declaratively
    witness_during: bool = False  # the witness makes a call while this case still runs
    # Where the backends may differ in what they report (never in what they let through).
    docker: Expect | None = None
    notes: str = field(default="", compare=False)

    def expect_for(self, backend: str) -> Expect:
        return self.docker if backend == "docker" and self.docker is not None else self.expect

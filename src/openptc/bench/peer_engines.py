"""The engines `ptc bench peers` sets openptc against, each behind one small protocol.

An adapter starts its engine, opens sessions, runs programs that call ``echo`` and ``sleep`` the
way that engine calls host functions, and says in words what isolation it gives. A program the
engine refuses raises ``ProgramFailed`` with the engine's own reason: recorded, never guessed.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import functools
import importlib.metadata
import inspect
import io
import os
import platform
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Literal, Protocol

from openptc.bench.sandbox_bench import EchoTools
from openptc.sandbox.base import Sandbox, Session
from openptc.sandbox.local import LocalSandbox, LocalSession
from openptc.sandbox.local.isolation import Interpreter

CallStyle = Literal["await", "call"]
Workload = Literal[
    "cold_start", "warm_execution", "sequential_tool_calls", "fan_out", "cpu_loop", "idle_memory"
]
# smolagents allows only a list of modules; these are the ones the probes import, as a user
# would add them through CodeAgent(additional_authorized_imports=...).
SMOLAGENTS_IMPORTS = ["asyncio", "dataclasses", "json", "re"]


class ProgramFailed(Exception):
    """The engine refused or failed the program; the message is its reason, on one line."""


class PeerSession(Protocol):
    """A live interpreter of one engine (state persists between runs). ``pid`` is the process
    holding it alone, None in the host process; ``run`` returns what the program printed."""

    @property
    def pid(self) -> int | None: ...

    async def run(self, code: str) -> str: ...

    async def close(self) -> None: ...


class Engine:
    """One engine: its name, version, isolation in words, and how programs call tools.

    ``gaps`` are workloads an engine cannot run by design (said in words, never attempted);
    ``in_process`` engines keep sessions in the host process, so they are weighed in a child.
    ``isolation`` may be replaced by what ``start`` finds out.
    """

    name: str = ""
    isolation: str = ""
    distribution: str = ""  # whose version to report; Python's when empty
    call_style: CallStyle = "await"
    gaps: Mapping[Workload, str] = {}
    in_process: bool = False

    def version(self) -> str:
        if not self.distribution:
            return platform.python_version()
        try:
            return importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    async def start(self) -> None:
        """One-time setup (imports, pools); raises with the reason when the engine is not here."""

    async def open(self) -> PeerSession:
        raise NotImplementedError

    async def stop(self) -> None:
        """Release what ``start`` took."""


class NoProcessSession:
    """A session with no process of its own and nothing to release."""

    pid: int | None = None

    async def close(self) -> None:
        return None


def one_line(text: str, limit: int = 240) -> str:
    """An engine's message as one short line (some put the whole program in it)."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


class OpenptcSession:
    """An openptc session: the program runs in the sandbox, tools on the host over the bridge."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._tools = EchoTools()

    @property
    def pid(self) -> int | None:
        return self._session.pid if isinstance(self._session, LocalSession) else None

    async def run(self, code: str) -> str:
        execution = await self._session.execute(code, self._tools)
        if execution.error is not None:
            raise ProgramFailed(one_line(f"{execution.error.type}: {execution.error.message}"))
        return execution.stdout

    async def close(self) -> None:
        await self._session.close()


class OpenptcEngine(Engine):
    """An openptc backend, started once with no warm pool, so every session is a new process."""

    distribution = "openptc"

    def __init__(
        self,
        name: str,
        make: Callable[[], AbstractAsyncContextManager[Sandbox]],
        isolation: str,
        gaps: Mapping[Workload, str] | None = None,
    ) -> None:
        self.name = name
        self.isolation = isolation
        self.gaps = gaps or {}
        self._make = make
        self._stack = contextlib.AsyncExitStack()
        self._sandbox: Sandbox | None = None

    async def start(self) -> None:
        self._sandbox = await self._stack.enter_async_context(self._make())
        session = await self._sandbox.open_session()
        try:  # the isolation actually achieved, as every execution reports it
            execution = await session.execute("x = 1")
            self.isolation = execution.isolation.describe()
        finally:
            await session.close()

    async def open(self) -> PeerSession:
        assert self._sandbox is not None, "start() first"
        return OpenptcSession(await self._sandbox.open_session())

    async def stop(self) -> None:
        await self._stack.aclose()


def openptc_local() -> OpenptcEngine:
    return OpenptcEngine(
        "openptc local",
        lambda: LocalSandbox(pool_size=0),
        "a separate sandboxed process per session (bubblewrap where the machine allows it)",
    )


def openptc_docker() -> OpenptcEngine:
    def make() -> AbstractAsyncContextManager[Sandbox]:
        from openptc.sandbox.docker import DockerSandbox

        return DockerSandbox(pool_size=0)

    gap = "a container's memory is the Docker engine's, outside this host's process tree"
    return OpenptcEngine(
        "openptc docker",
        make,
        "a hardened Docker container per session (as designed; the run says what it got)",
        {"idle_memory": gap},
    )


async def echo(value: Any) -> Any:
    """The tool every engine calls: returns its argument, so the call itself is measured."""
    return value


async def sleep(seconds: float) -> float:
    """A tool that takes ``seconds`` on the host without using a core (for the fan-out)."""
    await asyncio.sleep(seconds)
    return seconds


class PlainExecSession(NoProcessSession):
    """Compiled code run by ``exec`` in the host process: the floor every engine is set against.

    Top-level ``await`` is compiled as the asyncio REPL does; ``print`` writes to a buffer.
    """

    def __init__(self) -> None:
        self._globals: dict[str, Any] = {"__name__": "__main__", "echo": echo, "sleep": sleep}

    async def run(self, code: str) -> str:
        out = io.StringIO()
        self._globals["print"] = functools.partial(print, file=out)
        try:
            compiled = compile(code, "<program>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            result = eval(compiled, self._globals)
            if inspect.iscoroutine(result):
                await result
        except Exception as exc:
            raise ProgramFailed(one_line(f"{type(exc).__name__}: {exc}")) from exc
        return out.getvalue()


class PlainExecEngine(Engine):
    name = "plain exec"
    isolation = "none: the program runs in the host process with its privileges"
    in_process = True

    async def open(self) -> PeerSession:
        return PlainExecSession()


async def spawn_python(code: str) -> str:
    """Run ``code`` in a new ``python -I -S`` with an empty environment; its stdout."""
    argv = (Interpreter.current().executable, "-I", "-S", "-c", code)
    pipe = asyncio.subprocess.PIPE
    process = await asyncio.create_subprocess_exec(*argv, env={}, stdout=pipe, stderr=pipe)
    out, err = await process.communicate()
    if process.returncode:
        lines = err.decode(errors="replace").strip().splitlines() or [f"exit {process.returncode}"]
        raise ProgramFailed(one_line(lines[-1]))
    return out.decode(errors="replace")


class FreshProcessSession(NoProcessSession):
    """No state: every run is a new interpreter that exits when the program ends."""

    async def run(self, code: str) -> str:
        return await spawn_python(code)


class FreshProcessEngine(Engine):
    name = "python -I -S"
    isolation = (
        "process only: a new interpreter per execution with the host user's privileges and "
        "file system, an empty environment, no namespaces and no limits"
    )
    gaps: Mapping[Workload, str] = {
        "warm_execution": "no live session: every execution is a new process (see cold start)",
        "sequential_tool_calls": "no tool bridge: a bare subprocess cannot call host functions",
        "fan_out": "no tool bridge: a bare subprocess cannot call host functions",
        "idle_memory": "no idle session: each execution is a new process that exits at its end",
    }

    async def open(self) -> PeerSession:
        return FreshProcessSession()


def smolagents_tools() -> dict[str, Any]:
    """``echo`` and ``sleep`` as smolagents tools: sync functions, as its CodeAgent calls them."""
    from smolagents import tool  # type: ignore[import-untyped]  # ships no py.typed

    def echo(value: Any) -> Any:
        """Return the value unchanged.

        Args:
            value: what to return
        """
        return value

    def sleep(seconds: float) -> float:
        """Wait and return the seconds waited.

        Args:
            seconds: how long to wait
        """
        time.sleep(seconds)
        return seconds

    return {"echo": tool(echo), "sleep": tool(sleep)}


class SmolagentsSession(NoProcessSession):
    """A LocalPythonExecutor: it walks the program's AST in the host process (in a thread of its
    own per run, for its timeout), calling the tools as plain functions."""

    def __init__(self, executor: Any) -> None:
        self._executor = executor

    async def run(self, code: str) -> str:
        try:
            output = self._executor(code)
        except Exception as exc:  # InterpreterError says which construct it refused
            message = str(exc)
            raise ProgramFailed(one_line(message.split(" due to: ", 1)[-1])) from exc
        return str(output.logs)


class SmolagentsEngine(Engine):
    name = distribution = "smolagents"
    isolation = (
        "none: an AST interpreter in the host process with its privileges; an import allow-list "
        "and checks on dunders and builtins, which smolagents itself says are not a sandbox"
    )
    call_style: CallStyle = "call"
    in_process = True
    _tools: dict[str, Any] | None = None

    async def start(self) -> None:
        self._tools = smolagents_tools()  # imports smolagents, once

    async def open(self) -> PeerSession:
        from smolagents.local_python_executor import LocalPythonExecutor  # type: ignore[import-untyped]

        executor = LocalPythonExecutor(additional_authorized_imports=SMOLAGENTS_IMPORTS)
        executor.send_tools(self._tools)
        return SmolagentsSession(executor)


def os_confinement(pid: int) -> str:
    """What the kernel confines process ``pid`` with, read from /proc: namespaces, seccomp."""
    seccomp = "Seccomp:\t0" not in Path(f"/proc/{pid}/status").read_text()
    own = [k for k in ("pid", "net", "mnt", "user", "ipc") if _ns(pid, k) != _ns(os.getpid(), k)]
    namespaces = f"its own {', '.join(own)} namespaces" if own else "the host's namespaces"
    return f"{namespaces} and {'a' if seccomp else 'no'} seccomp filter"


def _ns(pid: int, kind: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{kind}")


class MontySession:
    """A checkout of a pool worker: the program runs in the ``monty`` process, each tool call is
    a suspension answered on the host (coroutines awaited concurrently by AsyncMonty)."""

    def __init__(self, session: Any) -> None:
        self._session = session

    @property
    def pid(self) -> int | None:
        pid: int | None = self._session.worker_pid
        return pid

    async def run(self, code: str) -> str:
        import pydantic_monty as monty

        out = monty.CollectString()
        try:
            await self._session.feed_run(
                code, external_lookup={"echo": echo, "sleep": sleep}, print_callback=out
            )
        except (monty.MontyRuntimeError, monty.MontySyntaxError) as exc:
            raise ProgramFailed(one_line(exc.display(format="type-msg"))) from exc
        except monty.MontyError as exc:
            raise ProgramFailed(one_line(str(exc))) from exc
        return out.output

    async def close(self) -> None:
        await self._session.__aexit__(None, None, None)


class MontyEngine(Engine):
    """AsyncMonty recycling its worker after each checkout (so a session is a new interpreter),
    allowing a million suspensions (the default 1,000 per checkout stops the tool workloads)."""

    name = distribution = "pydantic-monty"
    isolation = "a Python subset interpreter in Rust, in a worker process"
    _pool: Any = None

    async def start(self) -> None:
        from pydantic_monty import AsyncMonty

        self._pool = AsyncMonty(
            min_processes=0, max_processes=32, max_checkouts_per_worker=1, request_timeout=120
        )
        await self._pool.__aenter__()
        session = await self.open()
        await session.run("x = 1")
        assert session.pid is not None
        self.isolation = (
            "interpreter: a Python subset written in Rust that reaches files, network and "
            "environment only through host callbacks; each session in its own worker process "
            f"(crash isolation) with {os_confinement(session.pid)}"
        )
        await session.close()

    async def open(self) -> PeerSession:
        session = self._pool.checkout(limits={"max_suspensions": 1_000_000})
        await session.__aenter__()
        return MontySession(session)

    async def stop(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.__aexit__(None, None, None)

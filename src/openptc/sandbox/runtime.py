"""The program runner that lives INSIDE the sandbox.

Standard library only, no openptc imports, any CPython >= 3.11: ``bundle.py`` compiles it to
``ptc_runtime.pyc`` (the Docker image does the same) and a fresh ``python -I -S`` imports it from
that directory. What it shares with the replay harness (compiling, running and describing a
program) is the module ``ptc_program`` beside it; see ``shipped-modules/ptc_program.py``.

It speaks newline-delimited JSON with the host over two inherited file descriptors (the bridge),
so the program's own ``print`` output never mixes with control messages:

    host -> runtime  {"type": "execute", "id", "code", "tools": [{"name", "params"}],
                      "output_bytes"}
                     {"type": "tool_result", "id", "ok", "value" | "error": {"type", "message"}}
    runtime -> host  {"type": "ready", "pid", "python"}
                     {"type": "tool_calls", "calls": [{"id", "tool", "args"}]}
                     {"type": "blocked"}   (only when the execute message asked for it)
                     {"type": "done", "id", "stdout", "stderr", "stdout_truncated", "error",
                      "notices"}

Tool calls are sent in one batch between steps of the event loop, so an ``asyncio.gather`` of
twenty calls arrives as one message. With ``"report_blocked": true`` the runtime also says when
the program has issued every call it can and now waits for results: the proxy answers a client
with exactly that batch, never a guess made by a timer.
"""

import sys

# asyncio imports ssl only to offer TLS; loading OpenSSL costs ~20 ms and ~4 MB per sandbox
# that has no network anyway. Block it while asyncio imports, then let programs import it.
sys.modules["ssl"] = None  # type: ignore[assignment]
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import selectors  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from typing import Any, NoReturn  # noqa: E402

from ptc_program import (  # noqa: E402
    ERROR_TYPES,
    PROGRAM_PREFIX,
    CappedWriter,
    ToolError,
    base_namespace,
    bind_arguments,
    compile_program,
    describe,
    describe_syntax_error,
    encode_arguments,
    grouped,
    lenient_json_loads,
    unawaited_notices,
)

del sys.modules["ssl"]

MB = 1024 * 1024
# The runtime's own way out; ``os._exit`` itself is replaced for programs (see program_exit).
real_exit = os._exit


class FlushingSelector(selectors.DefaultSelector):
    """A selector that sends the batched tool calls between steps of the event loop.

    Calls issued in one step (all the tasks an ``asyncio.gather`` starts) leave together; and
    a program that polls (``while not task.done(): await asyncio.sleep(0)``) never blocks, so
    waiting for the loop to block would never send its calls. ``timeout`` tells the step hook
    whether the loop is about to wait (non-zero) or has more ready work (zero).
    """

    def __init__(self, on_step: Any) -> None:
        super().__init__()
        self.on_step = on_step

    def select(self, timeout: float | None = None) -> Any:
        self.on_step(timeout)
        return super().select(timeout)


# A program that polls with ``asyncio.sleep(0)`` while its calls are pending never lets the loop
# wait; after this many such steps with nothing new issued it counts as blocked all the same.
POLLING_STEPS = 100


class Runtime:
    """One interpreter's worth of state: the program namespace, pending calls, the bridge."""

    def __init__(self, in_fd: int, out_fd: int, *, pid_namespace: bool = False) -> None:
        self.in_fd = in_fd
        self.out_fd = out_fd
        self.pid = os.getpid()
        # Alone in a PID namespace, every other process there is the program's to clean up.
        self.pid_namespace = pid_namespace
        self.execution: Any = None  # the host's token for the execution in progress
        self.call_budget = 0  # tool calls this execution may still make (0: none left)
        self.budget_message = ""  # what a call past the budget says (the host's words too)
        self.writers: tuple[CappedWriter, CappedWriter] | None = None
        self.namespace = base_namespace()
        self.installed_tools: set[str] = set()
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.outbox: list[str] = []  # encoded calls, sent together at the end of a loop step
        self.report_blocked = False
        self.unreported_calls = False  # calls sent since the last "blocked" report
        self.idle_steps = 0
        self.created: list[tuple[Any, str, int | None]] = []
        self.next_call_id = 1
        self.executions = 0
        self.buffer = b""
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        # Address space held back under RLIMIT_AS and freed on MemoryError, so the report itself
        # can be built; bytes() of this size is mapped lazily, so it costs no resident memory.
        self.reserve = bytes(MB)

    # -- bridge ---------------------------------------------------------------------------------
    def send(self, message: dict[str, Any]) -> None:
        self.send_line(json.dumps(message, separators=(",", ":")))

    def send_line(self, line: str) -> None:
        if os.getpid() != self.pid:  # a forked child must never speak on the bridge
            return
        data = (line + "\n").encode()
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.out_fd, view)
            except OSError:
                real_exit(0)  # the host went away
            view = view[written:]

    def flush_calls(self) -> None:
        if self.outbox:
            calls, self.outbox = self.outbox, []
            self.send_line(
                f'{{"type":"tool_calls","execution":{json.dumps(self.execution)},"calls":['
                + ",".join(calls)
                + "]}"
            )
            self.unreported_calls = True
            self.idle_steps = 0

    def on_step(self, timeout: float | None) -> None:
        """Between loop steps: send the calls issued, and say so when the program now waits."""
        self.flush_calls()
        if not (self.report_blocked and self.unreported_calls and self.pending):
            return
        self.idle_steps += 1
        if timeout is None or timeout > 0 or self.idle_steps >= POLLING_STEPS:
            self.unreported_calls = False
            self.idle_steps = 0
            self.send({"type": "blocked", "execution": self.execution})

    def on_readable(self) -> None:
        try:
            chunk = os.read(self.in_fd, 1 << 16)
        except BlockingIOError:
            return
        if not chunk:
            real_exit(0)  # the host closed the bridge: nothing left to do
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            if line:
                self.dispatch(json.loads(line))

    def dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "tool_result":
            future = self.pending.get(message["id"])
            if future is not None and not future.done():
                future.set_result(message)
        elif kind == "execute":
            self.queue.put_nowait(message)
        elif kind == "shutdown":
            real_exit(0)

    # -- tools ----------------------------------------------------------------------------------
    def make_tool(self, name: str, params: list[str]) -> Any:
        runtime = self

        def tool_function(*args: Any, **kwargs: Any) -> Any:
            arguments = bind_arguments(name, params, args, kwargs)
            encoded = encode_arguments(name, arguments)
            caller = sys._getframe(1)
            line = caller.f_lineno if caller.f_code.co_filename.startswith(PROGRAM_PREFIX) else None
            coroutine = runtime.call_tool(name, encoded)
            runtime.created.append((coroutine, name, line))
            return coroutine

        tool_function.__name__ = name.rpartition(".")[2]
        tool_function.__qualname__ = name
        tool_function.__doc__ = f"Call the host tool {name!r}; returns its JSON result."
        return tool_function

    async def call_tool(self, name: str, arguments: str) -> Any:
        if self.call_budget <= 0:
            raise ToolError(self.budget_message)
        self.call_budget -= 1
        call_id = self.next_call_id
        self.next_call_id += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[call_id] = future
        self.outbox.append(f'{{"id":{call_id},"tool":{json.dumps(name)},"args":{arguments}}}')
        try:
            reply = await future
        finally:
            self.pending.pop(call_id, None)
        if reply.get("ok"):
            return reply.get("value")
        error = reply.get("error") or {}
        raise ERROR_TYPES.get(error.get("type", ""), ToolError)(error.get("message", "tool failed"))

    def install_tools(self, tools: list[dict[str, Any]]) -> None:
        """Only the tools allowed for this execution exist in the namespace (dotted names in
        their groups)."""
        functions = {t["name"]: self.make_tool(t["name"], list(t["params"])) for t in tools}
        names = grouped(functions)
        for stale in self.installed_tools - set(names):
            self.namespace.pop(stale, None)
        self.namespace.update(names)
        self.installed_tools = set(names)

    # -- execution ------------------------------------------------------------------------------
    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        os.set_blocking(self.in_fd, False)
        loop.add_reader(self.in_fd, self.on_readable)
        self.send({"type": "ready", "pid": os.getpid(), "python": sys.version.split()[0]})
        while True:
            message = await self.queue.get()
            done = await self.execute(message)
            self.send(done)
            if done["error"] and done["error"]["kind"] == "cpu":
                real_exit(0)  # the CPU budget is spent: the host starts a fresh interpreter

    async def execute(self, message: dict[str, Any]) -> dict[str, Any]:
        self.executions += 1
        self.execution = message.get("id")
        budget = int(message.get("tool_calls", 10_000))
        self.call_budget = budget
        self.budget_message = (
            f"this program used up its budget of {budget} tool calls per run; make fewer "
            "calls (filter or batch on the host side of a tool), or split the work over runs"
        )
        number = "" if self.executions == 1 else f" {self.executions}"
        filename = f"{PROGRAM_PREFIX}{number}>"
        cap = int(message.get("output_bytes", 64_000))
        stdout, stderr = CappedWriter(cap), CappedWriter(cap)
        self.writers = (stdout, stderr)
        reap_children(wait=False)  # zombies an earlier program's children left (if any)
        executor = ThreadPoolExecutor()  # this run's own: shut down when it ends
        asyncio.get_running_loop().set_default_executor(executor)
        self.install_tools(message.get("tools", []))
        self.report_blocked = bool(message.get("report_blocked", False))
        self.unreported_calls = False
        before = asyncio.all_tasks()
        error: dict[str, Any] | None = None
        real_out, real_err = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = stdout, stderr
        try:
            error = await self.run_program(message["code"], filename)
        finally:
            sys.stdout, sys.stderr = real_out, real_err
        if os.getpid() != self.pid:
            real_exit(0)  # a forked child that ran on to the end of the program: nothing to report
        notices = await self.cancel_leftovers(before) + self.unawaited_calls()
        self.flush_calls()
        self.writers = None
        stopped = stop_processes(self.pid, self.pid_namespace)
        if stopped:
            notices.append(
                f"{stopped} process(es) the program started were still running when it ended "
                "and were stopped"
            )
        executor.shutdown(wait=False, cancel_futures=True)
        threads = stray_threads()
        return {
            "type": "done",
            "id": self.execution,
            "stdout": stdout.text(),
            "stderr": stderr.text(),
            "stdout_truncated": bool(stdout.dropped),
            "error": error,
            "notices": notices,
            "restart": (
                f"{threads} thread(s) the program started were still running when it ended"
                if threads
                else None
            ),
        }

    def program_exit(self, status: int) -> NoReturn:
        """``os._exit`` for programs: say what was printed and the status before going."""
        if not isinstance(status, int):
            real_exit(status)  # raises the TypeError os._exit would
        if os.getpid() == self.pid and self.writers is not None:
            stdout, stderr = self.writers
            self.send(
                {
                    "type": "exit",
                    "execution": self.execution,
                    "status": status,
                    "stdout": stdout.text(),
                    "stderr": stderr.text(),
                    "stdout_truncated": bool(stdout.dropped),
                }
            )
        real_exit(status)

    async def run_program(self, code: str, filename: str) -> dict[str, Any] | None:
        try:
            compiled = compile_program(code, filename)
        except SyntaxError as exc:
            return describe_syntax_error(exc)
        try:
            result = eval(compiled, self.namespace)
            if inspect.iscoroutine(result):
                await result
        except SystemExit as exc:
            if exc.code not in (None, 0):
                return describe(exc, "exception")
        except MemoryError as exc:
            self.reserve = b""
            return describe(exc, "memory")
        except CpuLimitExceeded as exc:
            return describe(exc, "cpu")
        except BaseException as exc:
            if os.getpid() != self.pid:
                real_exit(1)  # a forked child of the program ends here, silently
            return describe(exc, "exception")
        finally:
            if not self.reserve:
                with contextlib.suppress(MemoryError):
                    self.reserve = bytes(MB)
        return None

    async def cancel_leftovers(self, before: set[asyncio.Task[Any]]) -> list[str]:
        """Tasks the program started but never awaited die with the execution."""
        current = asyncio.current_task()
        leftovers = [t for t in asyncio.all_tasks() - before if t is not current and not t.done()]
        for task in leftovers:
            task.cancel()
        if not leftovers:
            return []
        await asyncio.wait(leftovers, timeout=1.0)  # let them unwind before the next program
        return [
            f"{len(leftovers)} background task(s) were still running when the program "
            "ended and were cancelled"
        ]

    def unawaited_calls(self) -> list[str]:
        notices = unawaited_notices(self.created)
        self.created = []
        return notices


def process_ids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def process_state(pid: int) -> tuple[str, int] | None:
    """A process's state letter and parent pid, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    return fields[0].decode(), int(fields[1])


def stop_processes(own_pid: int, pid_namespace: bool) -> int:
    """Stop every process the program left running; return how many there were.

    In a PID namespace (bubblewrap, Docker) that is every process but init and this one, found
    and killed at once, double-forked ones included. Without one, only this process's children
    can be told apart from the host's; the host's cgroup catches the rest where it has one.
    """
    if pid_namespace:
        others = [p for p in process_ids() if p not in (1, own_pid)]
    elif reap_children(wait=False):
        others = [p for p in process_ids() if (process_state(p) or ("", 0))[1] == own_pid]
    else:
        return 0
    running = [p for p in others if (process_state(p) or ("Z", 0))[0] not in "ZX"]
    if running and pid_namespace:
        with contextlib.suppress(OSError):
            os.kill(-1, signal.SIGKILL)
    for pid in running:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    reap_children(wait=bool(running))
    return len(running)


def reap_children(*, wait: bool) -> bool:
    """Collect children that ended (zombies count against the process limit until then).

    Returns whether a child is still running; ``wait`` gives killed ones a moment to end.
    """
    deadline = time.monotonic() + (1.0 if wait else 0.0)
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            if time.monotonic() >= deadline:
                return True
            time.sleep(0.001)


def stray_threads(grace_s: float = 0.5) -> int:
    """How many threads besides this one are still running after a short grace period.

    Python cannot stop a thread from outside; one left running would go on acting (and
    writing to the bridge) during later programs, so the host restarts the interpreter.
    """
    deadline = time.monotonic() + grace_s
    while True:
        try:
            count = len(os.listdir("/proc/self/task")) - 1
        except OSError:
            count = threading.active_count() - 1
        if count <= 0 or time.monotonic() >= deadline:
            return max(count, 0)
        time.sleep(0.005)


def apply_limits(limits: dict[str, int]) -> None:
    """rlimits are set before any program code runs; soft == hard so programs cannot raise them."""
    settings = [
        (resource.RLIMIT_AS, limits.get("memory_mb", 0) * MB),
        (resource.RLIMIT_FSIZE, limits.get("file_size_mb", 0) * MB),
        (resource.RLIMIT_NOFILE, limits.get("open_files", 0)),
        (resource.RLIMIT_NPROC, limits.get("processes", 0)),
        (resource.RLIMIT_CORE, 0),
    ]
    for which, value in settings:
        if value or which == resource.RLIMIT_CORE:
            resource.setrlimit(which, (value, value))
    cpu = limits.get("cpu_s", 0)
    if cpu:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 2))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write raises OSError instead


def drop_privileges(uid: int) -> None:
    """Become a fresh unprivileged user: the kernel then counts this sandbox's processes."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


class CpuLimitExceeded(BaseException):
    """Raised into the program when the session's CPU budget runs out (SIGXCPU)."""


def on_cpu_limit(signum: int, frame: Any) -> None:
    raise CpuLimitExceeded(
        "the session used up its CPU time budget; the interpreter is stopped and the next "
        "run starts a fresh one (variables are lost)"
    )


def main() -> None:
    config = json.loads(sys.argv[1])
    apply_limits(config.get("limits", {}))
    if config.get("uid") is not None:
        drop_privileges(int(config["uid"]))
    signal.signal(signal.SIGXCPU, on_cpu_limit)
    json.loads = lenient_json_loads
    runtime = Runtime(
        config["in_fd"], config["out_fd"], pid_namespace=bool(config.get("pid_namespace"))
    )
    os._exit = runtime.program_exit
    loop = asyncio.SelectorEventLoop(FlushingSelector(runtime.on_step))
    asyncio.set_event_loop(loop)
    loop.run_until_complete(runtime.serve())


if __name__ == "__main__":
    main()

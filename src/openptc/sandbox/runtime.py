"""The program runner that lives INSIDE the sandbox.

Standard library only, no openptc imports: this file's source is handed to a fresh
``python -I -S`` as ``-c`` and must work on any CPython >= 3.11.

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
import ast  # noqa: E402
import asyncio  # noqa: E402
import builtins  # noqa: E402
import collections  # noqa: E402
import contextlib  # noqa: E402
import inspect  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import linecache  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import selectors  # noqa: E402
import signal  # noqa: E402
import traceback  # noqa: E402
from typing import Any  # noqa: E402

del sys.modules["ssl"]

PROGRAM_PREFIX = "<program"
MB = 1024 * 1024


class ToolError(Exception):
    """A tool failed on the host; the message says why. Catch it to recover in the program."""


class ToolArgumentError(ToolError, ValueError):
    """The host rejected the arguments of a tool call before running the tool."""


# Shown as plain ``ToolError: ...`` in tracebacks, as if built in, not ``ptc_runtime.ToolError``.
ToolError.__module__ = ToolArgumentError.__module__ = "builtins"

ERROR_TYPES: dict[str, type[Exception]] = {
    "ToolError": ToolError,
    "ToolArgumentError": ToolArgumentError,
    "TimeoutError": TimeoutError,
}


class CappedWriter(io.TextIOBase):
    """A text stream that keeps the first ``cap`` bytes and counts the rest."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        room = self.cap - self.size
        if room <= 0:
            self.dropped += len(s)
            return len(s)
        data = s.encode("utf-8", "replace")
        if len(data) > room:
            kept = data[:room].decode("utf-8", "ignore")
            self.parts.append(kept)
            self.size = self.cap
            self.dropped += len(s) - len(kept)
        else:
            self.parts.append(s)
            self.size += len(data)
        return len(s)

    def text(self) -> str:
        out = "".join(self.parts)
        if self.dropped:
            out += f"\n[output truncated: {self.dropped} more characters not shown]\n"
        return out


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


def lenient_json_loads(s: Any, *args: Any, **kwargs: Any) -> Any:
    """``json.loads`` that returns an already-decoded value unchanged.

    Tool results arrive as dicts and lists, yet model-written code often ``json.loads`` them.
    """
    if isinstance(s, (dict, list, int, float, bool)) or s is None:
        return s
    return ORIGINAL_JSON_LOADS(s, *args, **kwargs)


ORIGINAL_JSON_LOADS = json.loads


class AsyncioRunRewriter(ast.NodeTransformer):
    """Turn top-level ``asyncio.run(main())`` into ``await main()``.

    The program already runs inside an event loop, where ``asyncio.run`` would refuse to start.
    Covers ``asyncio.run(x, debug=...)``, ``run(x)`` after ``from asyncio import run`` and
    ``loop.run_until_complete(x)``. Only module-level code is rewritten, not function bodies.
    """

    def __init__(self, tree: ast.Module) -> None:
        self.run_names = {
            alias.asname or alias.name
            for node in tree.body
            if isinstance(node, ast.ImportFrom) and node.module == "asyncio"
            for alias in node.names
            if alias.name == "run"
        }

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        return node

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        return node

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func = node.func
        asyncio_run = (
            isinstance(func, ast.Attribute)
            and func.attr == "run"
            and isinstance(func.value, ast.Name)
            and func.value.id == "asyncio"
        )
        loop_run = isinstance(func, ast.Attribute) and func.attr == "run_until_complete"
        imported_run = isinstance(func, ast.Name) and func.id in self.run_names
        is_run = asyncio_run or loop_run or imported_run
        if is_run and len(node.args) == 1:
            return ast.copy_location(ast.Await(value=node.args[0]), node)
        return node


def bind_arguments(
    name: str, params: list[str], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """Map the call forms models write (keywords, positionals, one dict) to one dict."""
    if len(args) == 1 and not kwargs and isinstance(args[0], dict):
        only = args[0]
        if not (len(params) == 1 and not set(only) <= set(params)):
            return dict(only)
    if len(args) > len(params):
        listed = ", ".join(params) or "no parameters"
        raise TypeError(
            f"{name}() takes {len(params)} positional arguments ({listed}) "
            f"but {len(args)} were given"
        )
    bound = dict(zip(params, args, strict=False))
    for key, value in kwargs.items():
        if key in bound:
            raise TypeError(f"{name}() got multiple values for argument '{key}'")
        bound[key] = value
    return bound


def encode_arguments(name: str, arguments: dict[str, Any]) -> str:
    """Encode the arguments once, at the call site; name the argument that is not JSON."""
    try:
        return json.dumps(arguments, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):
        pass
    for key, value in arguments.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise TypeError(
                f"{name}(): argument '{key}' is not JSON-serializable "
                f"(got {type(value).__name__}); tool arguments must be "
                "str, int, float, bool, None, list or dict"
            ) from None
    raise TypeError(f"{name}(): arguments are not JSON-serializable")


def unawaited_notices(created: list[tuple[Any, str, int | None]]) -> list[str]:
    """Tool calls made without ``await`` never ran: one notice per tool, and close them."""
    missed: dict[str, list[int | None]] = {}
    for coroutine, name, line in created:
        if inspect.getcoroutinestate(coroutine) == inspect.CORO_CREATED:
            missed.setdefault(name, []).append(line)
            coroutine.close()
    notices = []
    for name, lines in missed.items():
        where = f" on line {lines[0]}" if lines[0] else ""
        times = f" ({len(lines)} calls)" if len(lines) > 1 else ""
        notices.append(
            f"{name}(...){where} was called without `await`{times}, so the tool never ran; "
            f"write `await {name}(...)` (or pass the calls to asyncio.gather)"
        )
    return notices


def program_frames(tb: Any, keep: int = 40) -> list[tuple[Any, int]]:
    """The last ``keep`` frames of the program's own code (a deep recursion has a million)."""
    tail: collections.deque[tuple[Any, int]] = collections.deque(maxlen=keep)
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith(PROGRAM_PREFIX):
            tail.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    return list(tail)


def base_namespace() -> dict[str, Any]:
    """What every program starts with: tool errors, asyncio and json, ``exit``."""
    return {
        "__name__": "__main__",
        "__builtins__": builtins,
        "ToolError": ToolError,
        "ToolArgumentError": ToolArgumentError,
        "asyncio": asyncio,
        "json": json,
        "exit": sys.exit,  # normally added by the site module, which -S skips
        "quit": sys.exit,
    }


def compile_program(code: str, filename: str) -> Any:
    """Compile with top-level ``await``, ``asyncio.run(main())`` rewritten as ``await main()``;
    the source goes to linecache so tracebacks show the program's lines."""
    parsed = ast.parse(code, filename)
    tree = AsyncioRunRewriter(parsed).visit(parsed)
    ast.fix_missing_locations(tree)
    compiled = compile(
        tree, filename, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    return compiled


def describe_syntax_error(exc: SyntaxError) -> dict[str, Any]:
    return {
        "kind": "syntax",
        "type": type(exc).__name__,
        "message": f"{exc.msg} (line {exc.lineno})",
        "traceback": "".join(traceback.format_exception_only(type(exc), exc)),
        "line": exc.lineno,
    }


def describe(exc: BaseException, kind: str) -> dict[str, Any]:
    """A traceback trimmed to the program's own lines, then the exception."""
    frames = traceback.StackSummary.extract(program_frames(exc.__traceback__))
    lines = ["Traceback (most recent call last):\n", *frames.format()] if frames else []
    lines += traceback.format_exception_only(type(exc), exc)
    message = str(exc)
    if kind == "memory":
        message = "the program ran out of memory (the sandbox's memory limit was reached)"
        lines[-1] = f"MemoryError: {message}\n"
    return {
        "kind": kind,
        "type": type(exc).__name__,
        "message": message,
        "traceback": "".join(lines),
        "line": frames[-1].lineno if frames else None,
    }


class Runtime:
    """One interpreter's worth of state: the program namespace, pending calls, the bridge."""

    def __init__(self, in_fd: int, out_fd: int) -> None:
        self.in_fd = in_fd
        self.out_fd = out_fd
        self.pid = os.getpid()
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
                os._exit(0)  # the host went away
            view = view[written:]

    def flush_calls(self) -> None:
        if self.outbox:
            calls, self.outbox = self.outbox, []
            self.send_line('{"type":"tool_calls","calls":[' + ",".join(calls) + "]}")
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
            self.send_line('{"type":"blocked"}')

    def on_readable(self) -> None:
        try:
            chunk = os.read(self.in_fd, 1 << 16)
        except BlockingIOError:
            return
        if not chunk:
            os._exit(0)  # the host closed the bridge: nothing left to do
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
            os._exit(0)

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

        tool_function.__name__ = tool_function.__qualname__ = name
        tool_function.__doc__ = f"Call the host tool {name!r}; returns its JSON result."
        return tool_function

    async def call_tool(self, name: str, arguments: str) -> Any:
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
        """Only the tools allowed for this execution exist in the namespace."""
        for stale in self.installed_tools - {t["name"] for t in tools}:
            self.namespace.pop(stale, None)
        for spec in tools:
            self.namespace[spec["name"]] = self.make_tool(spec["name"], list(spec["params"]))
        self.installed_tools = {t["name"] for t in tools}

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
                os._exit(0)  # the CPU budget is spent: the host starts a fresh interpreter

    async def execute(self, message: dict[str, Any]) -> dict[str, Any]:
        self.executions += 1
        number = "" if self.executions == 1 else f" {self.executions}"
        filename = f"{PROGRAM_PREFIX}{number}>"
        cap = int(message.get("output_bytes", 64_000))
        stdout, stderr = CappedWriter(cap), CappedWriter(cap)
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
            os._exit(0)  # a forked child that ran on to the end of the program: nothing to report
        notices = await self.cancel_leftovers(before) + self.unawaited_calls()
        self.flush_calls()
        return {
            "type": "done",
            "id": message.get("id"),
            "stdout": stdout.text(),
            "stderr": stderr.text(),
            "stdout_truncated": bool(stdout.dropped),
            "error": error,
            "notices": notices,
        }

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
                os._exit(1)  # a forked child of the program ends here, silently
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
    runtime = Runtime(config["in_fd"], config["out_fd"])
    loop = asyncio.SelectorEventLoop(FlushingSelector(runtime.on_step))
    asyncio.set_event_loop(loop)
    loop.run_until_complete(runtime.serve())


if __name__ == "__main__":
    main()

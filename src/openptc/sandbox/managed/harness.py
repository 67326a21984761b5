"""The replay harness: runs a program INSIDE a code interpreter that cannot call the host back.

Standard library only, CPython >= 3.10. This file is shipped into the interpreter as source text,
once per session (``shipping.setup_code``), behind the whole source of two modules: ``ptc_program``,
which the live runtime imports too, so that a program behaves the same under replay as under the
bridge (argument binding, ``asyncio.run`` rewriting, output capping, traceback trimming), and
``ptc_fixed_clock``. The names imported from them under ``TYPE_CHECKING`` below are, once shipped,
those definitions in front; for the same reason there is no ``from __future__`` import here (it
would not come first). Each pass then sends one expression (``shipping.pass_code``): run this
program with these tool results known.

A pass runs the program in a fresh event loop on a new thread (the interpreter may itself be
running a loop, as a Jupyter kernel does), with ``random`` seeded and the wall clock fixed, so that
passes agree. The program advances in *steps*: a step ends when the event loop is about to block
(every task waits). The table holds, per step, the calls made in it and their results. A call in a
recorded step must be one of that step's calls (same tool, same arguments; in any order, because
``asyncio.as_completed`` and ``asyncio.wait`` start their calls in set order), else the pass has
*diverged*; the step's results are delivered together when it ends. The calls of the first step
beyond the table are new: the pass ends there and reports all of them, numbered in the order they
were made. So an ``asyncio.gather`` of fifty calls costs one pass, and a program needs one pass per
level of dependent calls, plus one to finish.

The answer is one line on the interpreter's stdout, found by its marker among any other output::

    <marker> {"status": "done" | "error" | "need_calls" | "diverged"
                        | "ready" | "need_setup" | "need_table",
              "calls": [{"id", "tool", "args"}], "stdout", "stderr", "stdout_truncated",
              "error": {"kind", "type", "message", "traceback", "line"} | null,
              "divergence": {...} | null, "notices": [...]}
"""

import asyncio
import builtins
import contextlib
import importlib.metadata
import importlib.util
import inspect
import json
import linecache
import random
import re
import selectors
import sys
import threading
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # shipped: defined by these modules' source, in front of this file's
    from ptc_fixed_clock import FixedClock
    from ptc_program import (
        ERROR_TYPES,
        PROGRAM_PREFIX,
        CappedWriter,
        ToolArgumentError,
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

Json = dict[str, Any]


def canonical(arguments: Any) -> str:
    """One text per set of arguments, so a call compares equal to its record (1 != 1.0 != true)."""
    return json.dumps(arguments, sort_keys=True, separators=(",", ":"))


class PassSelector(selectors.DefaultSelector):
    """Hands the moment the event loop would block to the pass, which may end it there."""

    def __init__(self, on_block: Callable[[], bool]) -> None:
        super().__init__()
        self.on_block = on_block

    def select(self, timeout: float | None = None) -> Any:
        if (timeout is None or timeout > 0) and self.on_block():
            timeout = 0  # the pass answered calls or stopped the loop: do not wait
        return super().select(timeout)


class Pass:
    """One run of the program with the tool results known so far."""

    def __init__(self, session: "InterpreterSession", config: Json) -> None:
        self.session = session
        self.config = config
        self.steps = session.steps
        self.known = sum(map(len, self.steps))
        self.namespace = dict(session.namespace)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.step = 0  # the step of the table the program is in
        self.expected = self.expect(0)
        self.made = 0  # calls made in this step
        self.used = 0  # calls answered from the table in this pass
        self.answering: list[tuple[asyncio.Future[Json], Json]] = []
        self.new_calls: list[Json] = []
        self.divergence: Json | None = None
        self.stopped = False  # the pass ended at a block, before the program did
        self.unwinding = False
        self.created: list[tuple[Any, str, int | None]] = []
        self.error: Json | None = None
        self.notices: list[str] = []
        self.tools = self.make_tools()
        self.installed = grouped(self.tools)  # by the names the program uses
        self.namespace.update(self.installed)

    # -- tools ----------------------------------------------------------------------------------
    def make_tools(self) -> dict[str, Callable[..., Any]]:
        """Host tools answered from the table; pre-loaded tools (same name or not) run here."""
        tools = {
            spec["name"]: self.tool_function(spec["name"], list(spec["params"]), self.host_call)
            for spec in self.config["tools"]
        }
        for name, (fn, params) in self.session.preloaded.items():
            tools[name] = self.tool_function(name, params, self.local_call(fn))
        return tools

    def tool_function(self, name: str, params: list[str], call: Any) -> Callable[..., Any]:
        def tool_function(*args: Any, **kwargs: Any) -> Any:
            arguments = bind_arguments(name, params, args, kwargs)
            encoded = encode_arguments(name, arguments)
            caller = sys._getframe(1)
            line = caller.f_lineno if caller.f_code.co_filename.startswith(PROGRAM_PREFIX) else None
            coroutine = call(name, json.loads(encoded), line)
            self.created.append((coroutine, name, line))
            return coroutine

        tool_function.__name__ = name.rpartition(".")[2]
        tool_function.__qualname__ = name
        tool_function.__doc__ = f"Call the tool {name!r}; returns its JSON result."
        return tool_function

    def expect(self, step: int) -> dict[tuple[str, str], list[Json]]:
        """The calls recorded for one step, by tool and arguments (their order may vary)."""
        expected: dict[tuple[str, str], list[Json]] = {}
        for entry in self.steps[step] if step < len(self.steps) else ():
            expected.setdefault((entry["tool"], entry["key"]), []).append(entry)
        return expected

    async def host_call(self, name: str, arguments: Json, line: int | None) -> Any:
        if self.unwinding:
            raise asyncio.CancelledError  # the pass is over; nothing more is asked for
        assert self.loop is not None
        future: asyncio.Future[Json] = self.loop.create_future()
        if self.step < len(self.steps):
            matches = self.expected.get((name, canonical(arguments)))
            if matches:
                self.made += 1
                self.answering.append((future, matches.pop(0)))
            else:
                self.diverge(name, arguments, line)
        else:
            call_id = self.known + len(self.new_calls) + 1
            self.new_calls.append({"id": call_id, "tool": name, "args": arguments})
        entry = await future
        if entry["ok"]:
            return json.loads(entry["value"])  # a fresh copy: passes must not share mutations
        error = entry.get("error") or {}
        raise ERROR_TYPES.get(error.get("type", ""), ToolError)(error.get("message", "tool failed"))

    def local_call(self, fn: Callable[..., Any]) -> Any:
        """A pre-loaded tool: runs in the interpreter, its result made JSON as a host tool's is."""

        async def call(name: str, arguments: Json, line: int | None) -> Any:
            try:
                inspect.signature(fn).bind(**arguments)
            except TypeError as exc:
                raise ToolArgumentError(f"{name}(): {exc}") from None
            try:
                result = fn(**arguments)
                if inspect.isawaitable(result):
                    result = await result
            except ToolError:
                raise
            except Exception as exc:
                raise ToolError(f"{type(exc).__name__}: {exc}") from exc
            try:
                return json.loads(json.dumps(result, allow_nan=False))
            except (TypeError, ValueError) as exc:
                raise ToolError(f"{name}() returned a value that is not JSON: {exc}") from None

        return call

    def diverge(self, name: str, arguments: Json, line: int | None) -> None:
        """A call that the earlier pass did not make at this point of the program."""
        if self.divergence is None:
            left = [e for entries in self.expected.values() for e in entries]
            self.divergence = {
                "reason": "mismatch",
                "step": self.step + 1,
                "tool": name,
                "args": arguments,
                "line": line,
                "expected": [{"tool": e["tool"], "args": e["args"]} for e in left[:3]],
                "expected_count": len(left),
            }
        self.end()

    def fewer_calls(self) -> Json:
        return {
            "reason": "fewer",
            "step": self.step + 1,
            "made": self.used + self.made,
            "known": self.known,
        }

    # -- the event loop -------------------------------------------------------------------------
    def on_block(self) -> bool:
        """Every task waits: the step is complete. Answer it from the table, or end the pass
        there if it made calls the table does not have (or fewer than the table has)."""
        if self.unwinding or self.new_calls or self.divergence is not None:
            self.end()
            return True
        if not self.answering:
            return False  # only timers or threads to wait for: wait for real
        if self.made < len(self.steps[self.step]):
            self.divergence = self.fewer_calls()
            self.end()
            return True
        answering, self.answering = self.answering, []
        for future, entry in answering:
            if not future.done():
                future.set_result(entry)
        self.step += 1
        self.used += self.made
        self.expected, self.made = self.expect(self.step), 0
        return True

    def end(self) -> None:
        if not self.unwinding:
            self.stopped = True
        assert self.loop is not None
        self.loop.stop()

    def run_loop(self) -> None:
        """The thread's body: a fresh loop, the program, then whatever it left running."""
        loop = asyncio.SelectorEventLoop(PassSelector(self.on_block))
        self.loop = loop
        asyncio.set_event_loop(loop)
        try:
            main = loop.create_task(self.run_program())
            with contextlib.suppress(RuntimeError):  # "Event loop stopped": the pass ended
                loop.run_until_complete(main)
            if main.done() and not main.cancelled():
                self.error = main.result()
            self.unwind(loop)
        except BaseException as exc:  # a fault of the harness itself, reported as such
            self.error = describe(exc, "exception")
            self.error["type"] = "ReplayHarnessError"
            self.error["traceback"] = traceback.format_exc()
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    async def run_program(self) -> Json | None:
        code, filename = self.config["program"], self.config["filename"]
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
            return describe(exc, "memory")
        except BaseException as exc:
            return describe(exc, "exception")
        return None

    def unwind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Cancel what the program left running; a task that will not end is left behind."""
        self.unwinding = True
        leftovers = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in leftovers:
            task.cancel()
        if leftovers:
            with contextlib.suppress(RuntimeError):  # stopped: a task blocked while unwinding
                loop.run_until_complete(asyncio.wait(leftovers))
            if not self.stopped:
                self.notices.append(
                    f"{len(leftovers)} background task(s) were still running when the program "
                    "ended and were cancelled"
                )
        self.notices.extend(self.unawaited_calls())

    def unawaited_calls(self) -> list[str]:
        notices = unawaited_notices(self.created)
        self.created = []
        return notices

    # -- the pass as a whole --------------------------------------------------------------------
    def run(self) -> Json:
        """Run the program on its own thread with output captured, random seeded, clock fixed."""
        cap = int(self.config["output_bytes"])
        stdout, stderr = CappedWriter(cap), CappedWriter(cap)
        clock = FixedClock(float(self.config["clock"]))
        saved = sys.stdout, sys.stderr, json.loads, random.getstate()
        sys.stdout, sys.stderr = stdout, stderr
        json.loads = lenient_json_loads
        random.seed(self.config["seed"])
        clock.install()
        try:
            thread = threading.Thread(target=self.run_loop, name="openptc-replay", daemon=True)
            thread.start()
            thread.join()
        finally:
            clock.remove()
            sys.stdout, sys.stderr, json.loads, state = saved
            random.setstate(state)
        outcome = self.outcome()
        if outcome["status"] in ("done", "error"):
            self.session.commit(self.namespace, self.installed)
        outcome.update(
            stdout=stdout.text(), stderr=stderr.text(), stdout_truncated=bool(stdout.dropped)
        )
        return outcome

    def outcome(self) -> Json:
        if self.divergence is None and not self.stopped and self.step < len(self.steps):
            self.divergence = self.fewer_calls()  # it ended before making every recorded call
        if self.divergence is not None:
            return {"status": "diverged", "divergence": self.divergence}
        if self.stopped:
            return {"status": "need_calls", "calls": self.new_calls}
        status = "error" if self.error is not None else "done"
        return {"status": status, "error": self.error, "notices": self.notices}


class InterpreterSession:
    """What the interpreter keeps between passes and programs: the program's variables, the
    pre-loaded tools, and the steps of the current execution's table (so that a pass sends only
    the new ones). A step is the calls made between two moments the program blocked.
    """

    def __init__(self, marker: str, preloaded: dict[str, tuple[Callable[..., Any], list[str]]]):
        self.marker = marker
        self.preloaded = preloaded
        self.namespace = base_namespace()
        self.execution: int | None = None
        self.steps: list[list[Json]] = []

    def run_pass(self, config_text: str) -> str:
        config = json.loads(config_text)
        if not self.sync_table(config):
            return envelope(self.marker, {"status": "need_table"})
        return envelope(self.marker, Pass(self, config).run())

    def sync_table(self, config: Json) -> bool:
        start = config["table_start"]
        if start == 0:
            self.execution, self.steps = config["execution"], []
        elif self.execution != config["execution"] or len(self.steps) != start:
            return False  # the interpreter lost what earlier passes sent: send it all again
        for step in config["table"]:
            for entry in step:
                entry["key"] = canonical(entry["args"])
                if entry["ok"]:
                    entry["value"] = json.dumps(entry["value"])  # parsed afresh for each pass
            self.steps.append(step)
        return True

    def commit(self, namespace: Json, tools: dict[str, Any]) -> None:
        """The final pass's variables persist; its tool functions do not."""
        self.namespace = {k: v for k, v in namespace.items() if tools.get(k) is not v}


def envelope(marker: str, payload: Json) -> str:
    return f"\n{marker} {json.dumps(payload, separators=(',', ':'), ensure_ascii=False)}"


def requirement_missing(requirement: str) -> bool:
    """Whether a requirement (a distribution or module name, version ignored) is absent here."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        return True
    name = match.group(1)
    try:
        importlib.metadata.distribution(name)
        return False
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        return importlib.util.find_spec(name.replace("-", "_")) is None
    except (ImportError, ValueError):
        return True


def install_tools(specs: list[Json]) -> dict[str, tuple[Callable[..., Any], list[str]]]:
    """Define each pre-loaded tool from its source; ValueError says which one failed and why."""
    tools: dict[str, tuple[Callable[..., Any], list[str]]] = {}
    for spec in specs:
        name = spec["name"]
        missing = [r for r in spec["requirements"] if requirement_missing(r)]
        if missing:
            raise ValueError(
                f"pre-loaded tool {name!r} requires {', '.join(map(repr, missing))}, which "
                f"{'is' if len(missing) == 1 else 'are'} not installed in this interpreter "
                "(openptc does not install packages at run time; use an interpreter that has them)"
            )
        filename = f"<tool {name}>"
        linecache.cache[filename] = (len(spec["source"]), None, spec["source"].splitlines(True), "")
        namespace: Json = {"__name__": f"openptc_tool_{name}", "__builtins__": builtins}
        try:
            exec(compile(spec["source"], filename, "exec", dont_inherit=True), namespace)
        except BaseException as exc:
            raise ValueError(
                f"pre-loaded tool {name!r} failed to load: {type(exc).__name__}: {exc}"
            ) from None
        fn = namespace.get(name)
        if not callable(fn):
            raise ValueError(f"pre-loaded tool {name!r}: its source does not define {name}()")
        tools[name] = (fn, list(spec["params"]))
    return tools


def open_session(config_text: str) -> tuple[InterpreterSession | None, str]:
    """Set up the session: install the pre-loaded tools; the line says ready or why not."""
    config = json.loads(config_text)
    marker = config["marker"]
    try:
        tools = install_tools(config["preloaded"])
    except ValueError as exc:
        error = {"kind": "exception", "type": "ReplaySetupError", "message": str(exc)}
        return None, envelope(marker, {"status": "error", "error": error})
    return InterpreterSession(marker, tools), envelope(marker, {"status": "ready"})

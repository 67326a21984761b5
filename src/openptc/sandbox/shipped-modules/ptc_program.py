"""How a model's program is compiled, run and described: one module for the runtime and the harness.

Both the live runtime (``runtime.py``, over the bridge) and the replay harness
(``managed/harness.py``, in interpreters that cannot call back) run model-written programs, and a
program must behave the same under either: the same tool errors, argument binding and encoding,
``asyncio.run`` rewriting, output cap, traceback trimming and notices. So this module holds them,
and both ship it under its own top-level name, ``ptc_program``:

- the runtime imports it: ``bundle.py`` compiles it to ``ptc_program.pyc`` beside
  ``ptc_runtime.pyc``, and the Docker image carries both, in the directory put on ``sys.path``;
- the harness is shipped as source text, with this module's whole source in front of its own.

Why the directory's name has a hyphen: it is no package, so this file has no ``openptc`` name at
all. mypy finds it at the top of its own directory and checks it, and the runtime's and the
harness's imports of it, as ``ptc_program``, the name it has where it runs; and the contract
that runtime and harness import nothing from ``openptc`` stays true, not worked around.

Standard library only and CPython >= 3.10 (the harness's floor). No ``from __future__`` import:
in the shipped harness it would not be the first statement; annotations here are evaluated.
"""

import ast
import asyncio
import builtins
import collections
import inspect
import io
import json
import linecache
import sys
import traceback
from typing import Any

PROGRAM_PREFIX = "<program"


class ToolError(Exception):
    """A tool failed on the host; the message says why. Catch it to recover in the program."""


class ToolArgumentError(ToolError, ValueError):
    """The host rejected the arguments of a tool call before running the tool."""


# Shown as plain ``ToolError: ...`` in tracebacks, as if built in, not ``ptc_program.ToolError``.
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


class ToolGroup:
    """The tools of one group (an MCP server, say), reached as ``await group.tool(...)``.

    A tool named ``"group.tool"`` on the host lives here; asking for a tool the group does not
    have says which ones it has.
    """

    def __init__(self, name: str) -> None:
        self._group_name = name

    def _tool_names(self) -> list[str]:
        return sorted(k for k in vars(self) if not k.startswith("_"))

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise AttributeError(
            f"{self._group_name} has no tool {attr!r}; its tools are: "
            + (", ".join(self._tool_names()) or "none")
        )

    def __repr__(self) -> str:
        return f"<tools of {self._group_name}: {', '.join(self._tool_names())}>"


def grouped(functions: dict[str, Any]) -> dict[str, Any]:
    """Tool functions by the names a program uses: ``"a.b"`` becomes ``b`` of the group ``a``."""
    names: dict[str, Any] = {}
    for name, function in functions.items():
        group, dot, tool = name.partition(".")
        if not dot:
            names[name] = function
            continue
        holder = names.get(group)
        if not isinstance(holder, ToolGroup):
            holder = names[group] = ToolGroup(group)
        setattr(holder, tool, function)
    return names


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

"""Tools: plain Python functions that a model may call, directly or from a sandboxed program.

A ``Tool`` is built once from the function's type hints and docstring (with pydantic) and carries
what every path needs: the JSON Schema for direct tool calling, a validator that turns a model's
JSON arguments into typed values (a bad call fails with a message the model can act on), the
conversion of results back to plain JSON, and what ``openptc.stubs`` needs to render the Python
stub that tells a model writing code how to call the tool and what shape its result has.

A tool whose schemas already exist (an MCP server's, an OpenAPI operation's) is made with
``Tool.from_schema``: the stub is rendered from the schemas and the arguments are checked with
``jsonschema`` (see ``openptc.schema_tools``).
"""

from __future__ import annotations

import asyncio
import copy
import functools
import inspect
import keyword
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, ParamSpec, Protocol, TypeVar
from typing import overload as _overload

from pydantic import TypeAdapter
from pydantic_core import PydanticSerializationError, to_jsonable_python

from openptc import stubs
from openptc.function_tools import FunctionBinding
from openptc.sandbox.base import ToolCallError, ToolSignature
from openptc.schema_tools import SchemaBinding

__all__ = ["CALLERS", "Caller", "Tool", "ToolCallError", "Toolbox", "tool"]

P = ParamSpec("P")
R = TypeVar("R")
Caller = Literal["direct", "code"]
CALLERS: frozenset[str] = frozenset({"direct", "code"})


class _Binding(Protocol):
    """How a tool's arguments are checked and passed to it, and what its stub shows."""

    def bind(self, tool: str, arguments: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """Checked arguments as the function's positionals and keywords, or ``ToolCallError``."""
        ...

    def stub(self, tool: str, description: str) -> stubs.FunctionStub: ...


@dataclass(frozen=True, eq=False)
class Tool(Generic[P, R]):
    """A function plus what a model needs to call it; calling the tool calls the function.

    Made by ``@tool`` from a typed function, or by ``Tool.from_schema`` from JSON Schemas.
    """

    fn: Callable[P, R]
    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    callers: frozenset[str]
    params: tuple[str, ...]
    _binding: _Binding = field(repr=False)
    _returns: TypeAdapter[Any] | None = field(repr=False)  # None: results via to_jsonable_python
    _in_thread: bool = field(default=True, repr=False)  # a plain ``def`` runs in a worker thread

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    @classmethod
    def from_schema(
        cls,
        name: str,
        description: str,
        input_schema: dict[str, Any],
        call: Callable[[dict[str, Any]], Awaitable[Any]],
        *,
        output_schema: dict[str, Any] | None = None,
        callers: Iterable[str] | str = ("direct", "code"),
    ) -> Tool[[dict[str, Any]], Awaitable[Any]]:
        """A tool described by JSON Schemas and run by ``call(arguments)``.

        ``name`` may be dotted, ``"group.tool"``: a program then calls ``await group.tool(...)``
        and the stubs show the group as a class. ``input_schema`` is the JSON Schema of the
        arguments object; every call is validated against it on the host (``jsonschema``) and
        ``call`` gets the arguments as one dict. ``call`` is awaited on the event loop, so it must
        not block (use ``@tool`` on a plain ``def`` for blocking code). ``output_schema``, if
        given, is the shape of the result that the stub shows. Raises ``ValueError`` for a name
        a program cannot call or a schema that is not a JSON Schema of an object.
        """
        _check_name(name)
        if not callable(call):
            raise TypeError(f"tool {name}: call must be an async function of the arguments dict")
        input_schema = copy.deepcopy(input_schema)
        output_schema = copy.deepcopy(output_schema)
        binding = SchemaBinding.build(name, input_schema, output_schema)
        return Tool(
            fn=call,
            name=name,
            description=description or "",  # MCP tools may have none
            input_schema=input_schema,
            output_schema=output_schema,
            callers=_callers(name, callers),
            params=binding.params,
            _binding=binding,
            _returns=None,
            _in_thread=False,
        )

    def signature(self) -> ToolSignature:
        return ToolSignature(name=self.name, params=self.params)

    def spec(self) -> dict[str, Any]:
        """The tool as offered for direct tool calling (providers allow no dot in a name, so a
        grouped tool is offered as ``group__tool``; ``Toolbox.call`` takes either)."""
        return {
            "name": wire_name(self.name),
            "description": self.description,
            "input_schema": self.input_schema,
        }

    @property
    def stub(self) -> stubs.FunctionStub:
        """What this tool's Python stub is rendered from."""
        return self._binding.stub(self.name, self.description)

    def render_stub(self, *, imports: bool = True) -> str:
        """This tool alone as Python source, with the TypedDicts it uses."""
        return stubs.render_stubs([self.stub], imports=imports)

    async def invoke(self, arguments: Mapping[str, Any]) -> Any:
        """Validate a model's arguments, run the function, return its result as plain JSON."""
        args, kwargs = self._binding.bind(self.name, arguments)
        try:
            if inspect.iscoroutinefunction(self.fn):
                result = await self.fn(*args, **kwargs)
            elif not self._in_thread:  # from_schema: ``call`` returns an awaitable
                result = self.fn(*args, **kwargs)
                if inspect.isawaitable(result):
                    result = await result
            else:  # sync tools run in a thread so that parallel calls do not block the loop
                result = await asyncio.to_thread(self.fn, *args, **kwargs)
                if inspect.isawaitable(result):  # e.g. a callable object with ``async __call__``
                    result = await result
        except ToolCallError:
            raise
        except Exception as e:
            raise ToolCallError(f"{type(e).__name__}: {e}", kind="ToolError") from e
        return self._to_json(result)

    def _to_json(self, result: Any) -> Any:
        try:
            if self._returns is not None:
                return self._returns.dump_python(result, mode="json", warnings=False)
            return to_jsonable_python(result)
        except (PydanticSerializationError, ValueError, TypeError) as e:
            what = type(result).__name__
            msg = f"{self.name}() returned a {what} value that cannot be converted to JSON: {e}"
            raise ToolCallError(msg, kind="ToolError") from e


@_overload
def tool(fn: Callable[P, R], /) -> Tool[P, R]: ...


@_overload
def tool(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    callers: Iterable[str] | str = ("direct", "code"),
) -> Callable[[Callable[P, R]], Tool[P, R]]: ...


def tool(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    callers: Iterable[str] | str = ("direct", "code"),
) -> Tool[P, R] | Callable[[Callable[P, R]], Tool[P, R]]:
    """Make a function a tool; use bare (``@tool``) or with options (``@tool(name=...)``).

    The parameters' type hints and the docstring (its ``Args:`` section) tell the model how to
    call it; the return type tells it the shape of the result. ``name`` may be dotted,
    ``"group.tool"`` (a program calls ``await group.tool(...)``). ``callers`` says who may call
    it: ``"direct"`` (classic tool calling), ``"code"`` (from a program in the sandbox), or both.

    ``async def`` tools run on the event loop and must not block it. Plain ``def`` tools run in
    worker threads (``asyncio.to_thread``: the event loop's default executor, which allows
    ``min(32, CPUs + 4)`` threads unless the application sets another), so the calls a program
    makes at once (``asyncio.gather``) run concurrently, each in its own thread: a plain ``def``
    tool must be thread-safe. A ``functools.partial`` works too (the arguments it binds are not
    shown to the model); a function that takes ``**kwargs`` or one untyped arguments dict is
    refused: use ``Tool.from_schema`` for a tool whose arguments a JSON Schema describes.
    """

    def wrap(f: Callable[P, R]) -> Tool[P, R]:
        return _build(f, name, description, callers)

    return wrap if fn is None else wrap(fn)


def _build(
    fn: Callable[P, R], name: str | None, description: str | None, callers: Iterable[str] | str
) -> Tool[P, R]:
    if isinstance(fn, Tool):
        if isinstance(fn._binding, SchemaBinding):  # re-made from its schemas, with the options
            return Tool.from_schema(  # type: ignore[return-value]
                name or fn.name,
                fn.description if description is None else description,
                fn.input_schema,
                fn.fn,
                output_schema=fn.output_schema,
                callers=callers,
            )
        fn = fn.fn
    inner: Any = fn.func if isinstance(fn, functools.partial) else fn  # names and documents it
    name = name or str(getattr(inner, "__name__", ""))
    _check_name(name)
    allowed = _callers(name, callers)
    binding = FunctionBinding.build(name, fn)
    return Tool(
        fn=fn,
        name=name,
        description=description if description is not None else binding.summary,
        input_schema=binding.input_schema,
        output_schema=binding.output_schema,
        callers=allowed,
        params=binding.params,
        _binding=binding,
        _returns=binding.returns,
    )


def _check_name(name: str) -> None:
    """A name a program can call: an identifier, or ``group.tool`` (two identifiers)."""
    parts = name.split(".") if isinstance(name, str) else [""]
    if len(parts) > 2 or not all(p.isidentifier() and not keyword.iskeyword(p) for p in parts):
        raise ValueError(
            f"tool name {name!r} is not a Python identifier or 'group.tool' (two identifiers); "
            "pass name=..."
        )


def _callers(name: str, callers: Iterable[str] | str) -> frozenset[str]:
    allowed = frozenset([callers] if isinstance(callers, str) else callers)
    if not allowed or not allowed <= CALLERS:
        raise ValueError(f"tool {name}: callers must be a non-empty subset of {sorted(CALLERS)}")
    return allowed


def wire_name(name: str) -> str:
    """A tool's name as model APIs accept it (``^[a-zA-Z0-9_-]{1,64}$``): no dot."""
    return name.replace(".", "__")


class Toolbox:
    """An ordered set of uniquely named tools; the ``ToolHost`` that sandboxes call into.

    Tools named ``group.tool`` form groups; ``groups`` gives a group's description, which its
    class in the stubs shows as its docstring. A group's name cannot also be a tool's name.
    """

    def __init__(
        self,
        tools: Iterable[Tool[..., Any] | Callable[..., Any]] = (),
        *,
        groups: Mapping[str, str] | None = None,
    ) -> None:
        self._tools: dict[str, Tool[..., Any]] = {}
        self._by_wire_name: dict[str, str] = {}
        # Goes up whenever the set of tools changes (an MCP server's list did): whoever rendered
        # stubs from this toolbox renders them again.
        self.version = 0
        self.groups: dict[str, str] = dict(groups or {})
        group_of: dict[str, str] = {}  # group -> its first tool
        for item in tools:
            t = item if isinstance(item, Tool) else tool(item)
            if t.name in self._tools:
                raise ValueError(f"duplicate tool name {t.name!r}")
            group, dot, _ = t.name.partition(".")
            other = (group if group in self._tools else None) if dot else group_of.get(t.name)
            if other is not None:
                raise ValueError(
                    f"tool names {other!r} and {t.name!r} clash: a program cannot have "
                    f"{group!r} as both a tool and a group of tools"
                )
            if dot:
                group_of.setdefault(group, t.name)
            wire = wire_name(t.name)
            if wire != t.name and (wire in self._tools or wire in self._by_wire_name):
                raise ValueError(f"tool names {t.name!r} and {wire!r} clash in direct calling")
            self._by_wire_name[wire] = t.name
            self._tools[t.name] = t

    def __iter__(self) -> Iterator[Tool[..., Any]]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __getitem__(self, name: str) -> Tool[..., Any]:
        try:
            return self._tools[name]
        except KeyError:
            raise KeyError(self._unknown(name)) from None

    def __repr__(self) -> str:
        return f"Toolbox({list(self._tools)!r})"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._tools)

    def for_caller(self, caller: Caller) -> Toolbox:
        """Only the tools this caller may use (``allowed_callers`` semantics)."""
        if caller not in CALLERS:
            raise ValueError(f"caller must be one of {sorted(CALLERS)}, got {caller!r}")
        return Toolbox((t for t in self if caller in t.callers), groups=self.groups)

    def signatures(self) -> list[ToolSignature]:
        return [t.signature() for t in self]

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        """Run one call for a program or a model; raises ``ToolCallError`` on any failure.

        A model calling directly names a grouped tool by its wire name (``group__tool``)."""
        name = self._by_wire_name.get(name, name)
        if name not in self._tools:
            raise ToolCallError(self._unknown(name))
        return await self._tools[name].invoke(arguments)

    def render_stubs(self, *, imports: bool = True) -> str:
        """All tools as Python stubs, each structured type defined once, before its first use."""
        return stubs.render_stubs((t.stub for t in self), imports=imports, groups=self.groups)

    def specs(self) -> list[dict[str, Any]]:
        """``{"name", "description", "input_schema"}`` per tool, for direct tool calling."""
        return [t.spec() for t in self]

    def _unknown(self, name: str) -> str:
        return f"unknown tool {name!r}; available tools: {', '.join(self._tools) or '(none)'}"

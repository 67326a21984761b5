"""Tools: plain Python functions that a model may call, directly or from a sandboxed program.

A ``Tool`` is built once from the function's type hints and docstring (with pydantic) and carries
what every path needs: the JSON Schema for direct tool calling, a validator that turns a model's
JSON arguments into typed values (a bad call fails with a message the model can act on), the
conversion of results back to plain JSON, and what ``openptc.stubs`` needs to render the Python
stub that tells a model writing code how to call the tool and what shape its result has.
"""

from __future__ import annotations

import asyncio
import inspect
import keyword
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, ParamSpec, TypeVar
from typing import overload as _overload

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model
from pydantic_core import PydanticSerializationError, to_jsonable_python

from openptc import stubs
from openptc.sandbox.base import ToolCallError, ToolSignature

P = ParamSpec("P")
R = TypeVar("R")
Caller = Literal["direct", "code"]
CALLERS: frozenset[str] = frozenset({"direct", "code"})

_EMPTY: Any = inspect.Parameter.empty
_ARG_ERROR = "ToolArgumentError"
_ARGS_HEADERS = {"args:", "arguments:", "parameters:", "params:"}


@dataclass(frozen=True)
class _Param:
    """One parameter of a tool function, with its resolved annotation and description."""

    param: inspect.Parameter
    annotation: Any
    description: str | None

    @property
    def required(self) -> bool:
        return self.param.default is _EMPTY


@dataclass(frozen=True, eq=False)
class Tool(Generic[P, R]):
    """A function plus what a model needs to call it; calling the tool calls the function."""

    fn: Callable[P, R]
    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    callers: frozenset[str]
    params: tuple[str, ...]
    _param_info: tuple[_Param, ...] = field(repr=False)
    _return_type: Any = field(repr=False)  # inspect.Parameter.empty if none
    _args_model: type[BaseModel] = field(repr=False)
    _returns: TypeAdapter[Any] | None = field(repr=False)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def signature(self) -> ToolSignature:
        return ToolSignature(name=self.name, params=self.params)

    def spec(self) -> dict[str, Any]:
        """The tool as offered for direct tool calling."""
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
        }

    @property
    def stub(self) -> stubs.FunctionStub:
        """What this tool's Python stub is rendered from."""
        return stubs.FunctionStub(
            name=self.name,
            description=self.description,
            params=tuple(
                stubs.StubParam(
                    name=p.param.name,
                    annotation=p.annotation,
                    description=p.description,
                    default=p.param.default,
                    keyword_only=p.param.kind is inspect.Parameter.KEYWORD_ONLY,
                )
                for p in self._param_info
            ),
            returns=self._return_type,
        )

    def render_stub(self, *, imports: bool = True) -> str:
        """This tool alone as Python source, with the TypedDicts it uses."""
        return stubs.render_stubs([self.stub], imports=imports)

    async def invoke(self, arguments: Mapping[str, Any]) -> Any:
        """Validate a model's arguments, run the function, return its result as plain JSON."""
        args, kwargs = self._bind(arguments)
        try:
            if inspect.iscoroutinefunction(self.fn):
                result = await self.fn(*args, **kwargs)
            else:  # sync tools run in a thread so that parallel calls do not block the loop
                result = await asyncio.to_thread(self.fn, *args, **kwargs)
                if inspect.isawaitable(result):  # e.g. a callable object with ``async __call__``
                    result = await result
        except ToolCallError:
            raise
        except Exception as e:
            raise ToolCallError(f"{type(e).__name__}: {e}", kind="ToolError") from e
        return self._to_json(result)

    def _bind(self, arguments: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """Check names first (clearer than pydantic's wording), then types, via the args model."""
        if not isinstance(arguments, Mapping):
            kind = type(arguments).__name__
            raise ToolCallError(
                f"{self.name}(): arguments must be an object, got {kind}", kind=_ARG_ERROR
            )
        problems = []
        if unknown := [k for k in arguments if k not in self.params]:
            known = f"parameters are {', '.join(self.params)}" if self.params else "it takes none"
            problems.append(f"unexpected {_plural('argument', unknown)}; {known}")
        if missing := [
            p.param.name for p in self._param_info if p.required and p.param.name not in arguments
        ]:
            problems.append(f"missing required {_plural('argument', missing)}")
        if problems:
            raise ToolCallError(f"{self.name}(): " + "; ".join(problems), kind=_ARG_ERROR)
        try:
            validated = self._args_model.model_validate(dict(arguments))
        except ValidationError as e:
            details = "; ".join(_describe_error(err) for err in e.errors(include_url=False))
            raise ToolCallError(f"{self.name}(): {details}", kind=_ARG_ERROR) from None
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for i, p in enumerate(self._param_info):
            value = getattr(validated, f"p{i}")
            if p.param.kind is inspect.Parameter.POSITIONAL_ONLY:
                args.append(value)  # always passed (default filled in) so positions stay right
            elif p.param.name in arguments:  # omitted ones keep the function's own default
                kwargs[p.param.name] = value
        return args, kwargs

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

    ``callers`` says who may call it: ``"direct"`` (classic tool calling), ``"code"`` (from a
    program in the sandbox), or both.
    """

    def wrap(f: Callable[P, R]) -> Tool[P, R]:
        return _build(f, name, description, callers)

    return wrap if fn is None else wrap(fn)


def _build(
    fn: Callable[P, R], name: str | None, description: str | None, callers: Iterable[str] | str
) -> Tool[P, R]:
    if isinstance(fn, Tool):
        fn = fn.fn
    name = name or str(getattr(fn, "__name__", ""))
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"tool name {name!r} is not a Python identifier; pass name=...")
    allowed = frozenset([callers] if isinstance(callers, str) else callers)
    if not allowed or not allowed <= CALLERS:
        raise ValueError(f"tool {name}: callers must be a non-empty subset of {sorted(CALLERS)}")
    try:  # eval_str resolves ``from __future__ import annotations`` hints
        sig = inspect.signature(fn, eval_str=True)
    except (NameError, TypeError, ValueError) as e:
        raise TypeError(f"tool {name}: cannot read the signature: {e}") from e
    summary, arg_docs = _parse_docstring(inspect.getdoc(fn) or "")
    info = tuple(_param(name, p, arg_docs.get(p.name)) for p in sig.parameters.values())
    args_model = _args_model(name, info)
    returns = _return_adapter(sig.return_annotation)
    return Tool(
        fn=fn,
        name=name,
        description=description if description is not None else summary,
        input_schema=_clean_schema(args_model.model_json_schema(by_alias=True)),
        output_schema=_clean_schema(returns.json_schema(mode="serialization")) if returns else None,
        callers=allowed,
        params=tuple(p.param.name for p in info),
        _param_info=info,
        _return_type=sig.return_annotation,
        _args_model=args_model,
        _returns=returns,
    )


def _param(tool_name: str, p: inspect.Parameter, doc: str | None) -> _Param:
    if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
        raise TypeError(f"tool {tool_name}: *args and **kwargs are not supported ({p.name})")
    annotation = Any if p.annotation is _EMPTY else p.annotation
    return _Param(p, annotation, doc or stubs.annotated_description(annotation))


def _args_model(tool_name: str, info: tuple[_Param, ...]) -> type[BaseModel]:
    """One pydantic model per tool; internal field names, aliases = parameter names.

    Aliases keep parameter names such as ``schema`` or ``model_id`` from clashing with pydantic.
    """
    fields: dict[str, Any] = {}
    for i, p in enumerate(info):
        default = ... if p.required else p.param.default
        fields[f"p{i}"] = (
            p.annotation,
            Field(default, alias=p.param.name, description=p.description),
        )
    try:
        return create_model(
            f"{tool_name}_arguments", __config__=ConfigDict(extra="forbid"), **fields
        )
    except Exception as e:
        raise TypeError(f"tool {tool_name}: unsupported parameter type: {e}") from e


def _return_adapter(annotation: Any) -> TypeAdapter[Any] | None:
    """None when unannotated or not describable (results then go through to_jsonable_python)."""
    if annotation is _EMPTY:
        return None
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(annotation)
        adapter.json_schema(mode="serialization")
    except Exception:
        return None
    return adapter


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into its description and its ``Args:`` entries."""
    kept: list[str] = []
    args: dict[str, str] = {}
    lines = doc.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.strip().lower() not in _ARGS_HEADERS:
            kept.append(line)
            continue
        header_indent, entry_indent, current = _indent(line), None, None
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > header_indent):
            text, indent = lines[i].strip(), _indent(lines[i])
            i += 1
            if entry_indent is None and text:
                entry_indent = indent
            m = re.match(r"\**(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$", text)
            if m and indent == entry_indent:
                current = m.group(1)
                args[current] = m.group(2)
            elif text and current:
                args[current] = f"{args[current]} {text}".strip()
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip(), args


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _clean_schema(node: Any, key: str = "") -> Any:
    """Drop pydantic's generated ``title``s; keep data (defaults, enums) and property names."""
    if isinstance(node, list):
        return [_clean_schema(x) for x in node]
    if not isinstance(node, dict) or key in ("default", "examples", "enum", "const"):
        return node
    if key in ("properties", "$defs", "patternProperties"):
        return {name: _clean_schema(schema) for name, schema in node.items()}
    return {
        k: _clean_schema(v, k) for k, v in node.items() if not (k == "title" and isinstance(v, str))
    }


def _describe_error(err: Any) -> str:
    loc = err["loc"]
    path = "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in loc).lstrip(".")
    text = f"argument '{path}': {err['msg']}"
    if err["type"] != "missing":
        got = repr(err["input"])
        text += f" (got {got if len(got) <= 80 else got[:77] + '...'})"
    return text


def _plural(word: str, names: list[str]) -> str:
    return f"{word}{'s' if len(names) > 1 else ''} " + ", ".join(repr(n) for n in names)


class Toolbox:
    """An ordered set of uniquely named tools; the ``ToolHost`` that sandboxes call into."""

    def __init__(self, tools: Iterable[Tool[..., Any] | Callable[..., Any]] = ()) -> None:
        self._tools: dict[str, Tool[..., Any]] = {}
        for item in tools:
            t = item if isinstance(item, Tool) else tool(item)
            if t.name in self._tools:
                raise ValueError(f"duplicate tool name {t.name!r}")
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
        return Toolbox(t for t in self if caller in t.callers)

    def signatures(self) -> list[ToolSignature]:
        return [t.signature() for t in self]

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        """Run one call for a program or a model; raises ``ToolCallError`` on any failure."""
        if name not in self._tools:
            raise ToolCallError(self._unknown(name))
        return await self._tools[name].invoke(arguments)

    def render_stubs(self, *, imports: bool = True) -> str:
        """All tools as Python stubs, each structured type defined once, before its first use."""
        return stubs.render_stubs((t.stub for t in self), imports=imports)

    def specs(self) -> list[dict[str, Any]]:
        """``{"name", "description", "input_schema"}`` per tool, for direct tool calling."""
        return [t.spec() for t in self]

    def _unknown(self, name: str) -> str:
        return f"unknown tool {name!r}; available tools: {', '.join(self._tools) or '(none)'}"

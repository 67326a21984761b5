"""Tools: plain Python functions that a model may call, directly or from a sandboxed program.

A ``Tool`` is built once from the function's type hints and docstring (with pydantic) and carries
what every path needs: the JSON Schema for direct tool calling, a validator that turns a model's
JSON arguments into typed values (a bad call fails with a message the model can act on), the
conversion of results back to plain JSON, and a Python stub that tells a model writing code how to
call the tool and what shape its result has.
"""

from __future__ import annotations

import asyncio
import collections.abc as abc
import dataclasses
import enum
import inspect
import json
import keyword
import re
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, Literal, ParamSpec, TypeVar, get_args, get_origin
from typing import overload as _overload

import typing_extensions
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model
from pydantic_core import PydanticSerializationError, PydanticUndefined, to_jsonable_python

from openptc.sandbox.base import ToolCallError, ToolSignature

P = ParamSpec("P")
R = TypeVar("R")
Caller = Literal["direct", "code"]
CALLERS: frozenset[str] = frozenset({"direct", "code"})

_EMPTY: Any = inspect.Parameter.empty
_ARG_ERROR = "ToolArgumentError"
_ARGS_HEADERS = {"args:", "arguments:", "parameters:", "params:"}
_ARRAYS = {list, set, frozenset, tuple, abc.Sequence, abc.MutableSequence, abc.Set, abc.Iterable}
_ARRAYS |= {abc.Collection, abc.MutableSet}
_MAPPINGS = {dict, abc.Mapping, abc.MutableMapping}
_REQUIRED_WRAPPERS = {typing.Required, typing.NotRequired}
_REQUIRED_WRAPPERS |= {typing_extensions.Required, typing_extensions.NotRequired}
_JSON_TYPES = {"string": "str", "integer": "int", "number": "float", "boolean": "bool"}
_JSON_TYPES |= {"array": "list", "object": "dict", "null": "None"}
_FORMAT_NOTES = {"date": "ISO 8601 date", "date-time": "ISO 8601 datetime"}
_FORMAT_NOTES |= {"time": "ISO 8601 time", "duration": "ISO 8601 duration"}
_SECTIONS = re.compile(r"^(?=(?:Returns|Yields|Raises|Examples?|Notes?):[ \t]*$)", re.M)


@dataclass(frozen=True)
class _Param:
    """One parameter of a tool function, with its resolved annotation and description."""

    param: inspect.Parameter
    annotation: Any
    description: str | None

    @property
    def required(self) -> bool:
        return bool(self.param.default is _EMPTY)


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
    _return_type: Any = field(repr=False)
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

    def render_stub(self, *, imports: bool = True) -> str:
        """This tool alone as Python source, with the TypedDicts it uses."""
        return _StubWriter().render([self], imports=imports)

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
    return _Param(p, annotation, doc or _annotated_description(annotation))


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
            entry_indent = entry_indent if entry_indent is not None or not text else indent
            m = re.match(r"\**(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$", text)
            if m and indent == entry_indent:
                current = m.group(1)
                args[current] = m.group(2)
            elif text and current:
                args[current] = f"{args[current]} {text}".strip()
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip(), args


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _annotated_description(annotation: Any) -> str | None:
    """A ``Field(description=...)`` given in ``Annotated[...]`` metadata, if any."""
    if get_origin(annotation) is Annotated:
        for meta in annotation.__metadata__:
            if isinstance(getattr(meta, "description", None), str):
                return str(meta.description)
    return None


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


def _py_literal(value: Any) -> str:
    """A value as Python source, as the model would see it after the JSON crossing."""
    try:
        value = to_jsonable_python(value)
    except PydanticSerializationError:
        return "..."
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_py_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{_py_literal(k)}: {_py_literal(v)}" for k, v in value.items()) + "}"
        )
    return repr(value)


def _or_any(annotation: Any) -> Any:
    return Any if annotation is PydanticUndefined else annotation


def _is_struct(tp: Any) -> bool:
    """Types that cross as JSON objects: models, dataclasses, TypedDicts."""
    is_class = isinstance(tp, type)
    is_object = is_class and (issubclass(tp, BaseModel) or dataclasses.is_dataclass(tp))
    return is_object or typing_extensions.is_typeddict(tp)


def _struct_fields(cls: Any) -> list[tuple[str, Any, bool, str | None]]:
    """(key, annotation, required, description) of each field a JSON object of ``cls`` has."""
    pyd_fields = getattr(cls, "__pydantic_fields__", None)  # models and pydantic dataclasses
    if isinstance(pyd_fields, dict):
        fields = [(n, f.annotation, f.is_required(), f.description) for n, f in pyd_fields.items()]
        computed = getattr(cls, "__pydantic_computed_fields__", {})
        fields += [(n, _or_any(c.return_type), True, c.description) for n, c in computed.items()]
        return [f for f in fields if not getattr(pyd_fields.get(f[0]), "exclude", False)]
    hints = typing.get_type_hints(cls, include_extras=True)
    if typing_extensions.is_typeddict(cls):
        required = cls.__required_keys__
        return [(n, t, n in required, _annotated_description(t)) for n, t in hints.items()]
    return [
        (
            f.name,
            hints.get(f.name, Any),
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
            f.metadata.get("description") or _annotated_description(hints.get(f.name)),
        )
        for f in dataclasses.fields(cls)
    ]


class _StubWriter:
    """Renders tools as Python stubs; each structured type becomes one TypedDict, defined once.

    Results cross into the sandbox as JSON, so models, dataclasses and TypedDicts all become
    TypedDicts, enums become ``Literal``s of their values and dates become strings.
    """

    def __init__(self) -> None:
        self._names: dict[Any, str] = {}
        self._blocks: list[str] = []
        self._typing: set[str] = set()

    def render(self, tools: Iterable[Tool[..., Any]], *, imports: bool = True) -> str:
        functions = [self._function(t) for t in tools]
        names = ", ".join(sorted(self._typing))
        header = [f"from typing import {names}"] if imports and names else []
        return "\n\n".join([*header, *self._blocks, *functions]) + "\n"

    def expr(self, tp: Any, notes: list[str]) -> str:
        """``tp`` as a type expression; anything a comment should add goes to ``notes``."""
        origin, args = get_origin(tp), get_args(tp)
        if origin is Annotated or origin in _REQUIRED_WRAPPERS:
            return self.expr(args[0], notes)
        if tp is Any or tp is _EMPTY or isinstance(tp, TypeVar):
            self._typing.add("Any")
            return "Any"
        if tp is None or tp is type(None):
            return "None"
        if tp in (str, int, float, bool):
            return str(tp.__name__)
        if origin is Literal:
            return self._literal(args)
        if origin in (typing.Union, types.UnionType):
            return " | ".join(dict.fromkeys(self.expr(a, notes) for a in args))
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return self._literal([m.value for m in tp])
        if _is_struct(tp):
            return self._struct(tp)
        if hasattr(tp, "__supertype__"):  # NewType
            return self.expr(tp.__supertype__, notes)
        if tp in _MAPPINGS or origin in _MAPPINGS:
            return self._mapping(args, notes)
        if tp in _ARRAYS or origin in _ARRAYS:
            if origin is tuple and args and args[-1] is not Ellipsis:
                return f"list[{' | '.join(dict.fromkeys(self.expr(a, notes) for a in args))}]"
            return f"list[{self.expr(args[0], notes)}]" if args else "list"
        return self._from_schema(tp, notes)

    def _literal(self, values: Iterable[Any]) -> str:
        self._typing.add("Literal")
        return f"Literal[{', '.join(_py_literal(v) for v in values)}]"

    def _mapping(self, args: tuple[Any, ...], notes: list[str]) -> str:
        if not args:
            return "dict"
        key = self.expr(args[0], notes)  # JSON object keys are strings
        key = key if key == "str" or key.startswith("Literal[") else "str"
        return f"dict[{key}, {self.expr(args[1], notes)}]"

    def _from_schema(self, tp: Any, notes: list[str]) -> str:
        """Types pydantic serializes as JSON scalars (dates, UUIDs, Decimals): from their schema."""
        try:
            schema = TypeAdapter(tp).json_schema(mode="serialization")
        except Exception:
            schema = {}
        if fmt := schema.get("format"):
            notes.append(_FORMAT_NOTES.get(fmt, fmt))
        if schema.get("type") not in _JSON_TYPES:
            self._typing.add("Any")
        return _JSON_TYPES.get(schema.get("type", ""), "Any")

    def _struct(self, cls: Any) -> str:
        if cls in self._names:
            return self._names[cls]
        base = re.sub(r"\W+", "_", cls.__name__).strip("_") or "Struct"
        name, n = base, 2
        while name in self._names.values():
            name, n = f"{base}{n}", n + 1
        self._names[cls] = name  # before the fields, so that recursive types refer to it
        self._typing.add("TypedDict")
        fields = [self._field(*f) for f in _struct_fields(cls)]  # dependencies are emitted first
        if all(key.isidentifier() and not keyword.iskeyword(key) for key, _, _ in fields):
            body = [f"    {key}: {tp}{comment}" for key, tp, comment in fields] or ["    pass"]
            self._blocks.append(f"class {name}(TypedDict):\n" + "\n".join(body))
        else:  # keys that are not identifiers need the functional syntax
            body = [f"    {json.dumps(key)}: {tp},{comment}" for key, tp, comment in fields]
            self._blocks.append(f'{name} = TypedDict("{name}", {{\n' + "\n".join(body) + "\n})")
        return name

    def _field(
        self, key: str, tp: Any, required: bool, description: str | None
    ) -> tuple[str, str, str]:
        notes: list[str] = []
        text = self.expr(tp, notes)
        if not required:
            self._typing.add("NotRequired")
            text = f"NotRequired[{text}]"
        comment = "; ".join([*notes, *([" ".join(description.split())] if description else [])])
        return key, text, f"  # {comment}" if comment else ""

    def _function(self, t: Tool[..., Any]) -> str:
        params: list[str] = []
        docs: list[str] = []
        for p in t._param_info:
            notes: list[str] = []
            text = f"{p.param.name}: {self.expr(p.annotation, notes)}"
            if p.param.kind is inspect.Parameter.KEYWORD_ONLY and "*" not in params:
                params.append("*")
            params.append(text if p.required else f"{text} = {_py_literal(p.param.default)}")
            if desc := " ".join([*(p.description or "").split(), *(f"({n})" for n in notes)]):
                docs.append(f"{p.param.name}: {desc}")
        ret_notes: list[str] = []
        ret = self.expr(t._return_type, ret_notes)
        head = f"async def {t.name}({', '.join(params)}) -> {ret}:"
        if len(head) > 100:
            head = (
                f"async def {t.name}(\n" + "".join(f"    {p},\n" for p in params) + f") -> {ret}:"
            )
        return head + "\n" + _docstring(t.description, docs, ret_notes)


def _docstring(description: str, args: list[str], return_notes: list[str]) -> str:
    """The body of a stub: its docstring (escaped so the stub always parses), or ``...``."""
    head, tail = ([*_SECTIONS.split(description, maxsplit=1), ""])[:2]  # Args before Returns:
    parts = [head.strip(), "Args:\n" + "\n".join(f"    {a}" for a in args) if args else ""]
    if notes := "; ".join(dict.fromkeys(return_notes)):
        if "Returns:\n" in tail:
            tail = tail.replace("Returns:\n", f"Returns:\n    ({notes})\n", 1)
        else:
            parts.append(f"Returns:\n    {notes}")
    text = "\n\n".join(p for p in [*parts, tail.strip()] if p)
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if not text:
        return "    ..."
    if text.endswith('"'):  # a quote right before the closing ones would end the string early
        text = text[:-1] + '\\"'
    lines = text.splitlines()
    if len(lines) == 1:
        return f'    """{text}"""'
    rest = "".join(f"\n    {line}" if line.strip() else "\n" for line in lines[1:])
    return f'    """{lines[0]}{rest}\n    """'


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
            raise KeyError(f"unknown tool {name!r}; available tools: {self._available()}") from None

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
            raise ToolCallError(f"unknown tool {name!r}; available tools: {self._available()}")
        return await self._tools[name].invoke(arguments)

    def render_stubs(self, *, imports: bool = True) -> str:
        """All tools as Python stubs, each structured type defined once, before its first use."""
        return _StubWriter().render(self, imports=imports)

    def specs(self) -> list[dict[str, Any]]:
        """``{"name", "description", "input_schema"}`` per tool, for direct tool calling."""
        return [t.spec() for t in self]

    def _available(self) -> str:
        return ", ".join(self._tools) or "(none)"

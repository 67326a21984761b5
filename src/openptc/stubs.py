"""Python stubs of tools: what a model writing code sees of the tools it may call.

Each tool becomes an ``async def`` with its signature and docstring, and each structured type it
takes or returns becomes one ``TypedDict``, defined once, before its first use. Results cross into
the sandbox as JSON, so models, dataclasses and TypedDicts all become TypedDicts, enums become
``Literal``s of their values and dates become strings (with a comment saying which format).
"""

from __future__ import annotations

import collections.abc as abc
import dataclasses
import enum
import inspect
import json
import keyword
import re
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

import typing_extensions
from pydantic import BaseModel, TypeAdapter
from pydantic_core import PydanticSerializationError, PydanticUndefined, to_jsonable_python

__all__ = ["FunctionStub", "StubParam", "annotated_description", "render_stubs"]

_EMPTY: Any = inspect.Parameter.empty
_ARRAYS = {list, set, frozenset, tuple, abc.Sequence, abc.MutableSequence, abc.Set, abc.Iterable}
_ARRAYS |= {abc.Collection, abc.MutableSet}
_MAPPINGS = {dict, abc.Mapping, abc.MutableMapping}
_JSON_TYPES = {"string": "str", "integer": "int", "number": "float", "boolean": "bool"}
_JSON_TYPES |= {"array": "list", "object": "dict", "null": "None"}
_FORMAT_NOTES = {"date": "ISO 8601 date", "date-time": "ISO 8601 datetime"}
_FORMAT_NOTES |= {"time": "ISO 8601 time", "duration": "ISO 8601 duration"}
_SECTIONS = re.compile(r"^(?=(?:Returns|Yields|Raises|Examples?|Notes?):[ \t]*$)", re.M)


@dataclass(frozen=True)
class StubParam:
    """One parameter as a stub shows it: its annotation, and its default unless required."""

    name: str
    annotation: Any  # a type; ``inspect.Parameter.empty`` when there is none
    description: str | None = None
    default: Any = _EMPTY  # ``inspect.Parameter.empty`` when the argument is required
    keyword_only: bool = False

    @property
    def required(self) -> bool:
        return self.default is _EMPTY


@dataclass(frozen=True)
class FunctionStub:
    """What a stub is rendered from: a tool's name, description, parameters and result type."""

    name: str
    description: str
    params: tuple[StubParam, ...]
    returns: Any  # a type; ``inspect.Parameter.empty`` when there is none


def render_stubs(functions: Iterable[FunctionStub], *, imports: bool = True) -> str:
    """The functions as Python source: the ``typing`` import, then TypedDicts, then the stubs."""
    return _StubWriter().render(functions, imports=imports)


def annotated_description(annotation: Any) -> str | None:
    """A ``Field(description=...)`` given in ``Annotated[...]`` metadata, if any."""
    if get_origin(annotation) is Annotated:
        for meta in annotation.__metadata__:
            if isinstance(getattr(meta, "description", None), str):
                return str(meta.description)
    return None


class _StubWriter:
    """One rendering: remembers the TypedDicts defined so far and the ``typing`` names used."""

    def __init__(self) -> None:
        self._names: dict[Any, str] = {}
        self._blocks: list[str] = []
        self._typing: set[str] = set()

    def render(self, functions: Iterable[FunctionStub], *, imports: bool) -> str:
        sources = [self._function(f) for f in functions]
        names = ", ".join(sorted(self._typing))
        header = [f"from typing import {names}"] if imports and names else []
        return "\n\n".join([*header, *self._blocks, *sources]) + "\n"

    def _expr(self, tp: Any, notes: list[str]) -> str:
        """``tp`` as a type expression; anything a comment should add goes to ``notes``."""
        origin, args = get_origin(tp), get_args(tp)
        if origin in (Annotated, typing.Required, typing.NotRequired):
            return self._expr(args[0], notes)
        if tp is Any or tp is _EMPTY or tp is PydanticUndefined or isinstance(tp, TypeVar):
            return self._typing_name("Any")
        if tp is None or tp is type(None):
            return "None"
        if tp in (str, int, float, bool):
            return str(tp.__name__)
        if origin is Literal:
            return self._literal(args)
        if origin in (typing.Union, types.UnionType):
            return self._union(args, notes)
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return self._literal([m.value for m in tp])
        if _is_struct(tp):
            return self._struct(tp)
        if hasattr(tp, "__supertype__"):  # NewType
            return self._expr(tp.__supertype__, notes)
        if tp in _MAPPINGS or origin in _MAPPINGS:
            return self._mapping(args, notes)
        if tp in _ARRAYS or origin in _ARRAYS:
            if origin is tuple and args and args[-1] is not Ellipsis:
                return f"list[{self._union(args, notes)}]"
            return f"list[{self._expr(args[0], notes)}]" if args else "list"
        return self._from_schema(tp, notes)

    def _typing_name(self, name: str) -> str:
        """A name from ``typing``, recorded for the import line."""
        self._typing.add(name)
        return name

    def _union(self, args: Iterable[Any], notes: list[str]) -> str:
        return " | ".join(dict.fromkeys(self._expr(a, notes) for a in args))

    def _literal(self, values: Iterable[Any]) -> str:
        return f"{self._typing_name('Literal')}[{', '.join(_py_literal(v) for v in values)}]"

    def _mapping(self, args: tuple[Any, ...], notes: list[str]) -> str:
        if not args:
            return "dict"
        key = self._expr(args[0], notes)  # JSON object keys are strings
        key = key if key == "str" or key.startswith("Literal[") else "str"
        return f"dict[{key}, {self._expr(args[1], notes)}]"

    def _from_schema(self, tp: Any, notes: list[str]) -> str:
        """Types pydantic serializes as JSON scalars (dates, UUIDs, Decimals): from their schema."""
        try:
            schema = TypeAdapter(tp).json_schema(mode="serialization")
        except Exception:
            schema = {}
        if fmt := schema.get("format"):
            notes.append(_FORMAT_NOTES.get(fmt, fmt))
        return _JSON_TYPES.get(schema.get("type", "")) or self._typing_name("Any")

    def _struct(self, cls: Any) -> str:
        if cls in self._names:
            return self._names[cls]
        base = re.sub(r"\W+", "_", cls.__name__).strip("_") or "Struct"
        name, n = base, 2
        while name in self._names.values():
            name, n = f"{base}{n}", n + 1
        self._names[cls] = name  # before the fields, so that recursive types refer to it
        self._typing_name("TypedDict")
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
        text = self._expr(tp, notes)
        if not required:
            text = f"{self._typing_name('NotRequired')}[{text}]"
        if description:
            notes.append(" ".join(description.split()))
        comment = "; ".join(notes)
        return key, text, f"  # {comment}" if comment else ""

    def _function(self, f: FunctionStub) -> str:
        params: list[str] = []
        docs: list[str] = []
        for p in f.params:
            notes: list[str] = []
            text = f"{p.name}: {self._expr(p.annotation, notes)}"
            if p.keyword_only and "*" not in params:
                params.append("*")
            params.append(text if p.required else f"{text} = {_py_literal(p.default)}")
            if desc := " ".join([*(p.description or "").split(), *(f"({n})" for n in notes)]):
                docs.append(f"{p.name}: {desc}")
        ret_notes: list[str] = []
        ret = self._expr(f.returns, ret_notes)
        head = f"async def {f.name}({', '.join(params)}) -> {ret}:"
        if len(head) > 100:
            head = (
                f"async def {f.name}(\n" + "".join(f"    {p},\n" for p in params) + f") -> {ret}:"
            )
        return head + "\n" + _docstring(f.description, docs, ret_notes)


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


def _is_struct(tp: Any) -> bool:
    """Types that cross as JSON objects: models, dataclasses, TypedDicts."""
    is_class = isinstance(tp, type)
    is_object = is_class and (issubclass(tp, BaseModel) or dataclasses.is_dataclass(tp))
    return is_object or typing_extensions.is_typeddict(tp)


def _struct_fields(cls: Any) -> list[tuple[str, Any, bool, str | None]]:
    """(key, annotation, required, description) of each field a JSON object of ``cls`` has."""
    pyd_fields = getattr(cls, "__pydantic_fields__", None)  # models and pydantic dataclasses
    if isinstance(pyd_fields, dict):
        computed = getattr(cls, "__pydantic_computed_fields__", {})
        return [
            *(
                (n, f.annotation, f.is_required(), f.description)
                for n, f in pyd_fields.items()
                if not f.exclude
            ),
            *((n, c.return_type, True, c.description) for n, c in computed.items()),
        ]
    hints = typing.get_type_hints(cls, include_extras=True)
    if typing_extensions.is_typeddict(cls):
        required = cls.__required_keys__
        return [(n, t, n in required, annotated_description(t)) for n, t in hints.items()]
    return [
        (
            f.name,
            hints.get(f.name, Any),
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
            f.metadata.get("description") or annotated_description(hints.get(f.name)),
        )
        for f in dataclasses.fields(cls)
    ]

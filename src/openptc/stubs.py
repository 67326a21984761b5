"""Python stubs of tools: what a model writing code sees of the tools it may call.

Each tool becomes an ``async def`` with its signature and docstring, and each structured type it
takes or returns becomes one ``TypedDict``, defined once, before its first use. Results cross into
the sandbox as JSON, so models, dataclasses and TypedDicts all become TypedDicts, enums become
``Literal``s of their values and dates become strings (with a comment saying which format).
Types given as JSON Schema (tools made from schemas) are rendered by ``openptc.schema_types`` with
the same conventions. Tools named ``group.tool`` are rendered as the ``async`` methods (without
``self``) of a class per group, the way a program calls them: ``await group.tool(...)``.
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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

import typing_extensions
from pydantic import BaseModel, TypeAdapter
from pydantic_core import PydanticSerializationError, PydanticUndefined, to_jsonable_python

from openptc.schema_types import JsonSchema, SchemaField, SchemaTypes, json_literal

__all__ = ["FunctionStub", "JsonSchema", "StubParam", "annotated_description", "render_stubs"]

_EMPTY: Any = inspect.Parameter.empty
_ARRAYS = {list, set, frozenset, tuple, abc.Sequence, abc.MutableSequence, abc.Set, abc.Iterable}
_ARRAYS |= {abc.Collection, abc.MutableSet}
_MAPPINGS = {dict, abc.Mapping, abc.MutableMapping}
_JSON_TYPES = {"string": "str", "integer": "int", "number": "float", "boolean": "bool"}
_JSON_TYPES |= {"array": "list", "object": "dict", "null": "None"}
_FORMAT_NOTES = {"date": "ISO 8601 date", "date-time": "ISO 8601 datetime"}
_FORMAT_NOTES |= {"time": "ISO 8601 time", "duration": "ISO 8601 duration"}
_SECTIONS = re.compile(r"^(?=(?:Returns|Yields|Raises|Examples?|Notes?):[ \t]*$)", re.M)
# Names a TypedDict must not take: what stubs use, and what every program's namespace holds.
_RESERVED = {"Any", "Literal", "NotRequired", "TypedDict", "list", "dict", "str", "int", "float"}
_RESERVED |= {"bool", "asyncio", "json", "ToolError", "ToolArgumentError"}


@dataclass(frozen=True)
class StubParam:
    """One parameter as a stub shows it: its annotation, and its default unless required.

    The annotation is a type, a ``JsonSchema``, or ``inspect.Parameter.empty``; a default of
    ``...`` shows an optional parameter whose default is not known (``x: int = ...``).
    """

    name: str
    annotation: Any
    description: str | None = None
    default: Any = _EMPTY  # ``inspect.Parameter.empty`` when the argument is required
    keyword_only: bool = False
    positional_only: bool = False  # a ``/`` follows it
    var_keyword: bool = False  # ``**name: annotation``

    @property
    def required(self) -> bool:
        return self.default is _EMPTY


@dataclass(frozen=True)
class FunctionStub:
    """What a stub is rendered from: a tool's name, description, parameters and result type.

    A name ``group.tool`` puts the stub into the class ``group``.
    """

    name: str
    description: str
    params: tuple[StubParam, ...]
    returns: Any  # a type or a ``JsonSchema``; ``inspect.Parameter.empty`` when there is none


def render_stubs(
    functions: Iterable[FunctionStub],
    *,
    imports: bool = True,
    groups: Mapping[str, str] | None = None,
) -> str:
    """The functions as Python source: the ``typing`` import, then TypedDicts, then the stubs.

    ``groups`` gives the docstring of each group's class (tools named ``group.tool``).
    """
    return _StubWriter().render(list(functions), imports=imports, groups=groups or {})


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
        self._names: dict[Any, str] = {}  # types, and keys of object schemas
        self._taken = set(_RESERVED)
        self._blocks: list[str] = []
        self._typing: set[str] = set()
        self._schemas = SchemaTypes(self)

    def render(
        self, functions: list[FunctionStub], *, imports: bool, groups: Mapping[str, str]
    ) -> str:
        self._taken |= {part for f in functions for part in f.name.split(".")}
        grouped: dict[str, list[str]] = {}  # by group ("" for ungrouped), in order of appearance
        order: list[str] = []
        for f in functions:
            group, _, _ = f.name.rpartition(".")
            if group not in grouped or not group:
                order.append(group)
            grouped.setdefault(group, []).append(self._function(f, indent=4 if group else 0))
        sources: list[str] = []
        ungrouped = iter(grouped.get("", []))
        for group in order:
            if not group:
                sources.append(next(ungrouped))
                continue
            methods = "\n\n".join(_indent(source) for source in grouped[group])
            doc = _docstring(groups.get(group, ""), [], []) if groups.get(group) else ""
            sources.append(f"class {group}:\n" + (f"{doc}\n\n" if doc else "") + methods)
        names = ", ".join(sorted(self._typing))
        header = [f"from typing import {names}"] if imports and names else []
        return "\n\n".join([*header, *self._blocks, *sources]) + "\n"

    # -- the TypeSink of openptc.schema_types -------------------------------------------------
    def typing_name(self, name: str) -> str:
        """A name from ``typing``, recorded for the import line."""
        self._typing.add(name)
        return name

    def struct_name(self, key: Any, base: str) -> tuple[str, bool]:
        """The unique ``TypedDict`` name for ``key``, and whether it is new."""
        if key in self._names:
            return self._names[key], False
        name, n = base, 2
        while name in self._taken:
            name, n = f"{base}{n}", n + 1
        self._names[key] = name  # before the fields, so that recursive types refer to it
        self._taken.add(name)
        return name, True

    def add_struct(self, name: str, fields: list[SchemaField], description: str | None) -> None:
        """A ``TypedDict`` block; optional keys as ``NotRequired``, notes as comments."""
        self.typing_name("TypedDict")
        rows = []
        for f in fields:
            text = (
                f.type_text if f.required else f"{self.typing_name('NotRequired')}[{f.type_text}]"
            )
            comment = "; ".join(" ".join(n.split()) for n in f.notes)
            rows.append((f.key, text, f"  # {comment}" if comment else ""))
        if all(key.isidentifier() and not keyword.iskeyword(key) for key, _, _ in rows):
            doc = [_docstring(description, [], []), ""] if description else []
            body = [*doc, *(f"    {key}: {tp}{comment}" for key, tp, comment in rows)]
            self._blocks.append(f"class {name}(TypedDict):\n" + "\n".join(body or ["    pass"]))
        else:  # keys that are not identifiers need the functional syntax
            body = [f"    {json.dumps(key)}: {tp},{comment}" for key, tp, comment in rows]
            self._blocks.append(f'{name} = TypedDict("{name}", {{\n' + "\n".join(body) + "\n})")

    def _expr(self, tp: Any, notes: list[str]) -> str:
        """``tp`` as a type expression; anything a comment should add goes to ``notes``."""
        origin, args = get_origin(tp), get_args(tp)
        if origin in (Annotated, typing.Required, typing.NotRequired):
            return self._expr(args[0], notes)
        if isinstance(tp, JsonSchema):
            return self._schemas.expr(tp, notes)
        if tp is Any or tp is _EMPTY or tp is PydanticUndefined or isinstance(tp, TypeVar):
            return self.typing_name("Any")
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

    def _union(self, args: Iterable[Any], notes: list[str]) -> str:
        return " | ".join(dict.fromkeys(self._expr(a, notes) for a in args))

    def _literal(self, values: Iterable[Any]) -> str:
        return f"{self.typing_name('Literal')}[{', '.join(_py_literal(v) for v in values)}]"

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
        return _JSON_TYPES.get(schema.get("type", "")) or self.typing_name("Any")

    def _struct(self, cls: Any) -> str:
        base = re.sub(r"\W+", "_", cls.__name__).strip("_") or "Struct"
        name, new = self.struct_name(cls, base)
        if new:  # the fields' own types are defined first
            self.add_struct(name, [self._field(*f) for f in _struct_fields(cls)], None)
        return name

    def _field(self, key: str, tp: Any, required: bool, description: str | None) -> SchemaField:
        notes: list[str] = []
        text = self._expr(tp, notes)
        return SchemaField(key, text, required, (*notes, *([description] if description else [])))

    def _function(self, f: FunctionStub, *, indent: int = 0) -> str:
        params: list[str] = []
        docs: list[str] = []
        for p in f.params:
            notes: list[str] = []
            text = f"{p.name}: {self._expr(p.annotation, notes)}"
            if p.keyword_only and "*" not in params:
                params.append("*")
            if p.var_keyword:
                text = f"**{text}"
            params.append(text if p.required else f"{text} = {_py_literal(p.default)}")
            if p.positional_only:
                params.append("/")
            if desc := " ".join([*(p.description or "").split(), *(f"({n})" for n in notes)]):
                docs.append(f"{p.name}: {desc}")
        ret_notes: list[str] = []
        ret = self._expr(f.returns, ret_notes)
        name = f.name.rpartition(".")[2]
        head = f"async def {name}({', '.join(params)}) -> {ret}:"
        if len(head) + indent > 100:
            head = f"async def {name}(\n" + "".join(f"    {p},\n" for p in params) + f") -> {ret}:"
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


def _indent(source: str) -> str:
    """A function's source as a method of a group's class."""
    return "\n".join(f"    {line}" if line.strip() else "" for line in source.splitlines())


def _py_literal(value: Any) -> str:
    """A value as Python source, as the model would see it after the JSON crossing."""
    if value is Ellipsis:
        return "..."
    try:
        return json_literal(to_jsonable_python(value))
    except PydanticSerializationError:
        return "..."


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

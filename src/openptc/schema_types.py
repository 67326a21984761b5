"""JSON Schema as Python type text: how the stub of a tool made from a schema shows its types.

A tool that comes with JSON Schemas (an MCP server's, an OpenAPI operation's) has no Python types
to render, so its stub is rendered from the schemas themselves, with the conventions of the stubs
of ``@tool`` functions: an object with properties becomes a ``TypedDict`` (defined once, before
its first use, optional keys as ``NotRequired``, descriptions as comments); ``enum`` and ``const``
become ``Literal``s; ``anyOf``/``oneOf`` and type lists become unions (``X | None`` for
nullables); ``allOf`` is merged; ``$ref`` is followed (``$defs``, ``definitions``, any JSON
pointer into the document, recursion included); arrays become ``list[...]``. What a type cannot
say (formats, bounds, defaults of nested keys) becomes a note. Converters commonly drop these.
"""

from __future__ import annotations

import json
import keyword
import re
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote

__all__ = [
    "JsonSchema",
    "SchemaField",
    "SchemaTypes",
    "TypeSink",
    "camel",
    "json_literal",
    "object_shape",
    "required_keys",
    "resolve",
]

_SCALARS = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "null": "None"}
_FORMATS = {"date": "ISO 8601 date", "date-time": "ISO 8601 datetime", "time": "ISO 8601 time"}
_FORMATS |= {"duration": "ISO 8601 duration"}
_SHAPE_KEYS = {"type", "properties", "items", "prefixItems", "enum", "const", "$ref"}
_SHAPE_KEYS |= {"anyOf", "oneOf", "allOf", "additionalProperties", "patternProperties"}
_BOUNDS = {
    "minimum": ">= {}",
    "maximum": "<= {}",
    "exclusiveMinimum": "> {}",
    "exclusiveMaximum": "< {}",
    "minLength": "at least {} characters",
    "maxLength": "at most {} characters",
    "pattern": "matches {}",
    "minItems": "at least {} items",
    "maxItems": "at most {} items",
}
Literals = tuple[Any, ...]  # the values of one ``Literal[...]``, merged across a union


@dataclass(frozen=True, eq=False)
class JsonSchema:
    """A stub annotation given as JSON Schema instead of a Python type.

    ``root`` is the document that ``$ref``s point into (``schema`` itself when None); ``name``
    names the ``TypedDict`` of an object schema that has neither a ``$defs`` name nor a title.
    """

    schema: Any
    root: Any = None
    name: str = ""


@dataclass(frozen=True)
class SchemaField:
    """One key of a ``TypedDict`` rendered from an object schema."""

    key: str
    type_text: str
    required: bool
    notes: tuple[str, ...]


class TypeSink(Protocol):
    """The rendering that schema types go into: its imports, its names and its ``TypedDict``s."""

    def typing_name(self, name: str) -> str:
        """A name from ``typing``, recorded for the import line."""
        ...

    def struct_name(self, key: str, base: str) -> tuple[str, bool]:
        """The unique name for the object type ``key``, and whether it is new (to be defined)."""
        ...

    def add_struct(self, name: str, fields: list[SchemaField], description: str | None) -> None:
        """Define a ``TypedDict``; called after the types its fields use are defined."""
        ...


class SchemaTypes:
    """Type text for the JSON Schemas of one rendering; the ``TypedDict``s go to ``sink``."""

    def __init__(self, sink: TypeSink) -> None:
        self._sink = sink
        self._following: set[tuple[int, str]] = set()  # $refs being expanded (recursion guard)
        self._defs_text: dict[int, str] = {}

    def expr(self, annotation: JsonSchema, notes: list[str]) -> str:
        """The schema as a type expression; formats and bounds go to ``notes``."""
        root = annotation.schema if annotation.root is None else annotation.root
        text = self._join(self._alternatives(annotation.schema, root, annotation.name, notes))
        notes[:] = dict.fromkeys(notes)
        return text

    def _join(self, alternatives: list[str | Literals]) -> str:
        """One union: the literal values merged into one ``Literal``, ``None`` last."""
        values = [v for a in alternatives if isinstance(a, tuple) for v in a]
        parts: list[str] = []
        for a in alternatives:
            if isinstance(a, tuple):
                if values:
                    unique = dict.fromkeys((type(v), v) for v in values)  # 1 and True differ
                    literal = ", ".join(json_literal(v) for _, v in unique)
                    parts.append(f"{self._sink.typing_name('Literal')}[{literal}]")
                    values = []
            elif a != "None":
                parts.append(a)
        if "Any" in parts:
            return "Any"
        if "None" in alternatives:
            parts.append("None")
        return " | ".join(dict.fromkeys(parts)) or self._sink.typing_name("Any")

    def _alternatives(
        self, schema: Any, root: Any, hint: str, notes: list[str]
    ) -> list[str | Literals]:
        if not isinstance(schema, dict):
            return [self._sink.typing_name("Any")]  # ``true``, or a schema that is not one
        if "$ref" in schema:
            return self._ref(schema, root, hint, notes)
        nullable = ["None"] if schema.get("nullable") is True else []  # OpenAPI 3.0
        if "const" in schema and _is_scalar(schema["const"]):
            return [(schema["const"],), *nullable]
        if isinstance(schema.get("enum"), list) and all(_is_scalar(v) for v in schema["enum"]):
            values = tuple(v for v in schema["enum"] if v is not None)
            with_null = ["None"] if None in schema["enum"] else []
            return [*([values] if values else []), *with_null, *nullable]
        for combinator in ("anyOf", "oneOf"):
            members = schema.get(combinator)
            if isinstance(members, list) and members and all(_has_shape(m) for m in members):
                out: list[str | Literals] = []
                for member in members:
                    out += self._alternatives(member, root, hint, notes)
                return out + nullable
        if isinstance(schema.get("allOf"), list):
            return self._alternatives(merge_all_of(schema, root), root, hint, notes)
        types = schema.get("type")
        if isinstance(types, list):
            out = []
            for t in types:
                out += self._typed(t, schema, root, hint, notes)
            return out + nullable
        if types is None:
            types = _implied_type(schema)
        return self._typed(types, schema, root, hint, notes) + nullable

    def _ref(
        self, schema: dict[str, Any], root: Any, hint: str, notes: list[str]
    ) -> list[str | Literals]:
        ref = schema["$ref"]
        target, name = resolve(ref, root)
        key = (id(root), str(ref))
        if target is None or (key in self._following and not _is_struct(target)):
            return [self._sink.typing_name("Any")]
        if name and _is_struct(target):  # the $defs name is the type's name
            target = {**target, "title": name}
        self._following.add(key)
        try:
            found = self._alternatives(target, root, name or hint, notes)
        finally:
            self._following.discard(key)
        return [*found, "None"] if schema.get("nullable") is True else found

    def _typed(
        self, kind: Any, schema: dict[str, Any], root: Any, hint: str, notes: list[str]
    ) -> list[str | Literals]:
        notes.extend(_notes(schema))
        if kind in _SCALARS:
            return [_SCALARS[kind]]
        if kind == "array":
            return [self._array(schema, root, hint, notes)]
        if kind == "object":
            return [self._object(schema, root, hint, notes)]
        return [self._sink.typing_name("Any")]

    def _array(self, schema: dict[str, Any], root: Any, hint: str, notes: list[str]) -> str:
        items = schema.get("prefixItems", schema.get("items"))
        item_hint = _singular(hint)
        if isinstance(items, list):  # a tuple: JSON gives a list of the item types
            alternatives: list[str | Literals] = []
            for item in items:
                alternatives += self._alternatives(item, root, item_hint, [])
            return f"list[{self._join(alternatives)}]" if alternatives else "list"
        if items is None or items is True or items == {}:
            return "list"
        return f"list[{self._join(self._alternatives(items, root, item_hint, []))}]"

    def _object(self, schema: dict[str, Any], root: Any, hint: str, notes: list[str]) -> str:
        properties = schema.get("properties")
        if isinstance(properties, dict) and properties:
            return self._struct(schema, properties, root, hint)
        values = schema.get("additionalProperties")
        patterns = schema.get("patternProperties")
        if isinstance(patterns, dict) and patterns and not isinstance(values, dict):
            alternatives: list[str | Literals] = []
            for pattern_schema in patterns.values():
                alternatives += self._alternatives(pattern_schema, root, _singular(hint), [])
            return f"dict[str, {self._join(alternatives)}]"
        if isinstance(values, dict) and values:
            return f"dict[str, {self._join(self._alternatives(values, root, _singular(hint), []))}]"
        return "dict"

    def _struct(
        self, schema: dict[str, Any], properties: dict[str, Any], root: Any, hint: str
    ) -> str:
        title = schema.get("title")
        base = _identifier(title if isinstance(title, str) and title.strip() else hint or "Object")
        key = json.dumps(
            [base, schema, self._defs(root) if "$ref" in str(schema) else None],
            sort_keys=True,
            default=str,
        )
        name, new = self._sink.struct_name(key, base)
        if not new:
            return name
        required = required_keys(schema)
        fields = []
        for prop, prop_schema in properties.items():
            field_notes: list[str] = []
            text = self._join(self._alternatives(prop_schema, root, camel(prop), field_notes))
            if isinstance(prop_schema, dict):
                if "default" in prop_schema:
                    field_notes.append(f"default {json_literal(prop_schema['default'])}")
                if isinstance(prop_schema.get("description"), str):
                    field_notes.append(prop_schema["description"])
            notes = tuple(dict.fromkeys(field_notes))
            fields.append(SchemaField(prop, text, prop in required, notes))
        description = schema.get("description")
        self._sink.add_struct(name, fields, description if isinstance(description, str) else None)
        return name

    def _defs(self, root: Any) -> str:
        if id(root) not in self._defs_text:
            defs = (
                {k: root.get(k) for k in ("$defs", "definitions")} if isinstance(root, dict) else {}
            )
            self._defs_text[id(root)] = json.dumps(defs, sort_keys=True, default=str)
        return self._defs_text[id(root)]


def resolve(ref: Any, root: Any) -> tuple[Any, str | None]:
    """The schema a local ``$ref`` points to and its ``$defs`` name; ``(None, None)`` if none."""
    pointer = unquote(ref[1:]) if isinstance(ref, str) and ref.startswith("#") else None
    if pointer is None or (pointer and not pointer.startswith("/")):
        return None, None  # remote, ``$id``-relative and anchor references are not followed
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    node = root
    for part in parts:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None, None
    in_defs = len(parts) >= 2 and parts[-2] in ("$defs", "definitions")
    return node, (parts[-1] if in_defs else None)


def merge_all_of(schema: dict[str, Any], root: Any, depth: int = 0) -> dict[str, Any]:
    """``allOf`` as one schema: the members' properties and required keys together.

    A single member that says something (``allOf: [{"$ref": ...}]``, as pydantic v1 writes) is
    that member; members that are not objects are not merged (the first one stands). The merged
    object takes its name and description from the ``allOf`` schema alone.
    """
    own = {k: v for k, v in schema.items() if k != "allOf"}
    members = [own]
    for member in schema.get("allOf") or []:
        while isinstance(member, dict) and "$ref" in member and depth < 32:
            target, name = resolve(member["$ref"], root)
            member, depth = (
                ({**target, "title": name} if name and _is_struct(target) else target),
                depth + 1,
            )
        if isinstance(member, dict) and isinstance(member.get("allOf"), list) and depth < 32:
            member = merge_all_of(member, root, depth + 1)
        if isinstance(member, dict):
            members.append(member)
    shaped = [m for m in members if _has_shape(m)]
    if len(shaped) <= 1:  # the description beside it is the property's, not the type's
        return shaped[0] if shaped else {}
    if not all(_implied_type(m) == "object" or m.get("type") == "object" for m in shaped):
        return shaped[0]
    merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
    for member in members:
        for k, v in member.items():
            if k == "properties" and isinstance(v, dict):
                merged["properties"].update(v)
            elif k == "required" and isinstance(v, list):
                merged["required"] += [r for r in v if r not in merged["required"]]
            elif k not in ("type", "allOf") and (
                member is own or k not in ("title", "description")
            ):
                merged.setdefault(k, v)  # a member's name and description are not the whole's
    return merged


def object_shape(schema: Any, root: Any) -> dict[str, Any] | None:
    """The object a tool's input schema describes, ``$ref`` and ``allOf`` followed; None if
    the schema does not describe an object."""
    for _ in range(32):
        if not isinstance(schema, dict) or "$ref" not in schema:
            break
        schema = resolve(schema["$ref"], root)[0]
    if isinstance(schema, dict) and isinstance(schema.get("allOf"), list):
        schema = merge_all_of(schema, root)
    if not isinstance(schema, dict):
        return None
    kind = schema.get("type", _implied_type(schema) or "object")
    return schema if kind == "object" or (isinstance(kind, list) and "object" in kind) else None


def required_keys(schema: dict[str, Any]) -> list[str]:
    """The ``required`` keys of an object schema (none if it lists none, or lists nonsense)."""
    required = schema.get("required")
    return [k for k in required if isinstance(k, str)] if isinstance(required, list) else []


def json_literal(value: Any) -> str:
    """A JSON value as Python source."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(json_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{json_literal(k)}: {json_literal(v)}" for k, v in value.items()) + "}"
        )
    return repr(value)


def camel(name: str) -> str:
    """``line_items`` and ``lineItems`` -> ``LineItems``: a type name from a key or tool name."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9A-Za-z]+", name))


def _singular(name: str) -> str:
    """The name of an item of an array called ``name`` (``Orders`` -> ``Order``)."""
    if name.endswith("ies") and len(name) > 4:
        return name[:-3] + "y"
    if name.endswith("s") and not name.endswith("ss") and len(name) > 2:
        return name[:-1]
    return f"{name}Item" if name else ""


def _identifier(text: str) -> str:
    name = camel(text) if not re.fullmatch(r"[A-Za-z_]\w*", text) else text
    name = re.sub(r"\W", "", name)
    if not name or name[0].isdigit() or keyword.iskeyword(name):
        name = f"T{name}"
    return name


def _notes(schema: dict[str, Any]) -> list[str]:
    notes = []
    if isinstance(fmt := schema.get("format"), str):
        notes.append(_FORMATS.get(fmt, fmt))
    for key, text in _BOUNDS.items():
        if key in schema and not isinstance(schema[key], bool | dict | list):
            notes.append(text.format(schema[key]))
    return notes


def _implied_type(schema: dict[str, Any]) -> str | None:
    if any(k in schema for k in ("properties", "additionalProperties", "patternProperties")):
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return None


def _has_shape(schema: Any) -> bool:
    """Whether a schema says what kind of value it is (not only constraints or annotations)."""
    return isinstance(schema, dict) and any(k in schema for k in _SHAPE_KEYS)


def _is_struct(schema: Any) -> bool:
    props = schema.get("properties") if isinstance(schema, dict) else None
    return isinstance(props, dict) and bool(props)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)

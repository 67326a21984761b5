"""Tools described by JSON Schemas: their parameters, and their arguments checked on the host.

The arguments a program or a model sends are validated against the tool's input schema with the
``jsonschema`` library (the draft the schema names, 2020-12 otherwise; formats it can check are
checked) before the tool runs. A bad call raises a ``ToolArgumentError`` naming the tool, the
argument (its JSON path, ``items[1].sku``) and the problem. Validators are built once per schema
and shared by every tool with the same schema (MCP servers refreshing their tool lists, say).
"""

from __future__ import annotations

import functools
import inspect
import json
import keyword
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema  # type: ignore[import-untyped]
from jsonschema.exceptions import best_match  # type: ignore[import-untyped]

from openptc import stubs
from openptc.sandbox.base import ToolCallError
from openptc.schema_types import JsonSchema, camel, object_shape, required_keys

__all__ = ["SchemaBinding"]

_EMPTY: Any = inspect.Parameter.empty
_ARG_ERROR = "ToolArgumentError"
_MAX_PROBLEMS = 5
_MAX_PROBLEM_CHARS = 240


@dataclass(frozen=True, eq=False)
class SchemaBinding:
    """How a tool made from schemas is called: its parameters, its stub, its validator."""

    params: tuple[str, ...]  # in the order the stub shows them (positional calls follow it)
    stub_params: tuple[stubs.StubParam, ...]
    returns: Any  # a ``JsonSchema``, or ``inspect.Parameter.empty`` without an output schema
    validator: Any  # a ``jsonschema`` validator

    @classmethod
    def build(
        cls, tool: str, input_schema: dict[str, Any], output_schema: dict[str, Any] | None
    ) -> SchemaBinding:
        """Read the schemas; ``ValueError`` saying what is wrong if one is not usable."""
        if not isinstance(input_schema, dict):
            raise ValueError(f"tool {tool}: input_schema must be a JSON Schema object (a dict)")
        shape = object_shape(input_schema, input_schema)
        if shape is None:
            raise ValueError(f"tool {tool}: input_schema must describe an object (the arguments)")
        if output_schema is not None and not isinstance(output_schema, dict):
            raise ValueError(f"tool {tool}: output_schema must be a JSON Schema object or None")
        validator = _validator(tool, "input_schema", input_schema)
        if output_schema is not None:
            _validator(tool, "output_schema", output_schema)  # checked, so that mistakes show
        stub_params = _stub_params(tool, shape, input_schema)
        if stub_params and stub_params[0].positional_only:  # one dict: its keys, required first
            required = required_keys(shape)
            params = tuple(sorted(shape["properties"], key=lambda k: k not in required))
        else:
            params = tuple(p.name for p in stub_params if not p.var_keyword)
        result_name = f"{camel(tool.rpartition('.')[2])}Result"
        return cls(
            params=params,
            stub_params=stub_params,
            returns=_EMPTY
            if output_schema is None
            else JsonSchema(output_schema, name=result_name),
            validator=validator,
        )

    def stub(self, tool: str, description: str) -> stubs.FunctionStub:
        return stubs.FunctionStub(tool, description, self.stub_params, self.returns)

    def bind(self, tool: str, arguments: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """The validated arguments, as the one positional argument of the tool's ``call``."""
        if not isinstance(arguments, Mapping):
            kind = type(arguments).__name__
            raise ToolCallError(
                f"{tool}(): arguments must be an object, got {kind}", kind=_ARG_ERROR
            )
        value = dict(arguments)
        try:
            errors = sorted(self.validator.iter_errors(value), key=_path_order)
        except Exception as e:  # e.g. a $ref to a document that cannot be had
            msg = f"{tool}(): its input schema cannot be checked: {type(e).__name__}: {e}"
            raise ToolCallError(_trim(msg), kind="ToolError") from e
        if errors:
            problems = list(
                dict.fromkeys(_trim(p) for e in errors for p in self._describe(e, value))
            )
            if len(problems) > _MAX_PROBLEMS:
                more = len(problems) - _MAX_PROBLEMS
                problems = [*problems[:_MAX_PROBLEMS], f"and {more} more"]
            raise ToolCallError(f"{tool}(): " + "; ".join(problems), kind=_ARG_ERROR)
        return [value], {}

    def _describe(self, error: Any, arguments: dict[str, Any]) -> list[str]:
        """One error as the program reads it; the arguments object's own ones in plain words."""
        path = list(error.absolute_path)
        if not path and error.validator == "required":
            missing = [k for k in error.validator_value if k not in arguments]
            return [f"missing required argument {k!r}" for k in missing]
        if (
            not path
            and error.validator == "additionalProperties"
            and error.validator_value is False
        ):
            allowed = error.schema.get("properties") or {}
            patterns = error.schema.get("patternProperties") or {}
            unexpected = [k for k in arguments if k not in allowed and not _matches(k, patterns)]
            known = f"parameters are {', '.join(self.params)}" if self.params else "it takes none"
            return [f"unexpected argument {k!r}; {known}" for k in unexpected]
        if error.context:  # anyOf / oneOf: the problem inside the branch that came closest
            deeper = [e for e in error.context if len(e.absolute_path) > len(path)]
            if deeper:
                return self._describe(best_match(deeper), arguments)
            alternatives = "; ".join(dict.fromkeys(_trim(e.message) for e in error.context))
            return [f"{_where(path)}: {_trim(error.message)} ({alternatives})"]
        return [f"{_where(path)}: {_trim(error.message)}"]


def _stub_params(
    tool: str, shape: dict[str, Any], root: dict[str, Any]
) -> tuple[stubs.StubParam, ...]:
    """Required parameters first, in the schema's order, then the optional ones with defaults.

    Keys that cannot be Python parameters (``from``, ``user-id``) make the stub take the
    arguments as one dict (``f({"from": ...})``), which every tool also accepts.
    """
    properties = shape.get("properties")
    extra = shape.get("additionalProperties")
    if not isinstance(properties, dict) or not properties:
        if (isinstance(extra, dict) and extra) or shape.get("patternProperties"):
            values = extra if isinstance(extra, dict) else {}
            return (stubs.StubParam("arguments", JsonSchema(values, root), var_keyword=True),)
        return ()
    required = required_keys(shape)
    if not all(k.isidentifier() and not keyword.iskeyword(k) for k in properties):
        whole = JsonSchema({**shape, "title": f"{camel(tool.rpartition('.')[2])}Arguments"}, root)
        return (stubs.StubParam("arguments", whole, positional_only=True),)
    params = []
    listed_only: list[tuple[str, Any]] = [(k, {}) for k in required if k not in properties]
    for key, schema in [*properties.items(), *listed_only]:
        description = schema.get("description") if isinstance(schema, dict) else None
        if key in required:
            default = _EMPTY
        else:
            has_default = isinstance(schema, dict) and "default" in schema
            default = schema["default"] if has_default else Ellipsis
        params.append(
            stubs.StubParam(
                key,
                JsonSchema(schema, root, camel(key)),
                description if isinstance(description, str) else None,
                default,
            )
        )
    return tuple(sorted(params, key=lambda p: not p.required))


def _validator(tool: str, which: str, schema: dict[str, Any]) -> Any:
    """The shared validator of this schema; ``ValueError`` naming the tool if it is invalid."""
    try:
        text = json.dumps(schema, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"tool {tool}: {which} is not JSON ({e})") from None
    try:
        return _compiled(text)
    except jsonschema.SchemaError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "the top level"
        raise ValueError(
            f"tool {tool}: {which} is not a valid JSON Schema ({_trim(e.message)}, at {where})"
        ) from None


@functools.lru_cache(maxsize=512)
def _compiled(schema_text: str) -> Any:
    """One validator per distinct schema (by its canonical JSON text); errors are not cached."""
    schema = json.loads(schema_text)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _path_order(error: Any) -> tuple[tuple[int, int, str], ...]:
    """Errors of the arguments object first, then by argument, items in their order."""
    return tuple((1, p, "") if isinstance(p, int) else (0, 0, str(p)) for p in error.absolute_path)


def _where(path: list[Any]) -> str:
    if not path:
        return "arguments"
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    return f"argument {text!r}"


def _matches(key: str, patterns: Mapping[str, Any]) -> bool:
    return any(re.search(p, key) for p in patterns)


def _trim(text: str) -> str:
    return text if len(text) <= _MAX_PROBLEM_CHARS else text[: _MAX_PROBLEM_CHARS - 3] + "..."

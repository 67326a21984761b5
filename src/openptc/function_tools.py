"""Typed Python functions as tools: parameters from hints and docstrings, checked with pydantic.

A ``FunctionBinding`` reads a function once: its parameters (with the descriptions of a
docstring's parameter section, Google, Sphinx or NumPy style, or
``Annotated[..., Field(description=...)]``), a pydantic model
that turns a model's JSON arguments into typed values (a bad call fails with a message naming the
tool, the argument and the problem), and the adapter that turns results back into JSON. What a
model could not call well is refused with the way forward: ``*args``/``**kwargs``, and a
``functools.partial`` of a dispatcher (``partial(execute, "get_order")``) that leaves one untyped
arguments dict (``Tool.from_schema`` is the way for tools described by JSON Schemas).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, get_origin

import docstring_parser
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from openptc import stubs
from openptc.sandbox.base import ToolCallError

__all__ = ["FunctionBinding"]

_EMPTY: Any = inspect.Parameter.empty
_ARG_ERROR = "ToolArgumentError"
_FROM_SCHEMA_HINT = (
    "if a JSON Schema describes the arguments, use Tool.from_schema(name, description, "
    "input_schema, call): call receives the validated arguments as one dict"
)


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
class FunctionBinding:
    """A typed function's parameters, checked with a pydantic model built from its hints."""

    info: tuple[_Param, ...]
    return_type: Any  # inspect.Parameter.empty if none
    args_model: type[BaseModel]
    returns: TypeAdapter[Any] | None  # None: results go through to_jsonable_python
    summary: str  # the docstring without its Args: section

    @classmethod
    def build(cls, name: str, fn: Callable[..., Any]) -> FunctionBinding:
        """Read ``fn``'s signature and docstring; ``TypeError`` if a model could not call it."""
        inner: Any = fn.func if isinstance(fn, functools.partial) else fn
        try:  # eval_str resolves ``from __future__ import annotations`` hints
            sig = inspect.signature(fn, eval_str=True)
        except (NameError, TypeError, ValueError) as e:
            raise TypeError(f"tool {name}: cannot read the signature: {e}") from e
        bound = set(fn.keywords) if isinstance(fn, functools.partial) else set()
        parameters = [p for p in sig.parameters.values() if p.name not in bound]
        if isinstance(fn, functools.partial):
            _refuse_dispatcher(name, fn, parameters)
        summary, arg_docs = _parse_docstring(inspect.getdoc(inner) or "")
        info = tuple(_param(name, p, arg_docs.get(p.name)) for p in parameters)
        returns = _return_adapter(sig.return_annotation)
        return cls(info, sig.return_annotation, _args_model(name, info), returns, summary)

    @property
    def input_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = _clean_schema(self.args_model.model_json_schema(by_alias=True))
        return schema

    @property
    def output_schema(self) -> dict[str, Any] | None:
        if self.returns is None:
            return None
        schema: dict[str, Any] = _clean_schema(self.returns.json_schema(mode="serialization"))
        return schema

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(p.param.name for p in self.info)

    def stub(self, tool: str, description: str) -> stubs.FunctionStub:
        return stubs.FunctionStub(
            name=tool,
            description=description,
            params=tuple(
                stubs.StubParam(
                    name=p.param.name,
                    annotation=p.annotation,
                    description=p.description,
                    default=p.param.default,
                    keyword_only=p.param.kind is inspect.Parameter.KEYWORD_ONLY,
                )
                for p in self.info
            ),
            returns=self.return_type,
        )

    def bind(self, tool: str, arguments: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """Check names first (clearer than pydantic's wording), then types, via the args model."""
        if not isinstance(arguments, Mapping):
            kind = type(arguments).__name__
            raise ToolCallError(
                f"{tool}(): arguments must be an object, got {kind}", kind=_ARG_ERROR
            )
        problems = []
        params = self.params
        if unknown := [k for k in arguments if k not in params]:
            known = f"parameters are {', '.join(params)}" if params else "it takes none"
            problems.append(f"unexpected {_plural('argument', unknown)}; {known}")
        if missing := [
            p.param.name for p in self.info if p.required and p.param.name not in arguments
        ]:
            problems.append(f"missing required {_plural('argument', missing)}")
        if problems:
            raise ToolCallError(f"{tool}(): " + "; ".join(problems), kind=_ARG_ERROR)
        try:
            validated = self.args_model.model_validate(dict(arguments))
        except ValidationError as e:
            details = "; ".join(_describe_error(err) for err in e.errors(include_url=False))
            raise ToolCallError(f"{tool}(): {details}", kind=_ARG_ERROR) from None
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for i, p in enumerate(self.info):
            value = getattr(validated, f"p{i}")
            if p.param.kind is inspect.Parameter.POSITIONAL_ONLY:
                args.append(value)  # always passed (default filled in) so positions stay right
            elif p.param.name in arguments:  # omitted ones keep the function's own default
                kwargs[p.param.name] = value
        return args, kwargs


def _refuse_dispatcher(
    name: str, fn: functools.partial[Any], parameters: list[inspect.Parameter]
) -> None:
    """``partial(execute, "get_order")`` leaves ``execute``'s arguments dict as the one parameter:
    the model would see a tool taking ``arguments`` and nothing of what goes in it."""
    if len(parameters) != 1 or parameters[0].kind is inspect.Parameter.VAR_KEYWORD:
        return  # **kwargs is refused by _param, with the same way forward
    p = parameters[0]
    a_dict = p.annotation in (dict, Mapping) or get_origin(p.annotation) in (dict, Mapping)
    if not (p.annotation is _EMPTY or p.annotation is Any or a_dict):
        return
    bound = [repr(a) for a in fn.args] + [f"{k}={v!r}" for k, v in fn.keywords.items()]
    func = getattr(fn.func, "__name__", "execute")
    call = f"lambda arguments: {func}({', '.join([*bound, 'arguments'])})"
    raise TypeError(
        f"tool {name}: functools.partial({func}, {', '.join(bound)}) leaves one parameter, "
        f"{p.name!r}, a dict of the real arguments, so a model would see a tool taking "
        f"{p.name}={{...}} and nothing of what goes in it. For a tool described by a JSON Schema "
        f"and run by a function of the arguments dict, use Tool.from_schema(name, description, "
        f"input_schema, call), e.g. Tool.from_schema({name!r}, description, input_schema, {call})"
    )


def _param(tool_name: str, p: inspect.Parameter, doc: str | None) -> _Param:
    if p.kind is inspect.Parameter.VAR_POSITIONAL:
        raise TypeError(
            f"tool {tool_name}: *{p.name} is not supported: a model calls tools with named "
            f"arguments; name the parameters (a list parameter takes many values), or, "
            f"{_FROM_SCHEMA_HINT}"
        )
    if p.kind is inspect.Parameter.VAR_KEYWORD:
        raise TypeError(
            f"tool {tool_name}: **{p.name} is not supported: a model is shown each parameter of "
            f"a tool, so each needs a name and a type; name them in the signature, or, "
            f"{_FROM_SCHEMA_HINT}"
        )
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
    """The description a model reads, and each parameter's, from a Google, Sphinx (reST) or
    NumPy docstring (``docstring_parser`` tells the style). What the function returns is kept
    in the description; the parameters' prose moves to the schema."""
    parsed = docstring_parser.parse(doc)
    args = {
        p.arg_name: " ".join(p.description.split())
        for p in parsed.params
        if p.description and p.args[0] in ("param", "parameter", "arg", "argument", "key")
    }
    parts = [(parsed.description or "").strip()]
    if parsed.returns is not None and parsed.returns.description:
        returned = parsed.returns.description.strip().replace("\n", "\n    ")
        parts.append(f"Returns:\n    {returned}")
    if not args and not parsed.returns:  # no section it knows: the docstring as written
        return doc.strip(), {}
    return "\n\n".join(p for p in parts if p).strip(), args


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

"""Pre-loaded tools: tools whose implementation is portable Python, run inside the interpreter.

A managed code interpreter cannot call back into the application, so every host tool call costs a
replay pass. A tool that needs nothing of the host (no secrets, no connections, no host state) can
instead be shipped into the interpreter as source, installed once per session and called there
directly: no round trip, no pass. ``@portable`` checks that a function can be shipped — its source
is readable and it refers only to its arguments, builtins, imported modules and plain constants —
and says which name is the problem when it cannot.
"""

from __future__ import annotations

import ast
import builtins
import dis
import inspect
import math
import re
import sys
import textwrap
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, overload

from openptc.sandbox.base import ToolSignature

_LOADS_GLOBAL = frozenset({"LOAD_GLOBAL", "LOAD_NAME"})
_CONSTANT_TYPES = (type(None), bool, int, str, bytes)
_REQUIREMENT_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


class NotPortable(TypeError):
    """The function cannot run inside an interpreter on its own; the message says why."""


@dataclass(frozen=True)
class PortableTool:
    """A tool as shipped into an interpreter: a self-contained module that defines ``name``."""

    name: str
    source: str
    requirements: tuple[str, ...]
    signature: ToolSignature
    fn: Callable[..., Any] = field(repr=False, compare=False)

    def spec(self) -> dict[str, Any]:
        """What the replay harness installs."""
        return {
            "name": self.name,
            "source": self.source,
            "requirements": list(self.requirements),
            "params": list(self.signature.params),
        }


@overload
def portable(fn: Callable[..., Any], /) -> PortableTool: ...


@overload
def portable(
    fn: None = None, /, *, requirements: Iterable[str] = (), name: str | None = None
) -> Callable[[Callable[..., Any]], PortableTool]: ...


def portable(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    requirements: Iterable[str] = (),
    name: str | None = None,
) -> PortableTool | Callable[[Callable[..., Any]], PortableTool]:
    """Declare a tool portable (``@portable`` or ``@portable(requirements=["numpy"])``).

    ``requirements`` name the packages it imports beyond the standard library; they are checked,
    never installed, in the interpreter. Raises ``NotPortable`` when the function is not
    self-contained.
    """

    def wrap(f: Callable[..., Any]) -> PortableTool:
        return _build(f, tuple(requirements), name)

    return wrap if fn is None else wrap(fn)


def _build(fn: Callable[..., Any], requirements: tuple[str, ...], name: str | None) -> PortableTool:
    if not inspect.isfunction(fn):
        raise NotPortable(f"{fn!r} is not a plain function, so its source cannot be shipped")
    own = fn.__name__
    name = name or own
    if not name.isidentifier() or own == "<lambda>":
        raise NotPortable(f"a portable tool needs a def with a name, not {own!r}")
    node, body = _definition(fn)
    preamble = _preamble(fn, node, requirements)
    alias = f"\n{name} = {own}\n" if name != own else ""
    source = "from __future__ import annotations\n" + "".join(preamble) + "\n" + body + alias
    compile(source, f"<tool {name}>", "exec", dont_inherit=True)  # fails here, not remotely
    return PortableTool(name, source, requirements, ToolSignature(name, _params(fn)), fn)


def _definition(fn: Callable[..., Any]) -> tuple[ast.FunctionDef | ast.AsyncFunctionDef, str]:
    """The function's def (decorators stripped, dedented) and its AST node."""
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError) as exc:
        raise NotPortable(
            f"{fn.__name__}: its source cannot be read ({exc}); define it in a .py file"
        ) from None
    tree = ast.parse(source)
    node = next(
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == fn.__name__
    )
    assert node.end_lineno is not None
    lines = source.splitlines(keepends=True)[node.lineno - 1 : node.end_lineno]
    return node, "".join(lines)


def _params(fn: Callable[..., Any]) -> tuple[str, ...]:
    params = inspect.signature(fn).parameters.values()
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            raise NotPortable(
                f"{fn.__name__}: parameter {p.name!r} is {p.kind.description}; a tool is called "
                "with named arguments, so use plain parameters"
            )
    return tuple(p.name for p in params)


def _preamble(
    fn: Callable[..., Any],
    node: ast.FunctionDef | ast.AsyncFunctionDef,
    requirements: tuple[str, ...],
) -> list[str]:
    """Source lines that define what the function refers to: imports and constants."""
    code = fn.__code__
    free = dict(zip(code.co_freevars, fn.__closure__ or (), strict=True))
    lines: list[str] = []
    for var, cell in free.items():
        try:
            value = cell.cell_contents
        except ValueError:
            raise NotPortable(
                f"{fn.__name__}: {var!r} is not yet bound where it is defined"
            ) from None
        lines.append(_binding(fn, var, value, "closes over", requirements))
    defaults = {
        n.id
        for d in [*node.args.defaults, *(k for k in node.args.kw_defaults if k is not None)]
        for n in ast.walk(d)
        if isinstance(n, ast.Name)
    }
    for ref in sorted(_global_names(code) | defaults):
        if ref == fn.__name__ or ref in free:
            continue
        if ref in fn.__globals__:
            lines.append(_binding(fn, ref, fn.__globals__[ref], "refers to", requirements))
        elif not hasattr(builtins, ref):
            raise NotPortable(f"{fn.__name__}: it refers to {ref!r}, which is not defined")
    return lines


def _global_names(code: types.CodeType) -> set[str]:
    """Names the code (and the functions and comprehensions inside it) looks up globally."""
    names = {i.argval for i in dis.get_instructions(code) if i.opname in _LOADS_GLOBAL}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _binding(
    fn: Callable[..., Any], var: str, value: Any, how: str, requirements: tuple[str, ...]
) -> str:
    """``import x as var`` or ``var = <literal>``; NotPortable for anything else."""
    if isinstance(value, types.ModuleType):
        top = value.__name__.partition(".")[0]
        declared = {_module_name(r) for r in requirements}
        if top not in sys.stdlib_module_names and top.lower() not in declared:
            raise NotPortable(
                f"{fn.__name__}: it uses the module {value.__name__!r}, which is not in the "
                f"standard library; declare it: @portable(requirements=[{top!r}])"
            )
        if var == value.__name__:
            return f"import {var}\n"
        return f"import {value.__name__} as {var}\n"
    if _is_literal(value):
        return f"{var} = {value!r}\n"
    kind = type(value).__name__
    raise NotPortable(
        f"{fn.__name__}: it {how} {var!r} (of type {kind}), which cannot be shipped into an "
        "interpreter; a portable tool may use only its arguments, builtins, imported modules "
        "and plain constants (str, numbers, lists, dicts, ...). Define helpers inside the "
        "function, or keep this tool on the host"
    )


def _module_name(requirement: str) -> str:
    """``"scikit-learn>=1.5"`` -> ``"scikit_learn"``: the likely import name of a requirement."""
    match = _REQUIREMENT_NAME.match(requirement)
    return match.group(1).replace("-", "_").lower() if match else requirement


def _is_literal(value: Any) -> bool:
    """Whether ``repr(value)`` is Python source that rebuilds an equal value."""
    kind = type(value)
    if kind is float:
        return math.isfinite(value)
    if kind in _CONSTANT_TYPES:
        return True
    if kind in (list, tuple) or (kind is set and value):  # set() is not a literal
        return all(_is_literal(v) for v in value)
    if kind is dict:
        return all(_is_literal(k) and _is_literal(v) for k, v in value.items())
    return False

"""Load a toolbox named on the command line: ``package.module:attribute``.

The attribute may be a ``Toolbox``, a list of tools or functions, or a function returning
either (such as ``openptc.scenarios.expense:make_tools``), so existing code needs no wrapper.
"""

from __future__ import annotations

import importlib
from typing import Any

from openptc.tools import Toolbox


def load_object(spec: str) -> Any:
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"expected 'package.module:attribute', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r}: {exc}") from exc
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no attribute {attribute!r}") from None


def load_toolbox(spec: str) -> Toolbox:
    """Resolve ``spec`` to a ``Toolbox``, calling a factory function if that is what it names."""
    found = load_object(spec)
    if callable(found) and not isinstance(found, Toolbox) and not hasattr(found, "input_schema"):
        found = found()
    if isinstance(found, Toolbox):
        return found
    try:
        return Toolbox(found)
    except TypeError as exc:
        raise ValueError(
            f"{spec} is not a Toolbox, a list of tools, or a function returning one: {exc}"
        ) from exc

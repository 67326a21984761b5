"""Load a toolbox named on the command line: ``package.module:attribute``.

The attribute may be a ``Toolbox``, a list of tools or functions, or a function returning
either (such as ``openptc.scenarios.expense:make_tools``), so existing code needs no wrapper.

Modules are found in the user's project first: the working directory (or ``app_dir``) goes at the
front of ``sys.path``, as uvicorn's ``--app-dir`` does, so ``--tools tools.mine:TOOLS`` works from
the project without ``PYTHONPATH=.``. Whatever goes wrong in the user's module (a syntax error,
an exception at import, a missing attribute) is a ``ValueError`` of one line naming file:line.
"""

from __future__ import annotations

import difflib
import importlib
import sys
import traceback
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from openptc.tools import Toolbox


def _shown(filename: str) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        return str(Path(filename).resolve().relative_to(Path.cwd()))
    except ValueError:
        return filename


def _where(tb: TracebackType | None, directory: Path) -> str:
    """file:line of the innermost frame in the user's project (else in any real file: not the
    import machinery's), which is where the user has something to fix."""
    frames = [f for f in traceback.extract_tb(tb) if not f.filename.startswith("<")]
    theirs = [f for f in frames if Path(f.filename).resolve().is_relative_to(directory)]
    if not frames:
        return "?"
    chosen = (theirs or frames)[-1]
    return f"{_shown(chosen.filename)}:{chosen.lineno}"


def _put_first_on_path(directory: Path) -> None:
    entry = str(directory)
    if entry not in sys.path:
        sys.path.insert(0, entry)
        importlib.invalidate_caches()


def _import(module_name: str, directory: Path) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except SyntaxError as exc:  # the user's file does not parse: point at the line
        where = f"{_shown(exc.filename or '?')}:{exc.lineno}"
        raise ValueError(f"cannot import {module_name!r}: {where}: {exc.msg}") from None
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise ValueError(
                f"cannot import {module_name!r}: no module {missing!r} in {directory} or among "
                "the installed packages"
            ) from None
        where = _where(exc.__traceback__, directory)  # the module imports something not installed
        raise ValueError(f"cannot import {module_name!r}: {where}: {exc}") from None
    except Exception as exc:  # raised by the module's own code at import time
        where = _where(exc.__traceback__, directory)
        raise ValueError(
            f"cannot import {module_name!r}: {where}: {type(exc).__name__}: {exc}"
        ) from None


def load_object(spec: str, app_dir: str | Path | None = None) -> Any:
    """The object ``spec`` names, importing its module with ``app_dir`` (default: the working
    directory) first on ``sys.path``."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"expected 'package.module:attribute', got {spec!r}")
    directory = Path(app_dir if app_dir is not None else Path.cwd()).resolve()
    _put_first_on_path(directory)
    module = _import(module_name, directory)
    try:
        return getattr(module, attribute)
    except AttributeError:
        names = [n for n in vars(module) if not n.startswith("_")]
        close = difflib.get_close_matches(attribute, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        where = _shown(module.__file__) if module.__file__ else module_name
        raise ValueError(f"{where}: module {module_name!r} has no {attribute!r}{hint}") from None


def load_toolbox(spec: str, app_dir: str | Path | None = None) -> Toolbox:
    """Resolve ``spec`` to a ``Toolbox``, calling a factory function if that is what it names.

    ``app_dir`` (default: the working directory) is searched before the installed packages.
    """
    found = load_object(spec, app_dir)
    directory = Path(app_dir if app_dir is not None else Path.cwd()).resolve()
    if callable(found) and not isinstance(found, Toolbox) and not hasattr(found, "input_schema"):
        try:
            found = found()
        except Exception as exc:
            where = _where(exc.__traceback__, directory)
            raise ValueError(f"{spec}: {where}: {type(exc).__name__}: {exc}") from None
    if isinstance(found, Toolbox):
        return found
    try:
        return Toolbox(found)
    except TypeError as exc:
        raise ValueError(
            f"{spec} is not a Toolbox, a list of tools, or a function returning one: {exc}"
        ) from exc

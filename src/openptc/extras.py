"""Optional dependencies: a feature whose extra is not installed fails with one line naming the
``pip install 'openptc[...]'`` that brings it, not a traceback ending in ``ModuleNotFoundError``.

A plain ``pip install openptc`` has no provider SDK, no web server and no Docker client; each
comes with an extra (``pyproject.toml``). Code that imports one wraps the import in ``needs``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

Extra = Literal["anthropic", "openai", "bedrock", "proxy", "server", "docker", "mcp", "remote"]


class MissingExtra(ImportError, ValueError):
    """A feature needs a package that is not installed. An ``ImportError`` (it is one) and a
    ``ValueError`` (the user asked for something this installation cannot do), so callers that
    already report bad input with one line report this one too."""

    def __init__(self, extra: Extra, feature: str, package: str) -> None:
        super().__init__(
            f"{feature} needs the {package} package, which is not installed: "
            f"pip install 'openptc[{extra}]'",
            name=package,
        )
        self.extra = extra
        self.package = package


@contextmanager
def needs(extra: Extra, feature: str) -> Iterator[None]:
    """Imports inside this block that find a third-party package missing raise ``MissingExtra``
    naming ``extra``; a missing ``openptc`` module is a bug in openptc and propagates as is."""
    try:
        yield
    except ModuleNotFoundError as exc:
        package = (exc.name or "").partition(".")[0]
        if not package or package == "openptc":
            raise
        raise MissingExtra(extra, feature, package) from None


def require(extra: Extra, feature: str, *modules: str) -> None:
    """Import ``modules`` now, so that a missing extra fails before anything starts."""
    with needs(extra, feature):
        for module in modules:
            importlib.import_module(module)

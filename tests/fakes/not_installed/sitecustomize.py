"""Loaded at interpreter start when this directory is on PYTHONPATH: the distributions named in
``PTC_NOT_INSTALLED`` (comma-separated top-level modules) become unimportable, as after a plain
``pip install openptc`` without the extra that brings them.

A finder first on ``sys.meta_path`` answers for those names with the very error the import
system raises for a package that is not there, so every ``import`` of them, at any depth and in
any module, fails the way a user's would.
"""

import os
import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType

_MISSING = frozenset(n for n in os.environ.get("PTC_NOT_INSTALLED", "").split(",") if n)


class _NotInstalled(MetaPathFinder):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        top = fullname.partition(".")[0]
        if top in _MISSING:
            raise ModuleNotFoundError(f"No module named {top!r}", name=top)
        return None


sys.meta_path.insert(0, _NotInstalled())

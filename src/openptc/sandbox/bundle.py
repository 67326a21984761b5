"""The runtime, compiled once per sandbox pool and mounted read-only into every sandbox.

Importing a ready ``.pyc`` instead of compiling ``runtime.py`` from source in every interpreter
saves start-up time and about 1.2 MB of each idle session's memory (the compiler's arenas).
The bundle holds two modules under the names they are imported by inside the sandbox:
``ptc_runtime`` and ``ptc_program``, the part the runtime shares with the replay harness. The
boot code puts the bundle's directory first on ``sys.path``, where the runtime finds both.
"""

from __future__ import annotations

import os
import py_compile
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

MODULE = "ptc_runtime"
MOUNT_POINT = "/opt/openptc"
# Modules shipped under their own top-level names (the hyphen keeps the directory from being a
# package: see ptc_program.py there).
SHIPPED_MODULES = Path(__file__).with_name("shipped-modules")
# Each module of the bundle, by the name it is imported by inside the sandbox, and its source.
SOURCES = {
    MODULE: Path(__file__).with_name("runtime.py"),
    "ptc_program": SHIPPED_MODULES / "ptc_program.py",
}


@dataclass(frozen=True)
class RuntimeBundle:
    """A directory holding ``ptc_runtime.pyc`` and ``ptc_program.pyc`` for the sandbox."""

    directory: str

    def boot_code(self, *, mounted: bool) -> str:
        """The ``-c`` program that starts the runtime from the bundle."""
        where = MOUNT_POINT if mounted else self.directory
        return f"import sys; sys.path.insert(0, {where!r}); import {MODULE}; {MODULE}.main()"

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def build_bundle() -> RuntimeBundle:
    """Compile the bundle's modules with this interpreter (the one sandboxes run) into a fresh
    directory."""
    directory = tempfile.mkdtemp(prefix="openptc-runtime-")
    os.chmod(directory, 0o755)  # the sandbox's unprivileged uid must read it
    for module, source in SOURCES.items():
        target = Path(directory) / f"{module}.pyc"
        py_compile.compile(
            str(source),
            cfile=str(target),
            dfile=f"<openptc {module.removeprefix('ptc_')}>",  # never a host path in tracebacks
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        os.chmod(target, 0o644)
    return RuntimeBundle(directory)

"""What runs inside a sandbox imports the standard library alone (and its shipped siblings).

The runtime, the replay harness and the modules shipped beside them (``shipped-modules/``) run in
an interpreter with no site-packages and no openptc. import-linter checks the runtime and the
harness against ``openptc.**``, but it cannot see ``shipped-modules/`` (not a package), and a
third-party import would pass it too; this reads every import of every shipped file.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import openptc.sandbox

SANDBOX = Path(openptc.sandbox.__file__).parent
SHIPPED = SANDBOX / "shipped-modules"


def _top_level_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_shipped_code_imports_only_the_standard_library_and_itself() -> None:
    shipped = sorted(SHIPPED.glob("*.py"))
    assert {p.stem for p in shipped} >= {"ptc_program"}, "shipped modules not found"
    allowed = set(sys.stdlib_module_names) | {p.stem for p in shipped}
    for path in [SANDBOX / "runtime.py", SANDBOX / "managed" / "harness.py", *shipped]:
        foreign = _top_level_imports(path) - allowed
        assert not foreign, f"{path.name} imports {sorted(foreign)}: not available in a sandbox"


def test_the_check_sees_a_foreign_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import json\nif True:\n    from openptc.tools import tool\n")
    assert _top_level_imports(probe) - set(sys.stdlib_module_names) == {"openptc"}

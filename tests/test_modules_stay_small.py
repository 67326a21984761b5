"""No module of openptc grows past 500 lines: past that, it holds more than one idea — split it."""

from __future__ import annotations

from pathlib import Path

import openptc

LIMIT = 500


def test_every_module_has_at_most_500_lines() -> None:
    root = Path(openptc.__file__).parent
    sizes = {p.relative_to(root): len(p.read_text().splitlines()) for p in root.rglob("*.py")}
    assert len(sizes) > 50, "the package was not found where expected"
    too_long = {str(path): n for path, n in sizes.items() if n > LIMIT}
    assert not too_long, f"modules over {LIMIT} lines (split them by idea): {too_long}"

"""Scripted models are found by name among the ``openptc.scripted`` entry points.

openptc registers its own scenarios' brains there, and a user's package registers its own the
same way: here a real distribution on ``sys.path`` (its ``.dist-info`` with ``entry_points.txt``)
is found by ``model_from_string`` in a fresh interpreter, with nothing imported by hand.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from openptc.models import model_from_string


def test_the_expense_audit_brain_is_registered_by_openptc_itself() -> None:
    model = model_from_string("scripted:expense-audit")
    assert model.name == "scripted:expense-audit"
    assert "scripted" in model.label


def test_an_unknown_name_lists_the_registered_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown scripted model 'nope'; known: .*expense-audit"):
        model_from_string("scripted:nope")


def _distribution(root: Path, entry: str) -> None:
    (root / "mybrains.py").write_text(
        "def polite(request):\n    return 'hello from my own brain'\n\nNOT_A_POLICY = 42\n"
    )
    info = root / "mybrains-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mybrains\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[openptc.scripted]\n{entry}\n")


def _run(root: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_users_package_adds_its_own_scripted_model(tmp_path: Path) -> None:
    _distribution(tmp_path, "polite = mybrains:polite")
    done = _run(
        tmp_path,
        """
        import asyncio
        from openptc.models import ModelRequest, model_from_string
        model = model_from_string("scripted:polite")
        response = asyncio.run(model.generate(ModelRequest(system="", messages=(), tools=())))
        print(model.name, "|", response.text)
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "scripted:polite | hello from my own brain"


def test_an_entry_point_that_is_not_a_policy_is_refused_by_name(tmp_path: Path) -> None:
    _distribution(tmp_path, "broken = mybrains:NOT_A_POLICY")
    done = _run(
        tmp_path,
        """
        from openptc.models import model_from_string
        try:
            model_from_string("scripted:broken")
        except ValueError as exc:
            print(exc)
        """,
    )
    assert done.returncode == 0, done.stderr
    assert "scripted:broken (mybrains:NOT_A_POLICY) is not a policy" in done.stdout

"""pyproject.toml's floors for the SDKs and pydantic are the versions in constraints/floors.txt,
the ones scripts/sdk-floors.sh tests at: a floor changed in one place only fails here."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
FLOORED = {"anthropic", "openai", "boto3", "mcp", "pydantic"}


def _floors() -> dict[str, Version]:
    floors: dict[str, Version] = {}
    for line in (ROOT / "constraints" / "floors.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"a floor is pinned with '==': {line}"
            floors[canonicalize_name(req.name)] = Version(spec.version)
    return floors


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    texts = [*project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        texts += extra
    return [r for r in map(Requirement, texts) if canonicalize_name(r.name) != "openptc"]


def test_the_floors_file_names_every_floored_package() -> None:
    assert set(_floors()) >= FLOORED


def test_pyproject_floors_are_the_tested_floors() -> None:
    floors = _floors()
    seen = set()
    for req in _requirements():
        name = canonicalize_name(req.name)
        if name not in floors:
            continue
        seen.add(name)
        lower = [Version(s.version) for s in req.specifier if s.operator == ">="]
        assert lower == [floors[name]], (
            f"pyproject.toml asks for {req}; constraints/floors.txt tests {name}=={floors[name]}: "
            "change both, after scripts/sdk-floors.sh passes at the new floor"
        )
    assert seen >= FLOORED, f"not in pyproject.toml: {sorted(FLOORED - seen)}"

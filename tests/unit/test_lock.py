"""requirements.lock (written by scripts/lock) pins every dependency pyproject.toml names,
at a version that pyproject.toml allows, so that scripts/bootstrap installs what was tested.

A dependency added to pyproject.toml without running scripts/lock still installs
(scripts/bootstrap uses the lock as constraints only); this test is what says the lock
is stale.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    texts = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        texts.extend(extra)
    return [
        requirement
        for requirement in map(Requirement, texts)
        if canonicalize_name(requirement.name) != canonicalize_name(project["name"])
    ]


def _pins() -> dict[str, list[Version]]:
    """Every version the lock pins for each package (several when markers split one)."""
    pins: dict[str, list[Version]] = {}
    for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", line
        pins.setdefault(canonicalize_name(requirement.name), []).append(Version(specifier.version))
    return pins


def test_every_line_of_the_lock_is_an_exact_pin_without_extras() -> None:
    """pip refuses extras in a constraints file, and a range would pin nothing."""
    pins = _pins()
    assert len(pins) > 50
    for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            assert not Requirement(line).extras, line


def test_the_lock_pins_every_declared_dependency_at_an_allowed_version() -> None:
    pins = _pins()
    stale = []
    for requirement in _declared():
        versions = pins.get(canonicalize_name(requirement.name), [])
        if not versions or not any(requirement.specifier.contains(v) for v in versions):
            stale.append(str(requirement))
    assert not stale, f"requirements.lock is stale for {stale}: run scripts/lock"

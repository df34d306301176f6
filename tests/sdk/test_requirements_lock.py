"""tests/requirements.lock pins what scripts/test installs (without resolving): it must hold every
package tests/requirements.txt asks for, at a version that request accepts."""

from __future__ import annotations

from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

TESTS = Path(__file__).resolve().parents[1]


def _lines(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in _lines(TESTS / "requirements.lock"):
        spec = line.split(";", 1)[0].strip()
        name, sep, version = spec.partition("==")
        assert sep, f"requirements.lock: {line!r} is not pinned with =="
        pins[canonicalize_name(name)] = version.strip()
    return pins


def test_the_lock_pins_every_requirement_at_an_accepted_version() -> None:
    pins = _pins()
    for line in _lines(TESTS / "requirements.txt"):
        wanted = Requirement(line)
        name = canonicalize_name(wanted.name)
        assert name in pins, (
            f"{wanted.name} is in tests/requirements.txt but not in tests/requirements.lock: "
            "compile the lock again (see its header)"
        )
        assert wanted.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {wanted.name}=={pins[name]}, outside {wanted.specifier}"
        )

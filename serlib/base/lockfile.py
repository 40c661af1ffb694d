"""The exact lock (``requirements.lock``) and the files that must agree with it.

``make lock`` resolves pyproject.toml's compatible ranges (dependencies plus the ``dev`` extra) into one
exact pin per package, with the hashes of every file PyPI has for that version, for the supported
platform (Linux x86_64, CPython 3.11, CPU). ``make install`` installs exactly those pins; the ranges stay
for people who install serlib into an environment of their own. Three files must then agree, and
``tests/test_lock.py`` checks that they do:

- ``requirements.lock`` satisfies every range of pyproject.toml and names every dependency, and its
  header line ``# inputs: <sha256>`` is the digest of the pyproject.toml lists it was compiled from
  (``inputs_digest``), so a changed dependency list without a new lock fails the tests;
- ``environment.yml``'s pip section holds exactly the lock's pins (``render_environment``), so a conda
  user gets the same versions.

Standard library only (``packaging`` is imported where ranges are checked), so that ``make lock`` can run
this module with any Python 3.11 before anything is installed: ``python -m serlib.base.lockfile finish
requirements.lock.new`` adds the digest line, ``python -m serlib.base.lockfile environment`` rewrites
environment.yml from the lock.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

LOCK_NAME = "requirements.lock"
ENVIRONMENT_NAME = "environment.yml"
LOCKED_EXTRAS = ("dev",)  # the gpu extra is not locked: the lock is for the CPU platform
DIGEST_PREFIX = "# inputs: "
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")


class LockError(ValueError):
    """The lock file is absent, unreadable or disagrees with pyproject.toml; the message says what to run."""


def canonical(name: str) -> str:
    """A distribution name as PyPI compares them (PEP 503): lower case, runs of ``-_.`` as one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: str | Path) -> dict[str, str]:
    """``{canonical name: version}`` of every ``name==version`` line of a lock file, in file order."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LockError(
            f"{path} does not exist; run `make lock` to generate it from pyproject.toml"
        ) from None
    pins: dict[str, str] = {}
    for line in text.splitlines():
        match = _PIN.match(line)
        if match:
            pins[canonical(match.group(1))] = match.group(3)
    if not pins:
        raise LockError(f"{path} holds no `name==version` pins; run `make lock` to regenerate it")
    return pins


def pin_lines(path: str | Path) -> list[str]:
    """The pins as written in the lock (``absl-py==2.5.1``), without hashes or comments."""
    lines = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line)
        if match:
            lines.append(f"{match.group(1)}=={match.group(3)}")
    return lines


def locked_requirements(pyproject: str | Path) -> list[str]:
    """The requirement strings the lock is compiled from: ``dependencies`` plus the locked extras."""
    project = tomllib.loads(Path(pyproject).read_text(encoding="utf-8"))["project"]
    requirements = list(project["dependencies"])
    for extra in LOCKED_EXTRAS:
        requirements += project.get("optional-dependencies", {}).get(extra, [])
    return requirements


def inputs_digest(pyproject: str | Path) -> str:
    """sha256 of the requirement lists the lock is compiled from (whitespace and order do not count)."""
    project = tomllib.loads(Path(pyproject).read_text(encoding="utf-8"))["project"]
    inputs = {
        "requires-python": project.get("requires-python", ""),
        "requirements": sorted(re.sub(r"\s+", "", r) for r in locked_requirements(pyproject)),
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode("utf-8")).hexdigest()


def recorded_digest(lock: str | Path) -> str | None:
    """The ``# inputs:`` digest in the lock's header, or None when the lock has none."""
    for line in Path(lock).read_text(encoding="utf-8").splitlines():
        if line.startswith(DIGEST_PREFIX):
            return line.removeprefix(DIGEST_PREFIX).split()[0]
        if _PIN.match(line):
            break
    return None


def range_problems(pyproject: str | Path, lock: str | Path) -> list[str]:
    """Requirements of pyproject.toml that the lock does not satisfy (absent, or pinned outside the
    range); empty when the lock fits. Markers are evaluated for the lock's platform (Linux, 3.11)."""
    from packaging.requirements import Requirement  # noqa: PLC0415 - runs before anything is installed

    pins = read_pins(lock)
    environment = {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64"}
    environment |= {"python_version": "3.11", "implementation_name": "cpython", "os_name": "posix"}
    problems = []
    for text in locked_requirements(pyproject):
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate(environment | {"extra": ""}):
            continue
        name = canonical(requirement.name)
        if name not in pins:
            problems.append(f"{text}: not in the lock")
        elif not requirement.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{text}: the lock pins {pins[name]}")
    return problems


def finish(path: str | Path, pyproject: str | Path) -> None:
    """Add the ``# inputs:`` digest line after the header of a lock just written by ``uv pip compile``."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines = [line for line in lines if not line.startswith(DIGEST_PREFIX)]
    first_pin = next(i for i, line in enumerate(lines) if _PIN.match(line))
    digest = (
        f"{DIGEST_PREFIX}{inputs_digest(pyproject)} (sha256 of pyproject.toml's dependencies and "
        f"{'/'.join(LOCKED_EXTRAS)} extra; tests/test_lock.py compares it)"
    )
    lines.insert(first_pin, digest)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def render_environment(lock: str | Path) -> str:
    """environment.yml for conda: Python 3.11 and pip from conda-forge, then pip installs exactly the
    lock's pins and serlib from the checkout.

    The pins are listed one by one, without hashes: conda hands the pip section to ``pip install -r``
    as one requirements file, and a file in which any line carries a hash puts pip into hash-checking
    mode, which refuses the editable ``-e .``. Every package of the resolution is pinned, so pip's
    resolver has no choice left: the versions are the lock's.
    """
    header = [
        "# Conda environment with the exact pins of requirements.lock (written by `make lock`; do not edit:",
        "# tests/test_lock.py checks that the pins are the lock's).",
        "#   conda env create -f environment.yml && conda activate serlib",
        "name: serlib",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        "  - python=3.11",
        "  - pip",
        "  - make",
        "  - pip:",
    ]
    pins = [f'      - "{line}"' for line in pin_lines(lock)]
    return "\n".join([*header, *pins, '      - "-e ."']) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m serlib.base.lockfile", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    finish_parser = commands.add_parser("finish", help="add the inputs digest to a freshly compiled lock")
    finish_parser.add_argument("lock", type=Path)
    finish_parser.add_argument("--pyproject", type=Path, default=Path("pyproject.toml"))
    environment_parser = commands.add_parser("environment", help="write environment.yml from the lock")
    environment_parser.add_argument("--lock", type=Path, default=Path(LOCK_NAME))
    environment_parser.add_argument("--out", type=Path, default=Path(ENVIRONMENT_NAME))
    args = parser.parse_args(argv)
    try:
        if args.command == "finish":
            finish(args.lock, args.pyproject)
        else:
            args.out.write_text(render_environment(args.lock), encoding="utf-8")
    except LockError as error:
        print(f"serlib.base.lockfile: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

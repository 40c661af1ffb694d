"""The exact lock: it satisfies pyproject.toml, environment.yml installs its pins, make installs from it.

``make lock`` needs PyPI, so it is not run here; these tests check what it produced and what the
Makefile does with it (serlib.base.lockfile).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from serlib.base import lockfile

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / lockfile.LOCK_NAME
PYPROJECT = ROOT / "pyproject.toml"


def test_lock_satisfies_every_range_of_pyproject() -> None:
    assert lockfile.range_problems(PYPROJECT, LOCK) == []
    pins = lockfile.read_pins(LOCK)
    assert len(pins) > 100  # the whole resolution, not only the direct dependencies
    assert pins["tensorflow-cpu"].startswith("2.21.") and pins["numpy"].startswith("2.4.")


def test_lock_was_compiled_from_the_current_dependency_lists() -> None:
    assert lockfile.recorded_digest(LOCK) == lockfile.inputs_digest(PYPROJECT), (
        "pyproject.toml's dependencies changed since requirements.lock was generated: run `make lock`"
    )


def test_every_pin_carries_hashes_and_no_pin_is_loose() -> None:
    text = LOCK.read_text(encoding="utf-8")
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 3)[3])
    requirements = [entry for entry in entries if not entry.startswith("#")]
    assert len(requirements) == len(lockfile.read_pins(LOCK))
    for entry in requirements:
        assert re.match(r"^[A-Za-z0-9._-]+(\[[^\]]*\])?==\S+ \\\n", entry), entry.splitlines()[0]
        assert "--hash=sha256:" in entry, f"{entry.splitlines()[0]} has no hash"
    assert "make lock" in text.splitlines()[1]


def test_environment_yml_installs_exactly_the_lock_pins() -> None:
    environment = yaml.safe_load((ROOT / lockfile.ENVIRONMENT_NAME).read_text(encoding="utf-8"))
    assert "python=3.11" in environment["dependencies"]
    pip_section = next(item["pip"] for item in environment["dependencies"] if isinstance(item, dict))
    assert pip_section[-1] == "-e ."
    pins = {}
    for line in pip_section[:-1]:
        name, _, version = line.partition("==")
        assert version and not line.startswith("-"), f"environment.yml: {line!r} is not an exact pin"
        pins[lockfile.canonical(name)] = version
    assert pins == lockfile.read_pins(LOCK)
    assert (ROOT / lockfile.ENVIRONMENT_NAME).read_text(encoding="utf-8") == lockfile.render_environment(LOCK)


def test_range_check_names_a_pin_outside_its_range(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    text = LOCK.read_text(encoding="utf-8")
    version = lockfile.read_pins(LOCK)["numpy"]
    lock.write_text(text.replace(f"\nnumpy=={version} ", "\nnumpy==2.3.0 "), encoding="utf-8")
    assert lockfile.range_problems(PYPROJECT, lock) == ["numpy>=2.4,<2.5: the lock pins 2.3.0"]
    lock.write_text(re.sub(r"\nnumpy==", "\nnumpyx==", text), encoding="utf-8")
    assert lockfile.range_problems(PYPROJECT, lock) == ["numpy>=2.4,<2.5: not in the lock"]


def test_inputs_digest_follows_the_dependency_lists_only(tmp_path: Path) -> None:
    text = PYPROJECT.read_text(encoding="utf-8")
    changed = tmp_path / "pyproject.toml"
    changed.write_text(text.replace("line-length = 110", "line-length = 100"), encoding="utf-8")
    assert lockfile.inputs_digest(changed) == lockfile.inputs_digest(PYPROJECT)
    changed.write_text(text.replace('"numpy>=2.4,<2.5"', '"numpy>=2.4,<2.6"'), encoding="utf-8")
    assert lockfile.inputs_digest(changed) != lockfile.inputs_digest(PYPROJECT)


def test_absent_lock_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(lockfile.LockError, match=r"absent\.lock does not exist; run `make lock`"):
        lockfile.read_pins(tmp_path / "absent.lock")


def _make_dry_run(*arguments: str) -> str:
    result = subprocess.run(
        ["make", "-n", *arguments], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    return result.stdout


def test_make_install_installs_the_lock_and_only_when_it_changed() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    stamp_rule = re.search(r"^\$\(STAMP\): (.*)$", makefile, re.M)
    assert stamp_rule is not None and "$(LOCK)" in stamp_rule.group(1).split()
    uv = _make_dry_run("-B", "install", "VENV=/nonexistent-venv")
    assert "pip sync" in uv and "--require-hashes requirements.lock" in uv and "--no-deps -e ." in uv
    pip = _make_dry_run("-B", "install", "VENV=/nonexistent-venv", "INSTALLER=pip")
    assert "pip install --quiet --require-hashes -r requirements.lock" in pip and "--no-deps -e ." in pip
    # .pyc files written at install: with PYTHONDONTWRITEBYTECODE set, no process would cache them
    assert "--compile-bytecode" in uv and "--no-compile" not in pip
    for target in ("demo", "test"):
        assert re.search(rf"^{target}: \$\(STAMP\)", makefile, re.M), f"make {target} must install first"


def test_make_lock_compiles_for_the_supported_platform_from_scratch() -> None:
    commands = _make_dry_run("lock")
    assert "--generate-hashes" in commands and "--extra dev" in commands
    assert "--python-version 3.11" in commands and "--python-platform x86_64-unknown-linux-gnu" in commands
    assert "--exclude-newer" in commands  # the same pins whenever it is run
    assert "--output-file requirements.lock.new" in commands  # not seeded with the previous pins
    assert "serlib.base.lockfile environment" in commands

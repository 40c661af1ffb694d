"""The wheel: ``python -m build`` builds it without a build-backend warning, it holds every subpackage and
the package data, and installed into a fresh virtual environment it runs ``serlib --help``.

The fresh environment reuses this environment's installed dependencies through a ``.pth`` file (the
wheel itself is installed with ``--no-deps``), so the test needs no network and takes seconds. The build
runs ``--no-isolation`` with the locked setuptools (requirements.lock), for the same reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# setuptools prints this when PYTHONDONTWRITEBYTECODE is set (an environment choice, not a packaging one)
BENIGN = re.compile(r"byte-compiling is disabled")


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment, **kwargs)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> tuple[Path, str]:
    """The wheel built from a copy of the checkout's package sources, and the build's output."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "serlib", source / "serlib", ignore=shutil.ignore_patterns("__pycache__"))
    build = [sys.executable, "-m", "build", "--wheel", "--no-isolation"]
    result = _run([*build, "--outdir", str(base / "dist"), str(source)])
    assert result.returncode == 0, result.stdout + result.stderr
    (path,) = (base / "dist").glob("serlib-*.whl")
    return path, result.stdout + result.stderr


@pytest.mark.slow
def test_build_prints_no_backend_warning(wheel) -> None:
    _, output = wheel
    warnings = [
        line
        for line in output.splitlines()
        if re.search(r"warn|deprecat|!!", line, re.I) and not BENIGN.search(line)
    ]
    assert warnings == [], "\n".join(warnings)


@pytest.mark.slow
def test_wheel_holds_every_module_and_the_package_data(wheel) -> None:
    path, _ = wheel
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        metadata = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "serlib").rglob("*.py")}
    assert modules <= names, f"modules missing from the wheel: {sorted(modules - names)}"
    data = {p.relative_to(ROOT).as_posix() for p in (ROOT / "serlib").rglob("*.conf")}
    assert "serlib/features/logmel.conf" in data and data <= names
    templates = {p.relative_to(ROOT).as_posix() for p in (ROOT / "serlib").rglob("*.j2")}  # the report's
    assert "serlib/app/templates/section_configuration.html.j2" in templates and templates <= names
    references = {p.relative_to(ROOT).as_posix() for p in (ROOT / "serlib" / "references").iterdir()}
    assert "serlib/references/paper.csv" in references and references <= names  # `serlib check`'s
    assert "License-Expression: MIT" in metadata


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv_and_runs_serlib_help(wheel, tmp_path) -> None:
    path, _ = wheel
    venv = tmp_path / "venv"
    created = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    assert created.returncode == 0, created.stderr
    python = venv / "bin" / "python"
    site = Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    )
    # the dependencies: this environment's site-packages (its .pth files, serlib's editable hook
    # among them, are not processed from a path entry, so only the wheel provides serlib)
    shared = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "_dependencies.pth").write_text("\n".join(shared) + "\n", encoding="utf-8")
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    installed = _run([*pip, "install", "--no-deps", "--no-index", str(path)])
    assert installed.returncode == 0, installed.stdout + installed.stderr

    helped = _run([str(venv / "bin" / "serlib"), "--help"], cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "reproduce" in helped.stdout and "provenance" in helped.stdout
    where = _run(
        [
            str(python),
            "-c",
            "import importlib.resources, serlib; print(serlib.__file__); "
            "print((importlib.resources.files('serlib') / 'features' / 'logmel.conf').is_file())",
        ],
        cwd=tmp_path,
    )
    assert where.returncode == 0, where.stderr
    module, has_data = where.stdout.split()
    assert Path(module).is_relative_to(venv) and has_data == "True"

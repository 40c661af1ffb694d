"""Packaging: pyproject.toml keeps compatible ranges, and the README/CI carry the two commands.

The lock, environment.yml and the wheel: tests/test_lock.py and tests/test_packaging.py."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_dependency_is_pinned_to_a_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        assert ">=" in requirement and "<" in requirement, f"{requirement} needs a compatible range"


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"^make test$", ci, re.M)
    assert "make test" in readme and "make demo" in readme


def test_generated_folders_are_ignored() -> None:
    ignored = (ROOT / ".gitignore").read_text().split()
    for folder in ("runs/", "cache/", ".venv/"):
        assert folder in ignored


def test_make_install_configures_jupyterlab_for_a_course() -> None:
    """`make install` (which ran to create this environment): JupyterLab never asks about Jupyter news or
    looks for updates, and new notebooks start on the serlib kernel."""
    import json
    import sys

    settings = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    assert settings.is_file(), f"{settings} is missing: run make install"
    notification = json.loads(settings.read_text())["@jupyterlab/apputils-extension:notification"]
    assert notification == {"fetchNews": "false", "checkForUpdates": False}
    server = json.loads((Path(sys.prefix) / "etc" / "jupyter" / "jupyter_server_config.json").read_text())
    assert server["MultiKernelManager"]["default_kernel_name"] == "serlib"

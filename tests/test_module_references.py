"""Every module path the prose names exists: dotted paths (``serlib.models.acnn.feed``) import, with any
trailing attribute (``serlib.data.download.ARCHIVES``), and file paths (``serlib/models/acnn/model.py``)
are files of the checkout. Scans docs/, notebooks/, configs/, benchmarks/ and README.md, so a moved
module cannot leave stale references behind (issue 37)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLACES = ("docs", "notebooks", "configs", "benchmarks", "README.md")
SUFFIXES = {".md", ".ipynb", ".yaml", ".py", ".txt", ".csv"}
DOTTED = re.compile(r"(?<![\w/.-])serlib(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
FILE = re.compile(r"(?<![\w/.-])serlib/[\w/]+\.(?:py|yaml|j2|json|csv|conf)\b")
NOT_MODULES = {"serlib.log", "serlib.egg"}  # file names that look dotted: <output_dir>/logs/serlib.log


def _texts() -> dict[Path, str]:
    files: list[Path] = []
    for place in PLACES:
        path = ROOT / place
        files += [path] if path.is_file() else [p for p in path.rglob("*") if p.suffix in SUFFIXES]
    return {path: path.read_text(encoding="utf-8", errors="replace") for path in sorted(files)}


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    module, found = None, 0
    for end in range(1, len(parts) + 1):
        try:
            module = importlib.import_module(".".join(parts[:end]))
            found = end
        except ModuleNotFoundError:
            break
    node = module
    for name in parts[found:]:
        if not hasattr(node, name):
            return False
        node = getattr(node, name)
    return True


def test_dotted_module_paths_import() -> None:
    missing: dict[str, list[str]] = {}
    for path, text in _texts().items():
        for dotted in set(DOTTED.findall(text)):
            dotted = dotted.rstrip(".")
            if dotted in NOT_MODULES or _resolves(dotted):
                continue
            missing.setdefault(dotted, []).append(str(path.relative_to(ROOT)))
    assert not missing, f"module paths that do not import: {missing}"


def test_file_paths_exist() -> None:
    missing: dict[str, list[str]] = {}
    for path, text in _texts().items():
        for name in set(FILE.findall(text)):
            if not (ROOT / name).exists():
                missing.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert not missing, f"serlib/ file paths that do not exist: {missing}"

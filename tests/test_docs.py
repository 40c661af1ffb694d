"""The README and docs against the code: every command, file and Python name they mention exists.

Read in code spans and code blocks of README.md and docs/*.md:
- ``serlib <command> --flag``: the command and its flags exist in ``serlib.cli``'s parser, and are not an
  old spelling kept for compatibility (hidden from ``--help``);
- ``make <target>``: the target is in the Makefile;
- paths under the repository's tracked folders (``configs/``, ``serlib/``, ``tests/``, ...): they exist;
- dotted names of serlib (``experiments.run_protocol``, ``serlib.corpora.EMODB_SESSIONS``,
  ``acnn.pool_stride``): an attribute of a serlib module, or a key of the configuration.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
from pathlib import Path

import pydantic
import pytest

import serlib
from serlib.app import cli
from serlib.base import config as config_module
from serlib.base import config_compat

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TRACKED = ("configs/", "serlib/", "tests/", "benchmarks/", "notebooks/", "docs/", ".ci/")
CODE = re.compile(r"```[^\n]*\n(.*?)```|`([^`\n]+)`", re.S)


def _code(text: str) -> list[str]:
    return [block or span for block, span in CODE.findall(text)]


def _modules() -> dict[str, list[str]]:
    """Short name -> dotted module names of every serlib module (``experiments`` -> [...])."""
    names: dict[str, list[str]] = {}
    for info in pkgutil.walk_packages(serlib.__path__, "serlib."):
        names.setdefault(info.name.rsplit(".", 1)[-1], []).append(info.name)
    return names


def _config_paths() -> set[str]:
    """Every dotted key of the configuration (``acnn.pool_stride``, ``features.logmel.max_frames``)."""
    paths: set[str] = set()

    def walk(model: type, prefix: str) -> None:
        for name, field in model.model_fields.items():
            paths.add(prefix + name)
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
                walk(annotation, f"{prefix}{name}.")

    walk(config_module.Config, "")
    return paths


def _resolves(dotted: str, modules: dict[str, list[str]], keys: set[str]) -> bool:
    parts = dotted.removeprefix("serlib.").split(".")
    for size in range(len(parts), 0, -1):
        candidates = [".".join(["serlib", *parts[:size]])]
        candidates += [m for m in modules.get(parts[size - 1], []) if size == 1]
        for module_name in candidates:
            try:
                value = importlib.import_module(module_name)
            except ImportError:
                continue
            try:
                for attribute in parts[size:]:
                    value = getattr(value, attribute)
            except AttributeError:
                continue
            return True
    stripped = dotted.removeprefix("serlib.").removeprefix("config.")
    if stripped in config_compat.RENAMED:  # an old key, still read (with a warning naming the new one)
        return True
    if stripped in keys or any(key.endswith("." + stripped) for key in keys):
        return True
    return "." not in stripped and hasattr(config_module.Config, stripped)  # a property such as cache_path


def _mentions() -> list[tuple[str, str]]:
    return [(path.name, code) for path in DOCUMENTS for code in _code(path.read_text(encoding="utf-8"))]


def test_serlib_commands_and_flags_exist() -> None:
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    checked = 0
    for document, code in _mentions():
        for line in re.sub(r"\\\n\s*", " ", code).splitlines():  # a command continued with \ is one line
            line = line.split("#")[0]  # shell comments are prose
            match = re.search(r"(?:^|\s|/)serlib (?!-)([a-z][a-z-]*)(.*)", line)
            if match is None or re.search(r"python -m serlib|from serlib|import serlib", line):
                continue
            command, rest = match.group(1), match.group(2)
            assert command in commands, f"{document}: `serlib {command}` is not a command of serlib"
            known = {  # an old spelling (hidden from --help, deprecated) is not documented
                option
                for action in commands[command]._actions
                if action.help is not argparse.SUPPRESS
                for option in action.option_strings
            }
            if command == "config":
                known |= {
                    option
                    for sub in commands[command]._actions
                    if sub.choices
                    for p in sub.choices.values()
                    for a in p._actions
                    if a.help is not argparse.SUPPRESS
                    for option in a.option_strings
                }
            for flag in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", rest):
                assert flag in known, f"{document}: `serlib {command} {flag}`: no such option"
            checked += 1
    assert checked >= 10


def test_make_targets_exist() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))
    for document, code in _mentions():
        for target in re.findall(r"\bmake ([a-z][a-z-]*)", code):
            assert target in targets, f"{document}: `make {target}` is not a Makefile target"


def test_mentioned_repository_files_exist() -> None:
    checked = 0
    for document, code in _mentions():
        for token in re.findall(r"(?<![\w./-])((?:\.\./)?[\w.-]+(?:/[\w.*-]+)+/?)", code):
            if not token.startswith(TRACKED) or "*" in token or "<" in token:
                continue
            path = ROOT / token.split("::")[0]
            assert path.exists(), f"{document} mentions {token}, which does not exist"
            checked += 1
    assert checked >= 20


def test_mentioned_python_names_exist() -> None:
    modules = _modules()
    keys = _config_paths()
    # short names that are also everyday words in the docs (Keras' ``model.fit``, a results folder)
    ambiguous = {"model", "results", "layers"}
    prefixes = {name for name in modules if not name.startswith("_") and name not in ambiguous} | {"serlib"}
    checked, missing = 0, []
    for document, code in _mentions():
        for dotted in re.findall(r"(?<![\w./$-])([a-z_]+(?:\.[A-Za-z_][A-Za-z0-9_]*)+)(?![\w/])", code):
            if dotted.split(".")[0] not in prefixes or dotted.endswith(
                (".py", ".md", ".yaml", ".csv", ".json", ".keras", ".h5", ".png")
            ):
                continue
            checked += 1
            if not _resolves(dotted, modules, keys):
                missing.append(f"{document}: {dotted}")
    assert not missing, "names in the docs that the code does not have:\n" + "\n".join(missing)
    assert checked >= 30


@pytest.mark.parametrize("document", [path.name for path in DOCUMENTS])
def test_documents_link_to_existing_files(document: str) -> None:
    path = next(p for p in DOCUMENTS if p.name == document)
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://")):
            continue
        assert (path.parent / target).exists(), f"{document} links to {target}, which does not exist"


def test_named_tests_exist() -> None:
    """``test_file.py::test_name`` references (docs/reliability.md cites the test of each promise)."""
    checked = 0
    for document, code in _mentions():
        for file, name in re.findall(r"(test_\w+\.py)?::(test_\w+)", code):
            if not file:
                continue
            source = (ROOT / "tests" / file).read_text(encoding="utf-8")
            assert re.search(rf"^def {name}\(", source, re.M), f"{document}: {file}::{name} does not exist"
            checked += 1
    assert checked >= 5

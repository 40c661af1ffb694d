"""Each fact of the paper is written once in the package (issue 43, item 2): its Table 1 in
serlib/references/paper.csv, its settings in serlib/presets/paper.yaml."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

import serlib
from serlib.base import config
from serlib.evidence.references import paper_table1, references_dir

PACKAGE = Path(serlib.__file__).parent
SOURCE_SUFFIXES = {".py", ".yaml", ".j2", ".json", ".conf"}


def _paper_values() -> set[str]:
    frame = pd.read_csv(references_dir() / "paper.csv")
    return {f"{value:.2f}" for value in frame[["mean", "min", "max"]].to_numpy().ravel()}


def test_no_paper_table1_value_is_written_a_second_time_in_the_package():
    values = _paper_values()
    assert len(values) == 30  # 10 cells x mean/min/max, all distinct at two decimals
    paper_files = {references_dir() / "paper.csv", references_dir() / "paper.json"}
    probes = sorted((PACKAGE.parent / "docs" / "probes").glob("*.py"))  # they write the references
    found = [
        (path.as_posix(), value)
        for path in [*sorted(PACKAGE.rglob("*")), *probes]
        if path.suffix in SOURCE_SUFFIXES and path not in paper_files and path.is_file()
        for value in values
        if value in path.read_text(encoding="utf-8", errors="replace")
    ]
    assert found == [], f"the paper's Table 1 values belong in serlib/references/paper.csv only: {found}"


def test_the_report_reads_the_paper_table_from_the_reference():
    table = paper_table1()
    assert sorted(table) == ["BL", "C", "Li", "fT", "sT"]
    assert table["fT"]["cross"] == (45.76, 45.02, 46.69) and table["BL"]["within"][0] == 58.03


# -- the paper's settings: written in serlib/presets/paper.yaml only ------------------------------------
PAPER_YAML = PACKAGE / "presets" / "paper.yaml"
NAMELESS = {"corpora", "protocol.conditions"}  # names and lists of names, not settings
GENERIC = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 30, 32, 64, 100, 0.001, 0.01, 0.2, 0.3}
"""Paper values too common to mean the paper wherever they stand (counts, shares, timeouts): caught only
where the name says it is the setting (``bands = 26``, ``perplexity: float = 30.0``)."""
SAME_NUMBER_OTHER_FACT = {
    ("data/demo/lengths.py", "SAMPLE_RATE"): "the rate its length-profile WAV files are written at",
    ("features/store.py", "_WRITE_ROWS"): "rows buffered before an HDF5 write",
}
"""Literals equal to a paper value that state another fact, each with what it is."""


def _settings() -> dict[str, Any]:
    """Every numeric leaf of the paper preset by dotted key (not the corpora's or conditions' names)."""
    leaves: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if prefix.rstrip(".") in NAMELESS:
            return
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        elif isinstance(node, int | float) and not isinstance(node, bool):
            leaves[prefix.rstrip(".")] = node

    walk(yaml.safe_load(PAPER_YAML.read_text(encoding="utf-8")), "")
    return leaves


def _literal(node: ast.AST | None) -> Any:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _literal(node.operand)
        return -inner if isinstance(inner, int | float) else None
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return None if isinstance(node.value, bool) else node.value
    return None


def _named_literals(tree: ast.Module) -> list[tuple[str, Any, int]]:
    """(name, number, line) of every literal that states a value under a name: a function parameter's
    default, a module constant, a class attribute or a pydantic ``Field(default)``."""
    found: list[tuple[str, Any, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = node.args
            positional = [*arguments.posonlyargs, *arguments.args]
            pairs = list(
                zip(positional[len(positional) - len(arguments.defaults) :], arguments.defaults, strict=True)
            )
            pairs += [
                (a, d)
                for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)
                if d is not None
            ]
            found += [(a.arg, _literal(d), d.lineno) for a, d in pairs]
        elif isinstance(node, ast.Module | ast.ClassDef):
            for statement in node.body:
                target, value = None, None
                if isinstance(statement, ast.Assign) and isinstance(statement.targets[0], ast.Name):
                    target, value = statement.targets[0].id, statement.value
                elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                    target, value = statement.target.id, statement.value
                if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "Field":
                    value = value.args[0] if value.args else None
                if target is not None:
                    found.append((target, _literal(value), statement.lineno))
    return [(name, value, line) for name, value, line in found if value is not None]


def test_no_paper_setting_is_written_a_second_time_in_the_package():
    """A literal equal to a paper setting is a second copy where its name is the setting's
    (``bands: int = 26``, ``MAX_FRAMES = 750``) or where the number is distinctive (6500.0, 0.025,
    750, ...): the schema, the functions and the constants read the preset instead."""
    settings = _settings()
    by_name: dict[str, set[Any]] = {}
    for dotted, value in settings.items():
        if value not in (0, 1):
            by_name.setdefault(dotted.rsplit(".", 1)[-1], set()).add(value)
    distinctive = {value for value in settings.values() if value not in GENERIC}
    assert {6500.0, 0.025, 750, 0.08, 128, -60.0, 7.5} <= distinctive  # the test sees the settings
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        for name, value, line in _named_literals(ast.parse(path.read_text(encoding="utf-8"))):
            if (relative, name) in SAME_NUMBER_OTHER_FACT:
                continue
            if value in by_name.get(name.lower(), set()) or value in distinctive:
                found.append(f"{relative}:{line}: {name} = {value}")
    assert found == [], f"the paper's settings belong in serlib/presets/paper.yaml only: {found}"


def test_the_schema_defaults_are_the_paper_presets_values():
    """Each section's defaults are the preset's values (read from it), apart from the one
    compatibility default: a spectrogram store without ``store_decimals`` (written before the key
    existed) was lossless."""
    preset = yaml.safe_load(PAPER_YAML.read_text(encoding="utf-8"))
    sections = {
        "audio": config.AudioConfig,
        "features.logmel": config.LogMelConfig,
        "features.spectrogram": config.SpectrogramConfig,
        "autoencoder": config.AutoencoderConfig,
        "acnn": config.ACNNConfig,
        "tsne": config.TSNEConfig,
    }
    for dotted, model in sections.items():
        expected = preset
        for part in dotted.split("."):
            expected = expected[part]
        dumped = model().model_dump(mode="json")
        if dotted == "features.spectrogram":
            assert "store_decimals" not in dumped and expected.pop("store_decimals") == 4
        assert dumped == expected, dotted
    protocol = config.ProtocolConfig().model_dump(mode="json")
    assert {k: v for k, v in protocol.items() if k != "conditions"} == {
        k: v for k, v in preset["protocol"].items() if k != "conditions"
    }


def test_logmel_conf_defaults_are_the_paper_presets():
    """``logmel.conf`` keeps its ``\\cm[name{default}]`` values unchanged (its bytes are part of every
    log-Mel store's key: rewriting it would extract every store and retrain every run again), so it is
    checked against the preset instead of generated; serlib always passes the values themselves."""
    text = (PACKAGE / "features" / "logmel.conf").read_text(encoding="utf-8")
    defaults = dict(re.findall(r"\\cm\[(\w+)\{([^}?]*)\}", text))
    logmel = config.load_preset("paper").features.logmel
    assert int(defaults["nBands"]) == logmel.bands
    assert float(defaults["lofreq"]) == logmel.low_hz and float(defaults["hifreq"]) == logmel.high_hz
    assert float(defaults["frameSize"]) == logmel.frame_s and float(defaults["frameStep"]) == logmel.shift_s


def test_the_shipped_paper_reference_is_what_its_committed_command_writes(tmp_path, monkeypatch):
    """paper.json (the paper preset's comparison hash beside the typed paper.csv) is rebuilt by
    `python docs/probes/results_references.py paper`, not edited by hand."""
    import json
    import shutil

    monkeypatch.syspath_prepend(str(PACKAGE.parent / "docs" / "probes"))
    import results_references

    shutil.copyfile(references_dir() / "paper.csv", tmp_path / "paper.csv")
    results_references.build("paper", references=tmp_path)
    written = json.loads((tmp_path / "paper.json").read_text(encoding="utf-8"))
    shipped = json.loads((references_dir() / "paper.json").read_text(encoding="utf-8"))
    assert written == shipped
    assert (tmp_path / "paper.csv").read_bytes() == (references_dir() / "paper.csv").read_bytes()

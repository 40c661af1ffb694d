"""The report's numbers generated from ``results/``, not typed: ``serlib evidence`` (and ``--check``).

A Markdown document marks each generated part with an opening and a closing comment; what lies between
them is rewritten from the committed results folders (``--check`` rewrites nothing and names every
block, line and number that differs):

* ``<!-- evidence:table1 nemo -->`` ... ``<!-- /evidence -->``: Table 1 of ``results/nemo`` (with the
  paired comparisons, as ``serlib table`` prints them);
* ``<!-- evidence:pool family.yaml -->`` ... : the declared family and the pooled estimate (DL and
  HKSJ), as ``serlib pool --family results/family.yaml`` prints them, less the mixed-model check (an
  iterative optimiser whose digits may differ on another CPU; ``serlib pool`` prints it);
* ``<!-- evidence:members family.yaml@emodb,ravdess -->`` ... : the declared family's rows of those
  member folders only, with unadjusted p-values (the part of the family already exported; Holm over a
  part is not the family's adjustment); ``FILE@FOLDERS`` works in ``member`` blocks too;
* ``<!-- evidence:speakers emodb-ae-seed1:within:U4h:all mean_difference +.2f -->``: one number of
  the speaker-level test of a folder outside the family (an exploratory reading);
* ``<!-- evidence:uar nemo within BL mean .1f -->``: one cell of a folder's Table 1 (UAR in %, a
  column of ``table1.table1``: mean, min, max, ci_low, ci_high, pooled_mean, seeds, ...), the SVM's
  runs included as the condition ``eGeMAPS-SVM`` where the folder has them; ``<!-- evidence:margin
  nemo within BL eGeMAPS-SVM +.1f -->``: the difference of two conditions' means, in points;
* ``<!-- evidence:matrix cross-corpus emodb,ravdess,nemo speaker -->`` ... : the cross-corpus matrix
  of an exported folder of cells (``<normalisation>/<train>-to-<test>/``), one grid per condition
  (BL, the AE conditions, the SVM), for one normalisation or (without one) all; ``<!-- evidence:cell
  cross-corpus speaker BL nemo emodb .1f -->``: one cell's mean UAR over its seeds, in %;
* inline numbers, ``<!-- evidence:pooled family.yaml hksj_ci_low +.2f -->-1.81<!-- /evidence -->``
  (a key of the pooled estimate and a format) and ``<!-- evidence:member family.yaml nemo:within:U:all
  mean_difference +.2f -->+1.35<!-- /evidence -->`` (a family row, by folder name, setting, condition
  and score, and its column).

Paths in a block are relative to the results root (``--results``, default ``results/``). Each family
file is pooled once per call. The blocks need only ``results/``: no corpus and no training, so a test
runs ``--check`` on a fresh clone (``tests/test_evidence.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from serlib.base.files import write_text
from serlib.evidence import comparisons, confirmatory, family, matrix, results_folder, svm_tables, table1
from serlib.protocol.svm import CONDITION as SVM_CONDITION

BLOCK = re.compile(r"<!-- evidence:(?P<spec>[^>]*?) -->(?P<body>.*?)<!-- /evidence -->", re.DOTALL)
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


class EvidenceError(ValueError):
    """A block names something ``results/`` does not hold; the message names the block and the fix."""


@dataclass
class Renderer:
    """Renders the blocks of one call, pooling each family file once."""

    root: Path
    pooled: dict[tuple[Path | str, str], Any] = field(default_factory=dict)  # family files; speaker specs
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # Table 1 frames by folder
    matrices: dict[str, pd.DataFrame] = field(default_factory=dict)  # matrix rows by folder

    def pool(self, name: str) -> Any:
        """The family file ``name`` pooled; ``FILE@A,B`` restricts it to the members of folders A and B
        (``family.restrict``: the members whose grids are exported while the others' still run)."""
        file, _, only = name.partition("@")
        path = (self.root / file).resolve()
        if (path, only) not in self.pooled:
            declared = family.load(path)
            if only:
                declared = family.restrict(declared, only.split(","))
            tables = [results_folder.speakers_of(f) for f in declared.folders()]
            self.pooled[path, only] = family.pool_family(declared, pd.concat(tables).drop_duplicates())
        return self.pooled[path, only]

    def render(self, spec: str) -> str:
        kind, *args = spec.split()
        handlers: dict[str, Callable[..., str]] = {
            "table1": self._table1,
            "pool": self._pool,
            "pooled": self._pooled,
            "member": self._member,
            "members": self._members,
            "speakers": self._speakers,
            "uar": self._uar,
            "margin": self._margin,
            "matrix": self._matrix,
            "cell": self._matrix_cell,
        }
        if kind not in handlers:
            raise EvidenceError(f"block 'evidence:{spec}': unknown kind {kind!r} (one of {sorted(handlers)})")
        try:
            return handlers[kind](*args)
        except TypeError:
            raise EvidenceError(f"block 'evidence:{spec}': wrong arguments for {kind!r}") from None

    def _table1(self, folder: str) -> str:
        root = self.root / folder
        text = table1.render_table(root)
        rows = comparisons.write_comparisons(root)
        return "\n" + text + "\n" + comparisons.comparisons_markdown(rows)

    def _pool(self, name: str) -> str:
        return "\n" + confirmatory.pool_markdown(self.pool(name), mixedlm=False)

    def _members(self, name: str) -> str:
        """The family rows of ``name`` (usually ``FILE@FOLDERS``) with unadjusted p-values: Holm over a
        part of a family is not the family's adjustment, so it is not printed."""
        rows = self.pool(name).family
        lines = [
            "",
            "| corpus | setting | score | comparison | role | speakers | seeds | Δ | 95 % CI | t-test p "
            "(unadjusted) | MDD |",
            "|---|---|---|---|---|---:|---:|---:|---|---:|---:|",
        ]
        for row in rows.to_dict("records"):
            lines.append(
                f"| {row['corpus']} | {row['setting']} | {row['score']} | {row['condition']} - "
                f"{row['baseline']} | {row['role']} | {row['speakers']} | {row['seeds']} | "
                f"{_format(row['mean_difference'], '+.2f')} | [{_format(row['ci_low'], '+.2f')}, "
                f"{_format(row['ci_high'], '+.2f')}] | {_format(row['t_p'], 'p')} | {_format(row['mdd'], '.2f')} |"
            )
        return "\n".join(lines) + "\n"

    def _speakers(self, which: str, column: str, spec: str = ".2f") -> str:
        """One number of the speaker-level test of a folder outside the family (an exploratory reading,
        e.g. a second AE): ``FOLDER:SETTING:CONDITION:SCORE`` and a ``family.csv`` column."""
        name, setting, condition, score = which.split(":")
        if (which, "") not in self.pooled:
            folder = self.root / name
            result = confirmatory.pool(
                [folder],
                results_folder.speakers_of(folder),
                conditions=[condition],
                scores=[score] if score != confirmatory.ALL else (),
            )
            self.pooled[which, ""] = result
        frame = self.pooled[which, ""].family
        rows = frame[(frame["setting"] == setting) & (frame["score"] == score)]
        if len(rows) != 1 or column not in rows.columns:
            raise EvidenceError(f"{which}: no speaker-level test with a column {column!r}")
        return _format(rows.iloc[0][column], spec)

    def table(self, folder: str) -> pd.DataFrame:
        """Table 1 of ``folder`` as a frame (``table1.table1``), with the SVM's runs as a condition."""
        if folder not in self.tables:
            root = table1.results_root(self.root / folder)
            protocol, runs = table1.collect_runs(root)
            svm = svm_tables.baseline_runs(root, protocol)
            if not svm.empty:
                conditions = [*protocol["conditions"], {"name": SVM_CONDITION, "autoencoder_corpus": "none"}]
                protocol = {**protocol, "conditions": conditions}
                runs = pd.concat([runs, svm], ignore_index=True)
            self.tables[folder] = table1.table1(protocol, runs)
        return self.tables[folder]

    def _cell(self, folder: str, setting: str, condition: str, column: str) -> float:
        table = self.table(folder)
        rows = table[table["condition"] == condition]
        key = f"{setting}_{column}"
        if len(rows) != 1 or key not in rows.columns or pd.isna(rows.iloc[0][key]):
            have = sorted(table["condition"])
            raise EvidenceError(
                f"{folder}: no Table 1 cell {setting} {condition} {column} (conditions: {have})"
            )
        return float(rows.iloc[0][key])

    def _uar(self, folder: str, setting: str, condition: str, column: str = "mean", spec: str = ".2f") -> str:
        return _format(self._cell(folder, setting, condition, column), spec)

    def _margin(self, folder: str, setting: str, first: str, second: str, spec: str = "+.2f") -> str:
        difference = self._cell(folder, setting, first, "mean") - self._cell(folder, setting, second, "mean")
        return _format(difference, spec)

    def matrix_rows(self, folder: str) -> pd.DataFrame:
        """The matrix rows (``matrix.collect_tree``) of the exported cells under ``folder``."""
        if folder not in self.matrices:
            rows = matrix.collect_tree(self.root / folder)
            if rows.empty:
                raise EvidenceError(
                    f"{self.root / folder}: no exported matrix cell (<normalisation>/<a>-to-<b>/)"
                )
            self.matrices[folder] = rows
        return self.matrices[folder]

    def _matrix(self, folder: str, corpora: str, normalisation: str = "") -> str:
        rows = self.matrix_rows(folder)
        if normalisation:
            rows = rows[rows["normalisation"] == normalisation]
            if rows.empty:
                raise EvidenceError(f"{folder}: no cell with the normalisation {normalisation!r}")
        order = {"BL": 0, SVM_CONDITION: 2}
        rows = rows.assign(_order=rows["condition"].map(lambda c: order.get(c, 1)))
        rows = rows.sort_values(["normalisation", "_order"], kind="stable").drop(columns="_order")
        return "\n" + matrix.matrix_markdown(rows, corpora.split(","))

    def _matrix_cell(
        self, folder: str, normalisation: str, condition: str, train: str, test: str, spec: str = ".1f"
    ) -> str:
        rows = self.matrix_rows(folder)
        chosen = rows[
            (rows["normalisation"] == normalisation)
            & (rows["condition"] == condition)
            & (rows["train"] == train)
            & (rows["test"] == test)
        ]
        if len(chosen) != 1:
            raise EvidenceError(f"{folder}: no matrix cell {normalisation} {condition} {train} -> {test}")
        return _format(float(chosen.iloc[0]["mean"]), spec)

    def _pooled(self, name: str, key: str, spec: str = ".2f") -> str:
        pooled = self.pool(name).pooled
        if key not in pooled:
            raise EvidenceError(f"{name}: the pooled estimate has no {key!r} (keys: {sorted(pooled)})")
        return _format(pooled[key], spec)

    def _member(self, name: str, which: str, column: str, spec: str = ".2f") -> str:
        frame = self.pool(name).family
        folder, setting, condition, score = which.split(":")
        names = frame["folder"].map(lambda f: Path(f).name)
        rows = frame[(names == folder) & (frame["setting"] == setting) & (frame["condition"] == condition)]
        rows = rows[rows["score"] == score]
        if len(rows) != 1 or column not in rows.columns:
            raise EvidenceError(f"{name}: no family row {which} with a column {column!r}")
        return _format(rows.iloc[0][column], spec)


def _format(value: Any, spec: str) -> str:
    """``value`` by ``spec``: a format spec, ``p`` (a p-value as the tables print it), ``%`` or
    ``abs`` before a spec (the magnitude: "a loss of up to 1.9 points")."""
    if spec.startswith("abs"):
        return _format(abs(float(value)), spec.removeprefix("abs"))
    if isinstance(value, np.integer):
        value = int(value)
    if spec == "p":
        return comparisons.format_p(float(value))
    if spec == "%":
        return f"{100 * float(value):.0f} %"
    return format(value, spec) if isinstance(value, int | float) else str(value)


def _differences(path: Path, line: int, spec: str, have: str, want: str) -> list[str]:
    """Where a block differs: its first differing line and the numbers that differ there."""
    for offset, (a, b) in enumerate(zip(have.splitlines() or [""], want.splitlines() or [""], strict=False)):
        if a != b:
            numbers = [
                f"{x} (results/ give {y})"
                for x, y in zip(NUMBER.findall(a), NUMBER.findall(b), strict=False)
                if x != y
            ]
            what = (
                f"the numbers {', '.join(numbers)}"
                if numbers
                else f"{a.strip()!r} (results/ give {b.strip()!r})"
            )
            return [f"{path}:{line + offset}: block 'evidence:{spec}' differs: {what}"]
    return [f"{path}:{line}: block 'evidence:{spec}' differs in its length (regenerate: serlib evidence)"]


def update(documents: Sequence[str | Path], root: str | Path, check: bool = False) -> list[str]:
    """Render every block of ``documents`` from the results under ``root``; write the documents back
    (atomically) unless ``check``; return a line per block that differed (with ``check``: the failures)."""
    renderer = Renderer(Path(root))
    problems = []
    for document in map(Path, documents):
        text = document.read_text(encoding="utf-8")
        pieces, last = [], 0
        for match in BLOCK.finditer(text):
            spec, body = match.group("spec").strip(), match.group("body")
            wanted = renderer.render(spec)
            if wanted != body:
                line = text.count("\n", 0, match.start("body")) + 1
                problems += _differences(document, line, spec, body, wanted)
            pieces += [text[last : match.start("body")], wanted]
            last = match.end("body")
        new = "".join(pieces) + text[last:]
        if not check and new != text:
            write_text(new, document)
    return problems

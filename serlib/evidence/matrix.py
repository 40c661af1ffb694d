"""The cross-corpus matrix: train on each corpus of ``protocol.cross_corpus_matrix``, test on every other.

Every ordered pair is the paper's cross-corpus setting on its own (``summaries.evaluate`` with that
training and test corpus, in ``<output_dir>/<normalisation>/<train>-to-<test>/``), for each feature
normalisation asked for (``features.normalisation``: the paper's ``train``, and the unsupervised
``corpus`` and ``speaker`` remedies). All pairs share one cache, so a corpus' features and an
autoencoder are computed once. ``matrix.csv`` and ``matrix.md`` collect the mean UAR over seeds of
every condition (and of the eGeMAPS + SVM reference when ``protocol.egemaps_svm``) per pair.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from serlib.base.config import Config, override
from serlib.base.files import write_csv, write_text
from serlib.evidence.comparisons import SVM_CONDITION, svm_runs
from serlib.evidence.results_folder import is_results_folder
from serlib.evidence.summaries import evaluate
from serlib.evidence.table1 import collect_runs, results_root
from serlib.features.normalisation import MODES
from serlib.protocol.labeled import ProtocolError
from serlib.protocol.svm import run_baseline

log = logging.getLogger(__name__)

COLUMNS = ("normalisation", "condition", "train", "test", "mean", "min", "max", "seeds")


def pairs(config: Config, involving: str | None = None) -> list[tuple[str, str]]:
    """Every ordered (training, test) pair of the matrix' corpora; with ``involving``, only the pairs
    that train or test on that corpus (a new corpus joins a matrix without re-running the old cells)."""
    corpora = config.protocol.cross_corpus_matrix or []
    if len(corpora) < 2:
        raise ProtocolError(
            "protocol.cross_corpus_matrix must list at least two corpus keys (each is trained on and tested)"
        )
    unknown = [key for key in corpora if key not in config.corpora]
    if unknown:
        raise ProtocolError(f"protocol.cross_corpus_matrix: {unknown} are not keys of corpora")
    if involving is not None and involving not in corpora:
        raise ProtocolError(f"{involving!r} is not in protocol.cross_corpus_matrix ({', '.join(corpora)})")
    return [
        (train, test)
        for train in corpora
        for test in corpora
        if train != test and involving in (None, train, test)
    ]


def pair_config(config: Config, train: str, test: str, normalisation: str) -> Config:
    """The configuration of one cell: cross-corpus only, its own output folder, the shared cache."""
    folder = Path(config.output_dir) / normalisation / f"{train}-to-{test}"
    return override(
        config,
        output_dir=str(folder),
        cache_dir=str(config.cache_path),
        figures_dir=str(folder / "figures"),
        **{
            "protocol.within_corpus": None,
            "protocol.cross_corpus_train": train,
            "protocol.cross_corpus_test": test,
            "protocol.cross_corpus_matrix": None,
            "features.normalisation": normalisation,
        },
    )


def run_matrix(
    config: Config,
    normalisations: Sequence[str] = ("train",),
    progress: bool = True,
    involving: str | None = None,
) -> pd.DataFrame:
    """Run every cell of the matrix (or only those ``involving`` one corpus) for each normalisation
    (finished runs are reused), then write ``matrix.csv`` and ``matrix.md`` under ``config.output_dir``
    from all finished cells; returns the matrix as rows."""
    unknown = [mode for mode in normalisations if mode not in MODES]
    if unknown:
        raise ProtocolError(f"normalisations {unknown} are unknown; choose from {', '.join(MODES)}")
    cells = pairs(config, involving)
    for mode in normalisations:
        for number, (train, test) in enumerate(cells, start=1):
            log.info("matrix %s, %d/%d: %s -> %s", mode, number, len(cells), train, test)
            cell = pair_config(config, train, test, mode)
            evaluate(cell, progress=progress)
            if cell.protocol.egemaps_svm:
                run_baseline(cell)
    return write_matrix(config, normalisations)


def collect_matrix(config: Config, normalisations: Sequence[str]) -> pd.DataFrame:
    """One row per (normalisation, condition, training corpus, test corpus) of the finished cells."""
    rows = []
    for mode in normalisations:
        for train, test in pairs(config):
            folder = Path(pair_config(config, train, test, mode).output_dir)
            if not (folder / "results" / "protocol.json").is_file():
                continue
            rows += cell_rows(folder, mode, train, test)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def cell_rows(folder: Path, mode: str, train: str, test: str) -> list[dict[str, object]]:
    """The matrix rows (``COLUMNS``) of one cell's folder: one per condition, the SVM included."""
    protocol, runs = collect_runs(folder)
    root = results_root(folder)  # a results folder of serlib export is read through its run-folder copy
    runs = pd.concat([runs, svm_runs(root, protocol)], ignore_index=True)
    rows = []
    for condition, group in runs.groupby("condition", sort=False):
        uar = 100.0 * group["uar"].astype(float)
        rows.append(
            {
                "normalisation": mode,
                "condition": condition,
                "train": train,
                "test": test,
                "mean": float(uar.mean()),
                "min": float(uar.min()),
                "max": float(uar.max()),
                "seeds": int(group["seed"].nunique()),
            }
        )
    return rows


def collect_tree(root: str | Path) -> pd.DataFrame:
    """The matrix rows of every ``<normalisation>/<train>-to-<test>`` cell folder under ``root``, run
    folders or their exports (``serlib export runs/cross-corpus --out results/matrix``), without the
    configuration: what ``collect_matrix`` reads, for a matrix that travels without its run folders."""
    rows = []
    for mode in MODES:
        for folder in sorted((Path(root) / mode).glob("*-to-*")):
            if (folder / "results" / "protocol.json").is_file() or is_results_folder(folder):
                train, _, test = folder.name.partition("-to-")
                rows += cell_rows(folder, mode, train, test)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def matrix_markdown(table: pd.DataFrame, corpora: Sequence[str]) -> str:
    """One grid per normalisation and condition: rows = training corpus, columns = test corpus."""
    lines = ["Cross-corpus UAR (%), mean over seeds (rows: trained on; columns: tested on; chance 25 %)."]
    for (mode, condition), block in table.groupby(["normalisation", "condition"], sort=False):
        cells = {(row["train"], row["test"]): row for row in block.to_dict("records")}
        seeds = sorted(set(block["seeds"]))
        lines += [
            "",
            f"**{condition}**, normalisation `{mode}` ({'/'.join(map(str, seeds))} seed{'s' if seeds != [1] else ''}):",
            "",
            "| trained on \\ tested on | " + " | ".join(corpora) + " |",
            "|---|" + "---:|" * len(corpora),
        ]
        for train in corpora:
            values = []
            for test in corpora:
                row = cells.get((train, test))
                values.append("–" if row is None or math.isnan(row["mean"]) else f"{row['mean']:.1f}")
            lines.append(f"| {train} | " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


def write_matrix(config: Config, normalisations: Sequence[str]) -> pd.DataFrame:
    """``matrix.csv`` and ``matrix.md`` under ``config.output_dir`` from the finished cells."""
    table = collect_matrix(config, normalisations)
    root = Path(config.output_dir)
    write_csv(table, root / "matrix.csv", float_format="%.4f")
    order = [*(c.name for c in config.protocol.conditions), SVM_CONDITION]
    table = table.assign(_order=table["condition"].map({name: i for i, name in enumerate(order)}))
    table = table.sort_values(["normalisation", "_order"], kind="stable").drop(columns="_order")
    write_text(matrix_markdown(table, config.protocol.cross_corpus_matrix or []), root / "matrix.md")
    return table

"""Selection apart from testing: the normalisation chosen on the development pair, then read on the others.

Reads ``matrix.csv`` of a cross-corpus matrix folder (``serlib matrix``), picks the normalisation with the
highest mean UAR of the chosen condition (BL, the criterion declared in ``configs/cross-corpus.yaml``) on
the development pair, and prints every normalisation on the development pair and on each other pair, the
mean over the other pairs, and on how many of them the chosen one beats each alternative. No test: the
other pairs are read once, as the configuration declares. Fails naming the missing folder and command.

    python docs/probes/cross_corpus_selection.py runs/cross-corpus
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

MAKE = (
    "SERLIB_TF_THREADS=1 serlib matrix --config configs/cross-corpus.yaml"
    " --normalisation train --normalisation corpus --normalisation speaker"
)
NAMES = {"emodb": "Emo-DB", "ravdess": "RAVDESS", "nemo": "nEMO", "ased": "ASED"}


class MissingMatrix(RuntimeError):
    """The matrix folder, or one of the normalisations it is asked to compare, is not there."""


def read_matrix(folder: Path, condition: str) -> pd.DataFrame:
    """Mean UAR (%) of ``condition`` per (train, test) pair (rows) and normalisation (columns)."""
    path = folder / "matrix.csv"
    # a matrix exported to results/ (serlib export) has no matrix.csv: its cells are read instead
    if path.is_file():
        table = pd.read_csv(path)
    else:
        from serlib.evidence import matrix  # noqa: PLC0415 - imports TensorFlow: only for an exported matrix

        table = matrix.collect_tree(folder)
    if table.empty:
        raise MissingMatrix(
            f"{folder}: no matrix.csv here (nor exported matrix cells). Make them with:\n    {MAKE}\n"
            "(or give the folder)"
        )
    table = table[table["condition"] == condition]
    if table.empty:
        raise MissingMatrix(f"{path}: no {condition} cells. Make them with:\n    {MAKE}")
    return table.pivot_table(index=["train", "test"], columns="normalisation", values="mean")


def select(matrix: pd.DataFrame, development: tuple[str, str]) -> tuple[str, pd.DataFrame]:
    """The normalisation best on ``development`` and the table of every pair, development first."""
    if development not in matrix.index:
        raise MissingMatrix(f"the development pair {'->'.join(development)} is not in the matrix")
    if matrix.isna().any().any():
        missing = [n for n in matrix.columns if matrix[n].isna().any()]
        raise MissingMatrix(f"normalisation(s) {', '.join(missing)} lack cells. Make them with:\n    {MAKE}")
    chosen = str(matrix.loc[development].idxmax())
    others = [pair for pair in matrix.index if pair != development]
    return chosen, matrix.loc[[development, *others]]


def markdown(chosen: str, table: pd.DataFrame, condition: str) -> str:
    """The development pair, each other pair, their mean, and the chosen one's wins over the others."""
    norms = [chosen, *sorted(n for n in table.columns if n != chosen)]
    head = " | ".join(f"`{n}`" + (" (chosen)" if n == chosen else "") for n in norms)
    lines = [f"| {condition}, UAR (%) | {head} |", "|---|" + "---:|" * len(norms)]
    development, *others = list(table.index)
    for index, pair in enumerate([development, *others]):
        label = f"{NAMES.get(pair[0], pair[0])} -> {NAMES.get(pair[1], pair[1])}"
        label = f"**{label}** (development)" if index == 0 else label
        lines.append(f"| {label} | " + " | ".join(f"{table.loc[pair, n]:.1f}" for n in norms) + " |")
    rest = table.loc[others]
    lines.append(
        f"| mean of the {len(others)} other pairs | "
        + " | ".join(f"{rest[n].mean():.1f}" for n in norms)
        + " |"
    )
    wins = ["–" if n == chosen else f"{int((rest[chosen] > rest[n]).sum())} of {len(others)}" for n in norms]
    lines.append(f"| other pairs where `{chosen}` is higher | " + " | ".join(wins) + " |")
    return "\n".join(lines)


def main(folder: Path, development: tuple[str, str], condition: str = "BL") -> None:
    chosen, table = select(read_matrix(folder, condition), development)
    print(markdown(chosen, table, condition))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description="the development pair's normalisation, read on the other pairs"
    )
    parser.add_argument("folder", type=Path, nargs="?", default=Path("runs/cross-corpus"))
    parser.add_argument(
        "--development", default="emodb:ravdess", help="TRAIN:TEST (configs/cross-corpus.yaml)"
    )
    parser.add_argument("--condition", default="BL")
    args = parser.parse_args()
    try:
        main(args.folder, tuple(args.development.split(":", 1)), args.condition)  # type: ignore[arg-type]
    except MissingMatrix as error:
        print(f"cross_corpus_selection.py: error: {error}", file=sys.stderr)
        sys.exit(2)

"""The `serlib check` references of the real-speech grids, built from the committed results folders.

For each NAME given, ``results/NAME`` (written by ``serlib export``; ``results/README.md``) becomes
``serlib/references/<name>.csv`` + ``<name>.json`` (``serlib.evidence.check.write_reference``: the per-seed
UARs of every Table 1 cell, the machine, versions, configuration hash and commit of the runs) with
``configs/NAME.yaml`` as the configuration the reference belongs to. It replaces the typed per-seed
values of ``published_references.py`` for nEMO and Emo-DB once their grids are exported (the paper's
own Table 1 stays there: it has no runs).

    python docs/probes/results_references.py nemo emodb ravdess ased
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from serlib.base import config as config_module
from serlib.evidence import check, results_folder

ROOT = Path(__file__).resolve().parents[2]
COMMAND = "python docs/probes/results_references.py"


def build(
    name: str,
    results: Path = ROOT / "results",
    configs: Path = ROOT / "configs",
    references: Path | None = None,
) -> list[Path]:
    """The reference ``name`` from ``results/name`` and ``configs/name.yaml``."""
    folder = results / name
    if not results_folder.is_results_folder(folder):
        raise SystemExit(
            f"{folder} is not a results folder: export the grid first, e.g.\n"
            f"    serlib export runs/{name} --out {folder} --config {configs / (name + '.yaml')}"
        )
    config = config_module.load(configs / f"{name}.yaml")
    source = (
        f"{folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder} (serlib export of the grid)"
    )
    return check.write_reference(
        folder, name, f"{COMMAND} {name}", config=config, references=references, source=source
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="serlib check references from results/<name>")
    parser.add_argument("names", nargs="+", help="results folders (and configs/<name>.yaml), e.g. nemo emodb")
    for written in [p for n in parser.parse_args().names for p in build(n)]:
        print(written)
    sys.exit(0)

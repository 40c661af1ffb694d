"""The `serlib check` references of the real-speech grids, built from the committed results folders,
and the paper's, built from its Table 1 as written once in ``serlib/references/paper.csv``.

For each NAME given, ``results/NAME`` (written by ``serlib export``; ``results/README.md``) becomes
``serlib/references/<name>.csv`` + ``<name>.json`` (``serlib.evidence.check.write_reference``: the per-seed
UARs of every Table 1 cell, the machine, versions, configuration hash and commit of the runs) with
``configs/NAME.yaml`` as the configuration the reference belongs to. The name ``paper`` rewrites
``paper.json`` (the paper preset's comparison hash and the rule that turns the paper's min-max into an
sd) beside the typed ``paper.csv``, which it leaves as it is: the paper has no runs.

    python docs/probes/results_references.py paper nemo emodb emodb-replication ravdess ased
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from serlib.base import config as config_module
from serlib.base import provenance
from serlib.base.files import write_json
from serlib.evidence import check, references, results_folder

ROOT = Path(__file__).resolve().parents[2]
COMMAND = "python docs/probes/results_references.py"
PAPER_SD_RULE = (
    "the paper gives no sd: sd = (max - min) / d2(10), d2(10) = 3.078 the expected range of 10 normal draws "
    "in sd units; the sd of a difference to BL is sqrt(sd^2 + sd_BL^2) (no pairing)"
)


def build_paper(folder: Path | None = None) -> list[Path]:
    """``paper.json`` for the typed ``paper.csv`` (Neumann & Vu 2019, Table 1) and the paper preset."""
    folder = references.references_dir() if folder is None else folder
    if not (folder / "paper.csv").is_file():
        raise SystemExit(f"{folder / 'paper.csv'} is missing: the paper's Table 1 is typed there, once")
    paper = config_module.load_preset("paper")
    meta = {
        "name": "paper",
        "preset": paper.name,
        "format": "summary",
        "baseline": "BL",
        "comparison_sha256": references.comparison_hash(paper),
        "config_sha256": provenance.config_hash(paper),
        "config": references.comparison_config(paper),
        "conditions": [c.model_dump(mode="json") for c in paper.protocol.conditions],
        "seeds": list(range(10)),
        "command": f"{COMMAND} paper",
        "source": "Neumann & Vu (2019), Table 1 (IEMOCAP within, MSP-IMPROV cross; mean, min, max of 10 seeds)",
        "sd_rule": PAPER_SD_RULE,
    }
    return [write_json(meta, folder / "paper.json")]


def build(
    name: str,
    results: Path = ROOT / "results",
    configs: Path = ROOT / "configs",
    references: Path | None = None,
) -> list[Path]:
    """The reference ``name`` from ``results/name`` and ``configs/name.yaml`` (``paper``: its own)."""
    if name == "paper":
        return build_paper(references)
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
    parser = argparse.ArgumentParser(
        description="serlib check references from results/<name> (and the paper's)"
    )
    parser.add_argument("names", nargs="+", help="results folders (and configs/<name>.yaml), or paper")
    for written in [p for n in parser.parse_args().names for p in build(n)]:
        print(written)
    sys.exit(0)

"""``serlib pool``: the confirmatory family and the pooled AE - BL difference over stored run folders.

A verb of its own module because it reads many run folders and configurations at once; the statistics
themselves are :mod:`serlib.evidence.confirmatory`'s.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from serlib.app import cli_parsers
from serlib.base import config as config_module

DEFAULT_OUT = Path("runs/pool")
"""Where ``serlib pool`` wrote without ``--out`` (deprecated: ``--out`` is where a command writes)."""


def add_parser(add: Callable[..., argparse.ArgumentParser]) -> None:
    """Add the ``pool`` verb with ``add`` (the CLI's ``add_parser``, which appends the examples)."""
    pool = add(
        "pool",
        help="confirmatory family (speaker-level, Holm) and the pooled AE - BL difference over run folders",
    )
    pool.add_argument(
        "run_dirs",
        nargs="*",
        type=Path,
        metavar="RUN_DIR",
        help="output folders of `serlib evaluate` or results folders of `serlib export` (with --family: "
        "optional, and exactly the family's folders)",
    )
    pool.add_argument(
        "--family",
        type=Path,
        default=None,
        help="the declared confirmatory family (e.g. results/family.yaml): its folders, comparisons, "
        "scores and skips; a missing member, an extra folder or an unmatched skip is an error",
    )
    pool.add_argument(
        "--speakers",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="where the test utterances' speakers come from (repeatable): a CSV of utterance_id,speaker, or "
        "a configuration (.yaml) whose corpora name them",
    )
    cli_parsers.hidden(pool, "--config", "old_config", type=Path, action="append", default=[])
    pool.add_argument(
        "--condition", action="append", default=[], help="conditions in the family (default: all but BL)"
    )
    pool.add_argument(
        "--pool-condition",
        action="append",
        default=[],
        help="the AE condition to pool, where a folder has several",
    )
    pool.add_argument(
        "--score",
        action="append",
        default=[],
        help="a scoring subset tested beside all test files where the predictions have it "
        "(repeatable; ASED: common)",
    )
    pool.add_argument(
        "--pool-score",
        default="all",
        help="the score pooled for a folder that has it (default: all; ASED's lexically fair: common)",
    )
    pool.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        default=None,
        help=f"the folder to write family.csv, pooled.csv, pool.json, pool.md into (without it: {DEFAULT_OUT}, "
        "deprecated)",
    )
    pool.add_argument(
        "--skip",
        action="append",
        default=[],
        help="FOLDER:SETTING left out of the family (exploratory runs, e.g. runs/emodb:cross)",
    )
    pool.add_argument(
        "--dry-run", action="store_true", help="list the run folders found and missing; compute nothing"
    )
    pool.set_defaults(handler=run)


def _is_configuration(path: Path) -> bool:
    return path.suffix.lower() in {".yaml", ".yml"}


def _old_spellings(args: argparse.Namespace) -> None:
    """``--config CONFIG`` read as ``--speakers CONFIG``, and no ``--out`` as ``--out runs/pool``: each
    with its one deprecation line."""
    if args.old_config:
        cli_parsers.deprecated("serlib pool --config CONFIG", "--speakers CONFIG")
        args.speakers = [*args.old_config, *args.speakers]
    if args.out is None:
        if not args.dry_run:  # a dry run writes nothing
            cli_parsers.deprecated("serlib pool without --out", f"--out {DEFAULT_OUT}")
        args.out = DEFAULT_OUT


def _run_folders(args: argparse.Namespace, configs: dict[Path, Any]) -> list[Path] | None:
    """The stored run folders to pool (a results folder stays named as given); with ``--dry-run``, each
    folder found or missing is printed and ``None`` returned."""
    from serlib.evidence import results_folder, speakers  # noqa: PLC0415 - handlers import what they run

    makers = {str(Path(c.output_dir)): f"serlib evaluate --config {p}" for p, c in configs.items()}
    folders = []
    for folder in args.run_dirs:
        command = makers.get(
            str(folder), f"serlib evaluate --config <the configuration whose output_dir is {folder}>"
        )
        if args.dry_run:
            try:
                speakers.require_runs(folder, command)
                print(f"{folder}: stored runs found")
            except speakers.MissingRunFolder:
                print(f"{folder}: missing; make it with `{command}`")
            continue
        root = speakers.require_runs(folder, command)
        # a results folder stays named as given (its run-folder copy is a cache): skips and the family match it
        folders.append(folder if results_folder.is_results_folder(folder) else root)
    return None if args.dry_run else folders


def _speaker_table(args: argparse.Namespace, configs: dict[Path, Any]) -> Any:
    """Every test utterance's speaker: from the configurations' corpora, the CSVs of ``--speakers`` and
    the results folders (``serlib export`` names them itself)."""
    from serlib.evidence import results_folder, speakers  # noqa: PLC0415 - handlers import what they run

    tables = [speakers.speaker_table(c) for c in configs.values()]
    tables += [speakers.read_speaker_csv(p) for p in args.speakers if not _is_configuration(p)]
    tables += [results_folder.speakers_of(f) for f in args.run_dirs if results_folder.is_results_folder(f)]
    if not tables:
        raise ValueError(
            "serlib pool needs the speakers of the test utterances: --speakers CONFIG.yaml or --speakers CSV"
        )
    return speakers.combine(tables)


def run(args: argparse.Namespace) -> int:
    """Test the family, pool it, write family.csv, pooled.csv, pool.json and pool.md to ``--out``."""
    from serlib.evidence import confirmatory, family  # noqa: PLC0415 - handlers import what they run

    _old_spellings(args)
    declared = family.load(args.family) if args.family is not None else None
    if declared is None and not args.run_dirs:
        raise ValueError("serlib pool needs run folders (RUN_DIR ...) or a declared family (--family FILE)")
    if declared is not None:
        family.check_folders(declared, args.run_dirs)
        args.run_dirs = args.run_dirs or declared.folders()
    configs = {path: config_module.resolve(None, path) for path in args.speakers if _is_configuration(path)}
    folders = _run_folders(args, configs)
    if folders is None:
        print(f"would write the family, the pooled estimate and pool.md to {args.out}")
        return 0
    table = _speaker_table(args, configs)
    if declared is not None:
        result = family.pool_family(declared, table, folders)
    else:
        result = confirmatory.pool(
            folders,
            table,
            args.condition or None,
            args.pool_condition or None,
            [str(x) for x in args.skip],
            scores=args.score,
            pool_score=args.pool_score,
        )
    confirmatory.write_pool(result, args.out)
    print(confirmatory.pool_markdown(result), end="")
    return 0

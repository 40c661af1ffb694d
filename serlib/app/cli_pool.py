"""``serlib pool``: the confirmatory family and the pooled AE - BL difference over stored run folders.

A verb of its own module because it reads many run folders and configurations at once; the statistics
themselves are :mod:`serlib.protocol.confirmatory`'s.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from serlib.base import config as config_module


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
        "--config",
        type=Path,
        action="append",
        default=[],
        help="configuration whose corpora name the speakers (repeatable)",
    )
    pool.add_argument(
        "--speakers", type=Path, action="append", default=[], help="CSV of utterance_id,speaker (repeatable)"
    )
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
        default=Path("runs/pool"),
        help="folder for family.csv, pooled.csv, pool.json, pool.md",
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


def run(args: argparse.Namespace) -> int:
    """Test the family, pool it, write family.csv, pooled.csv, pool.json and pool.md to ``--out``."""
    from serlib.protocol import (  # noqa: PLC0415 - handlers import what they run
        confirmatory,
        family,
        results_folder,
        speakers,
    )

    declared = family.load(args.family) if args.family is not None else None
    if declared is None and not args.run_dirs:
        raise ValueError("serlib pool needs run folders (RUN_DIR ...) or a declared family (--family FILE)")
    if declared is not None:
        family.check_folders(declared, args.run_dirs)
        args.run_dirs = args.run_dirs or declared.folders()
    configs = [config_module.resolve(None, path) for path in args.config]
    makers = {
        str(Path(c.output_dir)): f"serlib evaluate --config {p}"
        for c, p in zip(configs, args.config, strict=True)
    }
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
    if args.dry_run:
        print(f"would write the family, the pooled estimate and pool.md to {args.out}")
        return 0
    tables = [speakers.speaker_table(c) for c in configs] + [
        speakers.read_speaker_csv(p) for p in args.speakers
    ]
    # a results folder (serlib export) names the speaker of every test utterance itself
    tables += [results_folder.speakers_of(f) for f in args.run_dirs if results_folder.is_results_folder(f)]
    if not tables:
        raise ValueError(
            "serlib pool needs the speakers of the test utterances: --config CONFIG or --speakers CSV"
        )
    table = speakers.combine(tables)
    if declared is not None:
        result = family.pool_family(declared, table, folders)
        confirmatory.write_pool(result, args.out)
        print(confirmatory.pool_markdown(result), end="")
        return 0
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

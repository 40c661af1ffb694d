"""``serlib migrate``: stored run folders, exported results folders and references folders rewritten once
to the current key names (:mod:`serlib.evidence.migration`), so that no stored run retrains and every
reference still matches. The folders it reads and rewrites are positional (the CLI's rule)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

EXAMPLE = (
    "serlib migrate runs/nemo                                   # a run folder (its cache holds the stores)\n"
    "serlib migrate results/emodb --stores /work/runs/emodb/cache  # an export, with its run's stores\n"
    "serlib migrate serlib/references                           # the shipped references"
)


def add_parser(add: Callable[..., argparse.ArgumentParser]) -> None:
    """Add the ``migrate`` verb with ``add`` (the CLI's ``add_parser``, which appends the examples)."""
    migrate = add(
        "migrate", help="rewrite stored fingerprints and hashes once to the current key names (idempotent)"
    )
    migrate.add_argument(
        "folders",
        type=Path,
        nargs="+",
        metavar="FOLDER",
        help="a run folder, an exported results folder or a references folder (rewritten in place)",
    )
    migrate.add_argument(
        "--stores",
        type=Path,
        default=None,
        metavar="DIR",
        help="a cache folder whose feature-store names give the runs' data identity (default: a run "
        "folder's own cache; an export has none)",
    )
    migrate.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Migrate each folder; exit 1 where a folder kept a value it could not verify."""
    from serlib.evidence import migration  # noqa: PLC0415 - handlers import what they run

    kept = 0
    for folder in args.folders:
        result = migration.migrate(folder, args.stores)
        print("\n".join(result.lines()))
        kept += len(result.kept)
    return 1 if kept else 0

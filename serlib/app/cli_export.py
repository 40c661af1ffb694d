"""``serlib export`` (a run folder into a committed results folder) and ``serlib evidence`` (the report's
generated blocks from ``results/``, or ``--check`` that they are current).

Verbs of their own module: ``cli`` is near the module size limit, and both belong to the evidence that
ships with serlib (``results/README.md``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from serlib.base import config as config_module


def add_parser(add: Callable[..., argparse.ArgumentParser]) -> None:
    """Add the ``export`` and ``evidence`` verbs with ``add`` (the CLI's ``add_parser``)."""
    export = add(
        "export", help="write a run folder's predictions and run records as a results folder for git"
    )
    export.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="output folder of serlib evaluate")
    export.add_argument(
        "--out", type=Path, metavar="DIR", required=True, help="the results folder, e.g. results/nemo"
    )
    export.add_argument(
        "--config",
        type=Path,
        default=None,
        help="the configuration the grid ran with (copied; its corpora name the speakers where the "
        "predictions do not)",
    )
    export.add_argument("--speakers", type=Path, default=None, help="CSV of utterance_id,speaker")
    export.add_argument(
        "--no-probabilities",
        action="store_true",
        help="leave the class probabilities out (every score reads the predicted class only)",
    )
    export.set_defaults(handler=run_export)

    evidence = add("evidence", help="render the report's generated blocks from results/ (--check: compare)")
    evidence.add_argument(
        "documents",
        nargs="*",
        type=Path,
        default=[Path("docs/results-real-speech.md"), Path("README.md")],
        help="Markdown files with <!-- evidence:NAME --> blocks (default: the report and the README)",
    )
    evidence.add_argument("--results", type=Path, default=Path("results"), help="the results folder root")
    evidence.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 naming each block and number that differs"
    )
    evidence.set_defaults(handler=run_evidence)


def run_export(args: argparse.Namespace) -> int:
    """Export ``RUN_DIR`` (or every run folder under it) and print what was written."""
    from serlib.evidence import export, speakers  # noqa: PLC0415 - handlers import what they run

    table = None
    if args.speakers is not None:
        table = speakers.read_speaker_csv(args.speakers)
    elif args.config is not None:
        try:
            table = speakers.speaker_table(config_module.resolve(None, args.config))
        except (OSError, ValueError) as error:  # no data here: fine when the predictions name speakers
            print(f"serlib export: speakers not read from {args.config} ({error}); using the predictions'")
    for target, record in export.export_tree(
        args.run_dir, args.out, table, args.config, not args.no_probabilities
    ):
        size = sum(record["bytes"].values()) / 1e6
        print(
            f"{target}: {record['runs']} runs, {record['predictions']} predictions, {size:.2f} MB, "
            f"sha256 {record['sha256'][:12]}; argmax of the rounded probabilities differs from `predicted` "
            f"in {record['argmax_of_rounded_probabilities_differs']} rows (predicted is stored)"
        )
    return 0


def run_evidence(args: argparse.Namespace) -> int:
    """Render (or with ``--check`` compare) the generated blocks of ``documents``."""
    from serlib.app import evidence  # noqa: PLC0415 - handlers import what they run

    problems = evidence.update(args.documents, args.results, check=args.check)
    for problem in problems:
        print(problem)
    if args.check and problems:
        return 1
    print(f"{len(args.documents)} documents {'checked' if args.check else 'rendered'} from {args.results}")
    return 0

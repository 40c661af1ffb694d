"""``serlib counts``: each configured corpus counted by class, session and speaker beside the paper's
numbers (:mod:`serlib.analysis.corpus_counts`); a difference is a warning, the exit status stays 0."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from serlib.app import cli_parsers
from serlib.base import config as config_module

EXAMPLE = (
    "serlib counts --config my-lab.yaml\nserlib counts --preset paper --corpus iemocap --corpus msp_improv"
)


def add_parser(add: Callable[..., argparse.ArgumentParser]) -> None:
    """Add the ``counts`` verb with ``add`` (the CLI's ``add_parser``, which appends the examples)."""
    counts = add("counts", help="count each corpus by class, session and speaker beside the paper's numbers")
    cli_parsers.add_config_arguments(counts)
    counts.add_argument(
        "--corpus", action="append", default=[], help="a configured corpus key (repeatable; default: all)"
    )
    counts.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from serlib.analysis import corpus_counts  # noqa: PLC0415 - handlers import what they run
    from serlib.data import loaders  # noqa: PLC0415 - handlers import what they run

    config = config_module.resolve(args.preset, args.config)
    if args.out is not None:
        config = config_module.override(config, output_dir=str(args.out))
    keys = args.corpus or list(config.corpora)
    unknown = [key for key in keys if key not in config.corpora]
    if unknown:
        raise config_module.ConfigError(
            f"--corpus {unknown[0]} is not configured; choose from {', '.join(config.corpora)}"
        )
    manifests = {key: loaders.load_configured(config, key) for key in keys}
    print(corpus_counts.report(config, manifests))
    return 0

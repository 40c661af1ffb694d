"""The parsers of the ``serlib`` verbs: one small function per verb adds its subparser and its handler.

The rule every verb follows (also in :mod:`serlib.app.cli`'s docstring and the README):

- **The folder (or files) a verb reads is positional**: ``serlib table RUN_DIR``, ``report RUN_DIR``,
  ``provenance RUN_DIR``, ``check RUN_DIR``, ``export RUN_DIR``, ``pool RUN_DIR ...``, ``sensitivity
  PLAN``, ``predict ... FILE ...``. Such a verb may add its products to the folder it reads
  (``table``'s comparisons, ``report``'s ``RUN_DIR/report/``).
- **``--out DIR`` is always where this command writes.** For the verbs configured by ``--preset`` or
  ``--config`` it overrides the configuration's ``output_dir``: the run folder that ``evaluate``,
  ``svm``, ``epochs``, ``matrix`` and ``reproduce`` write into, and the reading verbs then read as
  ``RUN_DIR``. For ``demo-corpus``, ``download``, ``export`` and ``pool`` it is the destination, and
  it has no default (``pool``'s old default, ``runs/pool``, is deprecated).
- **``--config FILE`` is the configuration the command runs with** (or, for ``export``, the one the grid
  ran with). Other inputs beside the folder a verb reads are named options: ``--model``,
  ``--reference``, ``--references``, ``--family``, ``--speakers``, ``--results``.
- **Old spellings keep working** with one line on standard error naming the new spelling
  (:func:`deprecated`); they are hidden from ``--help``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from serlib.base import config as config_module

Add = Callable[..., argparse.ArgumentParser]
"""``add(name, help=...)``: a new verb's subparser, with its examples as the epilog (``cli``)."""
Handler = Callable[[argparse.Namespace], int]

OUT_HELP = "the folder this command writes into (overrides output_dir)"


def deprecated(old: str, new: str) -> None:
    """The one line an old spelling prints: what was used and what to write instead."""
    print(f"serlib: {old} is deprecated; use {new}", file=sys.stderr)


def add_config_arguments(parser: argparse.ArgumentParser, out_help: str = OUT_HELP) -> None:
    """``--preset``, ``--config`` and ``--out``: the configuration a verb runs with and where it writes."""
    parser.add_argument(
        "--preset", choices=config_module.PRESETS, default=None, help="built-in configuration"
    )
    parser.add_argument(
        "--config", type=Path, default=None, help="YAML configuration file (overrides --preset)"
    )
    parser.add_argument("--out", type=Path, metavar="DIR", default=None, help=out_help)


def hidden(parser: argparse.ArgumentParser, old: str, dest: str, **options: object) -> None:
    """An old spelling kept working: absent from ``--help``; its handler calls :func:`deprecated`."""
    parser.add_argument(old, dest=dest, help=argparse.SUPPRESS, **options)  # type: ignore[arg-type]


def run_dir(parser: argparse.ArgumentParser, dest: str = "run_dir", what: str = "serlib evaluate") -> None:
    """The run folder a reading verb reads, positional."""
    parser.add_argument(dest, type=Path, metavar="RUN_DIR", help=f"output folder of {what}")


# -- one function per verb, in the order of `serlib --help` -----------------------------------------
def config(add: Add, handler: Handler) -> None:
    parser = add("config", help="show a configuration")
    commands = parser.add_subparsers(dest="config_command", required=True)
    show = commands.add_parser("show", help="print a preset or file as validated YAML")
    add_config_arguments(show, out_help="output_dir to show (overrides output_dir)")
    show.set_defaults(handler=handler)


def demo_corpus(add: Add, handler: Handler) -> None:
    parser = add("demo-corpus", help="generate the offline synthetic demo corpus")
    parser.add_argument(
        "--out", type=Path, metavar="DIR", required=True, help="folder of the generated corpus"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(handler=handler)


def extract(add: Add, handler: Handler) -> None:
    parser = add("extract", help="fill the feature store for configured corpora")
    add_config_arguments(parser)
    parser.add_argument("--corpus", action="append", help="corpus key (repeatable; default: all)")
    parser.add_argument(
        "--extractor",
        action="append",
        choices=["logmel", "spectrogram", "egemaps", "egemaps_lld"],
        default=None,
        help="repeatable; default: the ACNN's input (features.acnn_input) and the AE's spectrogram",
    )
    parser.set_defaults(handler=handler)


def train_ae(add: Add, handler: Handler) -> None:
    parser = add("train-ae", help="train the recurrent autoencoder on a configured corpus")
    add_config_arguments(parser)
    parser.add_argument("--corpus", required=True, help="corpus key of the configuration")
    parser.add_argument("--epochs", type=int, default=None)
    parser.set_defaults(handler=handler)


def encode(add: Add, handler: Handler) -> None:
    parser = add("encode", help="encode a corpus into AE representations")
    add_config_arguments(parser)
    parser.add_argument("--model", type=Path, required=True, help="trained autoencoder .keras file")
    parser.add_argument("--corpus", required=True)
    parser.set_defaults(handler=handler)


def evaluate(add: Add, handler: Handler) -> None:
    parser = add("evaluate", help="run the ACNN protocol; write Table 1 and Figure 2")
    add_config_arguments(parser, out_help="the run folder to write (overrides output_dir)")
    parser.add_argument(
        "--seed", type=int, action="append", help="only these seeds of protocol.seeds (repeatable)"
    )
    parser.add_argument(
        "--condition", action="append", help="only these conditions of protocol.conditions (repeatable)"
    )
    parser.set_defaults(handler=handler)


def table(add: Add, handler: Handler) -> None:
    parser = add(
        "table", help="re-render Table 1 and the paired comparisons (with their power) from stored runs"
    )
    run_dir(parser)
    parser.add_argument(
        "--svm",
        action="store_true",
        help="Table 1 with the eGeMAPS + SVM row (serlib svm) and confusion matrices",
    )
    parser.set_defaults(handler=handler)


def svm(add: Add, handler: Handler) -> None:
    parser = add("svm", help="the eGeMAPS functionals + linear SVM reference on the same folds")
    add_config_arguments(parser, out_help="the run folder to write into (overrides output_dir)")
    parser.set_defaults(handler=handler)


def _epoch_arguments(parser: argparse.ArgumentParser, shown: bool = True) -> None:
    parser.add_argument(
        "--max-epochs", type=int, default=100, help="longest inner training" if shown else argparse.SUPPRESS
    )
    parser.add_argument(
        "--inner",
        type=int,
        default=1,
        help="inner validation sessions per fold" if shown else argparse.SUPPRESS,
    )


def epochs(add: Add, handler: Handler) -> None:
    parser = add("epochs", help="ACNN epochs chosen on training folds only (inner validation)")
    add_config_arguments(parser, out_help="the run folder to write into (overrides output_dir)")
    _epoch_arguments(parser)
    parser.set_defaults(handler=handler)


def reproduce(add: Add, handler: Handler) -> None:
    parser = add("reproduce", help="execute the notebooks in order with papermill")
    add_config_arguments(parser, out_help="the run folder to write (overrides output_dir)")
    parser.add_argument("--notebook", action="append", help="run only this notebook, e.g. 04 (repeatable)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds allowed per notebook cell")
    parser.set_defaults(handler=handler)


def report(add: Add, handler: Handler) -> None:
    parser = add(
        "report", help="rebuild RUN_DIR/report/index.html (the reproduction report) from a finished run"
    )
    parser.add_argument(
        "run_dir", type=Path, nargs="?", metavar="RUN_DIR", help="output folder of serlib reproduce"
    )
    hidden(parser, "--out", "old_out", type=Path, default=None)  # old: report --out RUN_DIR
    parser.set_defaults(handler=handler)


def provenance(add: Add, handler: Handler) -> None:
    parser = add(
        "provenance", help="print what produced a run folder and how this environment differs from it"
    )
    run_dir(parser, "folder", "serlib reproduce or evaluate")
    parser.add_argument("--json", action="store_true", help="print the record as stored")
    parser.set_defaults(handler=handler)


def check(add: Add, handler: Handler) -> None:
    parser = add(
        "check",
        help="does a run's Table 1 agree with the shipped reference, within the spread its seeds allow? "
        "(exit 0 agrees, 1 a cell outside, 3 not comparable)",
    )
    run_dir(parser, "folder", "serlib reproduce or evaluate")
    parser.add_argument(
        "--reference", default=None, help="a reference of serlib/references by name (default: by config hash)"
    )
    parser.add_argument(
        "--references",
        type=Path,
        default=None,
        help="folder of references (<name>.csv + <name>.json) instead of the shipped serlib/references",
    )
    parser.set_defaults(handler=handler)


def download(add: Add, handler: Handler) -> None:
    parser = add(
        "download", help="download an openly available corpus (names: serlib.data.download.ARCHIVES)"
    )
    parser.add_argument("name")
    parser.add_argument(
        "--out", type=Path, metavar="DIR", default=None, help="folder to unpack into (e.g. /data)"
    )
    hidden(parser, "--to", "old_to", type=Path, default=None)  # old: download NAME --to DIR
    parser.add_argument("--url", default=None, help="mirror address instead of the official one")
    parser.add_argument("--keep-archive", action="store_true", help="keep the archive after unpacking")
    parser.set_defaults(handler=handler)


def baseline(add: Add, handler: Handler) -> None:
    parser = add("baseline", help="deprecated: serlib svm, serlib table RUN_DIR --svm, serlib epochs")
    parser.add_argument("task", choices=["svm", "table", "epochs"])
    add_config_arguments(parser)
    _epoch_arguments(parser, shown=False)
    parser.set_defaults(handler=handler)


def matrix(add: Add, handler: Handler) -> None:
    parser = add("matrix", help="train on each corpus of protocol.cross_corpus_matrix, test on every other")
    add_config_arguments(parser)
    parser.add_argument(
        "--normalisation",
        action="append",
        choices=["none", "train", "corpus", "speaker"],
        help="features.normalisation to run (repeatable; default: train)",
    )
    parser.add_argument(
        "--corpus",
        action="append",
        help="only these corpora of protocol.cross_corpus_matrix (repeatable; default: all of them)",
    )
    parser.add_argument(
        "--pairs-with",
        default=None,
        metavar="CORPUS",
        help="only the pairs that train or test on CORPUS (a corpus joining the matrix)",
    )
    parser.set_defaults(handler=handler)


def sensitivity(add: Add, handler: Handler) -> None:
    parser = add(
        "sensitivity", help="run a sensitivity file: readings of the paper against the configured one"
    )
    parser.add_argument("plan", type=Path, help="sensitivity YAML (e.g. configs/nemo-sensitivity.yaml)")
    parser.set_defaults(handler=handler)


def predict(add: Add, handler: Handler) -> None:
    parser = add("predict", help="predict emotions of audio files with a trained model")
    parser.add_argument("--model", type=Path, required=True, help="model folder (e.g. runs/demo/models)")
    parser.add_argument("inputs", nargs="+", type=Path, help="audio files or folders")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=handler)

"""The ``serlib`` command line: one subcommand per pipeline step, each a thin call into the library.

Each handler imports the modules it calls when it runs (the allow-listed lazy imports of serlib:
TensorFlow, openSMILE, papermill and Dask take seconds to import), so that ``serlib --help`` and
``serlib config show`` answer at once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from serlib.app import cli_counts, cli_export, cli_pool
from serlib.base import config as config_module
from serlib.base import config_yaml, logs

OUT_HELP = "output folder (overrides output_dir)"
EXAMPLES = {
    "config": "serlib config show --preset paper\nserlib config show --config configs/nemo.yaml",
    "demo-corpus": "serlib demo-corpus --out runs/demo/data/demo",
    "extract": "serlib extract --preset demo --out runs/demo\n"
    "serlib extract --config configs/nemo.yaml --extractor egemaps",
    "train-ae": "serlib train-ae --preset demo --corpus demo_talks --epochs 4",
    "encode": "serlib encode --preset demo --corpus demo_emotion "
    '--model "$(serlib train-ae --preset demo --corpus demo_talks)"',
    "evaluate": "serlib evaluate --preset demo --out runs/demo\n"
    "serlib evaluate --config configs/nemo.yaml --seed 0 --condition BL   # a first sitting",
    "table": "serlib table runs/demo\nserlib table runs/nemo --svm   # with the eGeMAPS + SVM row, confusion matrices",
    "svm": "serlib svm --config configs/nemo.yaml",
    "epochs": "SERLIB_TF_THREADS=1 serlib epochs --config configs/nemo.yaml --max-epochs 60",
    "reproduce": "serlib reproduce --preset demo --out runs/demo\nserlib reproduce --preset demo --notebook 05",
    "report": "serlib report runs/demo   # rebuilds runs/demo/report/index.html",
    "provenance": "serlib provenance runs/demo",
    "check": "serlib check runs/demo\nserlib check runs/nemo --reference nemo",
    "download": "serlib download emodb --out /data",
    "baseline": "serlib svm --config configs/nemo.yaml   # instead of: serlib baseline svm ...",
    "matrix": "serlib matrix --config configs/cross-corpus.yaml --normalisation train --normalisation speaker\n"
    "serlib matrix --config configs/cross-corpus-ased.yaml --normalisation speaker --pairs-with ased",
    "sensitivity": "serlib sensitivity configs/nemo-sensitivity.yaml",
    "pool": "serlib pool runs/nemo runs/emodb --config configs/nemo.yaml --config configs/emodb.yaml --out runs/pool\n"
    "serlib pool --family results/family.yaml --out runs/pool/family   # the declared family",
    "predict": "serlib predict --model runs/demo/models recording.wav",
    "export": "serlib export runs/nemo --out results/nemo --config configs/nemo.yaml",
    "evidence": "serlib evidence          # regenerate the report's blocks from results/\n"
    "serlib evidence --check  # fail naming each number that differs",
    "counts": cli_counts.EXAMPLE,
}
"""One or two example command lines per verb, shown at the end of its --help."""


def _deprecated(old: str, new: str) -> None:
    print(f"serlib: {old} is deprecated; use {new}", file=sys.stderr)


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset", choices=config_module.PRESETS, default=None, help="built-in configuration"
    )
    parser.add_argument(
        "--config", type=Path, default=None, help="YAML configuration file (overrides --preset)"
    )
    parser.add_argument("--out", type=Path, default=None, help=OUT_HELP)


def _config(args: argparse.Namespace, log_file: bool = True) -> config_module.Config:
    """The configuration of ``--preset``/``--config``/``--out``; with ``log_file`` this process's INFO
    lines are appended to ``<output_dir>/logs/serlib.log`` from now on (``serlib.base.logs``)."""
    config = config_module.resolve(args.preset, args.config)
    if getattr(args, "out", None) is not None:
        config = config_module.override(config, output_dir=str(args.out))
    if log_file:
        logs.log_to_file(config.output_path)
    return config


# -- handlers ---------------------------------------------------------------------------------------
def _cmd_config_show(args: argparse.Namespace) -> int:
    print(config_yaml.dumps(_config(args, log_file=False)), end="")
    return 0


def _cmd_demo_corpus(args: argparse.Namespace) -> int:
    from serlib.data import demo  # noqa: PLC0415 - handlers import what they run (module docstring)

    paths = demo.generate(args.out, seed=args.seed)
    for part, path in paths.items():
        print(f"{part}: {path}")
    return 0


def _cmd_extract(args: argparse.Namespace) -> int:
    from serlib.base import cluster  # noqa: PLC0415 - handlers import what they run (module docstring)
    from serlib.features import store  # noqa: PLC0415

    config = _config(args)
    keys = args.corpus or list(config.corpora)
    extractors = args.extractor or [config.features.acnn_input, "spectrogram"]  # what the protocol reads
    address = config.protocol.scheduler_address  # a Dask cluster extracts on its workers
    with cluster.dask_client(address) if address else contextlib.nullcontext() as client:
        for key in keys:
            for extractor in extractors:
                features = store.extract_configured(config, key, extractor, client=client)
                skipped = f" ({len(features.skipped)} skipped)" if features.skipped else ""
                print(
                    f"{key} {extractor}: {len(features.ids)} rows {features.shape} -> {features.path}{skipped}"
                )
    return 0


def _cmd_train_ae(args: argparse.Namespace) -> int:
    from serlib.models import autoencoder  # noqa: PLC0415 - handlers import what they run (module docstring)

    config = _config(args)
    path = autoencoder.train_configured(config, args.corpus, epochs=args.epochs)
    print(path)
    return 0


def _cmd_encode(args: argparse.Namespace) -> int:
    from serlib.models import autoencoder  # noqa: PLC0415 - handlers import what they run (module docstring)

    config = _config(args)
    representations = autoencoder.encode_configured(config, args.model, args.corpus)
    print(
        f"{len(representations.ids)} vectors of {representations.vectors.shape[1]} dims -> {representations.path}"
    )
    return 0


def _refuse_unknown(flag: str, asked: Sequence[Any], configured: Sequence[Any], key: str) -> None:
    """A command-line subset names only values of the configuration; anything else is refused by name."""
    unknown = sorted({value for value in asked if value not in configured}, key=str)
    if unknown:
        listed = ", ".join(map(str, configured)) or "empty"
        raise ValueError(
            f"{flag} {', '.join(map(str, unknown))} is not in {key} ({listed}); name values of that list"
        )


def _subset(
    config: config_module.Config, seeds: Sequence[int] | None, conditions: Sequence[str] | None
) -> config_module.Config:
    """The configured protocol restricted to some of its seeds and conditions (a first sitting of a long
    grid: finished runs are reused when the whole grid runs later, so the parts add up to it)."""
    changes: dict[str, object] = {}
    if seeds:
        _refuse_unknown("--seed", seeds, config.protocol.seeds, "protocol.seeds")
        changes["protocol.seeds"] = [seed for seed in config.protocol.seeds if seed in seeds]
    if conditions:
        names = [condition.name for condition in config.protocol.conditions]
        _refuse_unknown("--condition", conditions, names, "protocol.conditions")
        config = config_module.keep_conditions(config, list(conditions))
    return config_module.override(config, **changes) if changes else config


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from serlib.base import provenance  # noqa: PLC0415 - handlers import what they run
    from serlib.protocol import figure2, grid, table1  # noqa: PLC0415

    config = _subset(_config(args), args.seed, args.condition)
    provenance.record(config.output_path, config)  # one warning line if the folder's environment differs
    grid.run_protocol(config)
    print(table1.written_table(config.output_dir), end="")
    out = config.output_path
    print(f"\ntables: {out / 'table1.md'}, {out / 'table1.csv'}; runs: {out / 'runs.csv'}")
    print(
        f"figure 2: {out / 'figures' / (figure2.FIGURE2_STEM + '.png')} (and .pdf, also in {config.figures_dir}/)"
    )
    return 0


def _cmd_table(args: argparse.Namespace) -> int:
    from serlib.protocol import comparisons, table1  # noqa: PLC0415 - handlers import what they run

    if args.svm:  # Table 1 with the eGeMAPS + SVM row, and the confusion matrices
        from serlib.protocol import svm  # noqa: PLC0415

        print(svm.table_with_baseline(args.run_dir))
        print(svm.confusion_markdown(args.run_dir), end="")
        return 0
    print(table1.render_table(args.run_dir), end="")
    print()
    print(comparisons.comparisons_markdown(comparisons.write_comparisons(args.run_dir)), end="")
    return 0


def _cmd_provenance(args: argparse.Namespace) -> int:
    from serlib.base import provenance  # noqa: PLC0415 - handlers import what they run

    if args.json:
        print(json.dumps(provenance.load(args.folder), indent=2))
        return 0
    text, differs = provenance.report(args.folder)
    print(text, end="")
    return 1 if differs else 0  # 1: this environment is not the recorded one (like diff)


def _cmd_check(args: argparse.Namespace) -> int:
    from serlib.protocol import check  # noqa: PLC0415 - handlers import what they run

    result = check.check_run(args.folder, reference=args.reference, references=args.references)
    print(check.check_markdown(result), end="")
    # 0: every cell agrees; 1: a cell is outside the expected spread; 3: not comparable (another config)
    return result.exit_status


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from serlib.app import reproduce  # noqa: PLC0415 - handlers import what they run (module docstring)

    return reproduce.run(
        preset=args.preset,
        config_path=args.config,
        out=args.out,
        notebooks=args.notebook,
        timeout=args.timeout,
    )


def _cmd_report(args: argparse.Namespace) -> int:
    from serlib.app import report  # noqa: PLC0415  (nbconvert takes seconds to import)

    run_dir = args.run_dir or args.old_out
    if args.old_out is not None:
        _deprecated("serlib report --out RUN_DIR", f"serlib report {args.old_out}")
    if run_dir is None:
        raise ValueError("serlib report needs the run folder: serlib report RUN_DIR (e.g. runs/demo)")
    built = report.build(run_dir)
    print(built.index)
    if not built.complete:
        print(f"serlib report: the run is incomplete: {built.incomplete_message()}", file=sys.stderr)
        return 1
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from serlib.data import download  # noqa: PLC0415 - handlers import what they run (module docstring)

    if args.old_to is not None:
        _deprecated("serlib download --to", "--out")
    out = args.out or args.old_to
    if out is None:
        raise ValueError("serlib download needs the folder to unpack into: --out DIR (e.g. --out /data)")
    path = download.download(args.name, out, url=args.url, keep_archive=args.keep_archive)
    print(path)
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from serlib.app import predict  # noqa: PLC0415 - handlers import what they run (module docstring)
    from serlib.base import progress  # noqa: PLC0415

    # A bar while a terminal waits (erased at the end); piped output is the result table alone.
    results = predict.predict_paths(args.model, args.inputs, progress=progress.interactive())
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(predict.format_table(results))
    # 0: every file predicted; 1: some files could not be used (each has its error in the output)
    return 1 if any(result["error"] for result in results) else 0


def _cmd_svm(args: argparse.Namespace) -> int:
    from serlib.protocol import svm  # noqa: PLC0415 - handlers import what they run

    config = _config(args)
    print(svm.run_baseline(config).to_string(index=False))
    if (config.output_path / "results" / "protocol.json").is_file():
        print(svm.table_with_baseline(config.output_dir), end="")
    return 0


def _cmd_epochs(args: argparse.Namespace) -> int:
    from serlib.base.files import write_csv  # noqa: PLC0415 - handlers import what they run
    from serlib.protocol import epochs  # noqa: PLC0415

    config = _config(args)
    curves = epochs.acnn_epoch_curves(config, max_epochs=args.max_epochs, inner_per_fold=args.inner)
    out = write_csv(curves, config.output_path / "epoch_selection.csv", float_format="%.5f")
    print(epochs.choose_epochs(curves).to_string(index=False))
    print(f"curves: {out}")
    return 0


def _cmd_baseline(args: argparse.Namespace) -> int:
    """The old ``baseline {svm,table,epochs}``: a deprecated alias of ``svm``, ``table --svm``, ``epochs``."""
    if args.task == "table":
        folder = _config(args).output_dir
        _deprecated("serlib baseline table", f"serlib table {folder} --svm")
        return _cmd_table(argparse.Namespace(run_dir=folder, svm=True))
    _deprecated(f"serlib baseline {args.task}", f"serlib {args.task}")
    return _cmd_svm(args) if args.task == "svm" else _cmd_epochs(args)


def _cmd_matrix(args: argparse.Namespace) -> int:
    from serlib.protocol import matrix  # noqa: PLC0415 - handlers import what they run (module docstring)

    config = _config(args)
    if args.corpus:
        configured = config.protocol.cross_corpus_matrix or []
        _refuse_unknown("--corpus", args.corpus, configured, "protocol.cross_corpus_matrix")
        # a sub-matrix of the configured one: its cells are the same folders, reused by the full run
        config = config_module.override(config, **{"protocol.cross_corpus_matrix": list(args.corpus)})
    if args.pairs_with:
        _refuse_unknown(
            "--pairs-with",
            [args.pairs_with],
            config.protocol.cross_corpus_matrix or [],
            "protocol.cross_corpus_matrix",
        )
    table = matrix.run_matrix(
        config, normalisations=args.normalisation or ["train"], involving=args.pairs_with
    )
    print(matrix.matrix_markdown(table, config.protocol.cross_corpus_matrix or []), end="")
    print(f"\nmatrix: {config.output_path / 'matrix.md'}, {config.output_path / 'matrix.csv'}")
    return 0


def _cmd_sensitivity(args: argparse.Namespace) -> int:
    from serlib.protocol import sensitivity  # noqa: PLC0415 - handlers import what they run (module docstring)

    table = sensitivity.run_sensitivity(args.plan)
    _, _, output = sensitivity.load_plan(args.plan)
    print((output / "sensitivity.md").read_text(encoding="utf-8"), end="")
    print(f"\n{len(table)} comparisons: {output / 'sensitivity.csv'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="serlib",
        description="Speech emotion recognition with autoencoder representations (Neumann & Vu, ICASSP 2019).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", required=True)

    class Commands:  # every verb with its --help examples (EXAMPLES) as the epilog
        @staticmethod
        def add_parser(name: str, **options: Any) -> argparse.ArgumentParser:
            epilog = "examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES[name].splitlines())
            return subparsers.add_parser(
                name, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter, **options
            )

    commands = Commands()

    config_parser = commands.add_parser("config", help="show a configuration")
    config_commands = config_parser.add_subparsers(dest="config_command", required=True)
    show = config_commands.add_parser("show", help="print a preset or file as validated YAML")
    _add_config_arguments(show)
    show.set_defaults(handler=_cmd_config_show)

    demo = commands.add_parser("demo-corpus", help="generate the offline synthetic demo corpus")
    demo.add_argument("--out", type=Path, required=True, help="folder of the generated corpus")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(handler=_cmd_demo_corpus)

    extract = commands.add_parser("extract", help="fill the feature store for configured corpora")
    _add_config_arguments(extract)
    extract.add_argument("--corpus", action="append", help="corpus key (repeatable; default: all)")
    extract.add_argument(
        "--extractor",
        action="append",
        choices=["logmel", "spectrogram", "egemaps", "egemaps_lld"],
        default=None,
        help="repeatable; default: the ACNN's input (features.acnn_input) and the AE's spectrogram",
    )
    extract.set_defaults(handler=_cmd_extract)

    train = commands.add_parser("train-ae", help="train the recurrent autoencoder on a configured corpus")
    _add_config_arguments(train)
    train.add_argument("--corpus", required=True, help="corpus key of the configuration")
    train.add_argument("--epochs", type=int, default=None)
    train.set_defaults(handler=_cmd_train_ae)

    encode = commands.add_parser("encode", help="encode a corpus into AE representations")
    _add_config_arguments(encode)
    encode.add_argument("--model", type=Path, required=True, help="trained autoencoder .keras file")
    encode.add_argument("--corpus", required=True)
    encode.set_defaults(handler=_cmd_encode)

    evaluate = commands.add_parser("evaluate", help="run the ACNN protocol; write Table 1 and Figure 2")
    _add_config_arguments(evaluate)
    evaluate.add_argument(
        "--seed", type=int, action="append", help="only these seeds of protocol.seeds (repeatable)"
    )
    evaluate.add_argument(
        "--condition", action="append", help="only these conditions of protocol.conditions (repeatable)"
    )
    evaluate.set_defaults(handler=_cmd_evaluate)

    table = commands.add_parser(
        "table", help="re-render Table 1 and the paired comparisons (with their power) from stored runs"
    )
    table.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="output folder of serlib evaluate")
    table.add_argument(
        "--svm",
        action="store_true",
        help="Table 1 with the eGeMAPS + SVM row (serlib svm) and confusion matrices",
    )
    table.set_defaults(handler=_cmd_table)

    svm = commands.add_parser("svm", help="the eGeMAPS functionals + linear SVM reference on the same folds")
    _add_config_arguments(svm)
    svm.set_defaults(handler=_cmd_svm)

    epochs = commands.add_parser(
        "epochs", help="ACNN epochs chosen on training folds only (inner validation)"
    )
    _add_config_arguments(epochs)
    epochs.add_argument("--max-epochs", type=int, default=100, help="longest inner training")
    epochs.add_argument("--inner", type=int, default=1, help="inner validation sessions per fold")
    epochs.set_defaults(handler=_cmd_epochs)

    reproduce = commands.add_parser("reproduce", help="execute the notebooks in order with papermill")
    _add_config_arguments(reproduce)
    reproduce.add_argument("--notebook", action="append", help="run only this notebook, e.g. 04 (repeatable)")
    reproduce.add_argument("--timeout", type=float, default=None, help="seconds allowed per notebook cell")
    reproduce.set_defaults(handler=_cmd_reproduce)

    report = commands.add_parser(
        "report", help="rebuild RUN_DIR/report/index.html (the reproduction report) from a finished run"
    )
    report.add_argument(
        "run_dir", type=Path, nargs="?", metavar="RUN_DIR", help="output folder of serlib reproduce"
    )
    report.add_argument(
        "--out", dest="old_out", type=Path, default=None, help=argparse.SUPPRESS
    )  # deprecated
    report.set_defaults(handler=_cmd_report)
    provenance = commands.add_parser(
        "provenance", help="print what produced a run folder and how this environment differs from it"
    )
    provenance.add_argument("folder", type=Path, help="output folder of serlib reproduce or evaluate")
    provenance.add_argument("--json", action="store_true", help="print the record as stored")
    provenance.set_defaults(handler=_cmd_provenance)

    check = commands.add_parser(
        "check",
        help="does a run's Table 1 agree with the shipped reference, within the spread its seeds allow? "
        "(exit 0 agrees, 1 a cell outside, 3 not comparable)",
    )
    check.add_argument("folder", type=Path, help="output folder of serlib reproduce or evaluate")
    check.add_argument(
        "--reference", default=None, help="a reference of serlib/references by name (default: by config hash)"
    )
    check.add_argument(
        "--references",
        type=Path,
        default=None,
        help="folder of references (<name>.csv + <name>.json) instead of the shipped serlib/references",
    )
    check.set_defaults(handler=_cmd_check)

    download = commands.add_parser(
        "download", help="download an openly available corpus (names: serlib.data.download.ARCHIVES)"
    )
    download.add_argument("name")
    download.add_argument("--out", type=Path, default=None, help="folder to unpack into (e.g. /data)")
    download.add_argument(
        "--to", dest="old_to", type=Path, default=None, help=argparse.SUPPRESS
    )  # deprecated
    download.add_argument("--url", default=None, help="mirror address instead of the official one")
    download.add_argument("--keep-archive", action="store_true", help="keep the archive after unpacking")
    download.set_defaults(handler=_cmd_download)

    baseline = commands.add_parser(
        "baseline", help="deprecated: serlib svm, serlib table RUN_DIR --svm, serlib epochs"
    )
    baseline.add_argument("task", choices=["svm", "table", "epochs"])
    _add_config_arguments(baseline)
    baseline.add_argument("--max-epochs", type=int, default=100, help=argparse.SUPPRESS)
    baseline.add_argument("--inner", type=int, default=1, help=argparse.SUPPRESS)
    baseline.set_defaults(handler=_cmd_baseline)

    matrix = commands.add_parser(
        "matrix", help="train on each corpus of protocol.cross_corpus_matrix, test on every other"
    )
    _add_config_arguments(matrix)
    matrix.add_argument(
        "--normalisation",
        action="append",
        choices=["none", "train", "corpus", "speaker"],
        help="features.normalisation to run (repeatable; default: train)",
    )
    matrix.add_argument(
        "--corpus",
        action="append",
        help="only these corpora of protocol.cross_corpus_matrix (repeatable; default: all of them)",
    )
    matrix.add_argument(
        "--pairs-with",
        default=None,
        metavar="CORPUS",
        help="only the pairs that train or test on CORPUS (a corpus joining the matrix)",
    )
    matrix.set_defaults(handler=_cmd_matrix)

    sensitivity = commands.add_parser(
        "sensitivity", help="run a sensitivity file: readings of the paper against the configured one"
    )
    sensitivity.add_argument("plan", type=Path, help="sensitivity YAML (e.g. configs/nemo-sensitivity.yaml)")
    sensitivity.set_defaults(handler=_cmd_sensitivity)

    cli_pool.add_parser(commands.add_parser)
    cli_export.add_parser(commands.add_parser)
    cli_counts.add_parser(commands.add_parser)

    predict = commands.add_parser("predict", help="predict emotions of audio files with a trained model")
    predict.add_argument("--model", type=Path, required=True, help="model folder (e.g. runs/demo/models)")
    predict.add_argument("inputs", nargs="+", type=Path, help="audio files or folders")
    predict.add_argument("--json", action="store_true")
    predict.set_defaults(handler=_cmd_predict)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for stream in (sys.stdout, sys.stderr):  # a file name that is not valid UTF-8 prints as \udcXX, no crash
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    # On screen: warnings and step summaries (-v or SERLIB_LOG_LEVEL=INFO: more); INFO lines go to the
    # output folder's logs/serlib.log once a handler knows that folder (``_config``).
    try:
        logs.configure("DEBUG" if args.verbose else None)
    except logs.LogSettingsError as error:
        print(f"serlib: error: {error}", file=sys.stderr)
        return 2
    try:
        return int(args.handler(args) or 0)
    except (ValueError, OSError) as error:
        # Library errors (ValueError subclasses) and file-system errors carry a message naming the
        # file/key and the fix: print it on one line, not a traceback (-v shows the traceback).
        if args.verbose:
            raise
        message = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
        print(f"serlib {args.command}: error: {message or type(error).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Every product is written to a temp file and renamed, so nothing half-written remains.
        print(f"serlib {args.command}: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

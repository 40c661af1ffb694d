"""The ``serlib`` command line: one subcommand per pipeline step, each a thin call into the library.

One rule for every verb (its parsers: :mod:`serlib.app.cli_parsers`, one function per verb):

- the folder a verb reads is positional (``serlib table RUN_DIR``, ``report``, ``provenance``,
  ``check``, ``export``, ``pool RUN_DIR ...``); it may add its products to that folder;
- ``--out DIR`` is always where this command writes: the run folder of the configured verbs (``evaluate``,
  ``svm``, ``epochs``, ``matrix``, ``reproduce``, ...; it overrides ``output_dir``) and the destination
  of ``demo-corpus``, ``download``, ``export`` and ``pool``;
- ``--config FILE`` is the configuration the command runs with; other inputs are named options
  (``--model``, ``--reference``, ``--family``, ``--speakers``, ...);
- old spellings (``report --out RUN_DIR``, ``download --to``, ``baseline``, ``pool --config``, ``pool``
  without ``--out``) keep working with one deprecation line on standard error naming the new spelling.

Each handler imports the modules it calls when it runs (the allow-listed lazy imports of serlib:
TensorFlow, openSMILE, papermill and Dask take seconds to import), so that ``serlib --help`` and
``serlib config show`` answer at once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from serlib.app import cli_counts, cli_export, cli_migrate, cli_parsers, cli_pool
from serlib.base import config as config_module
from serlib.base import config_yaml, logs

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
    "pool": "serlib pool runs/nemo runs/emodb --speakers configs/nemo.yaml --speakers configs/emodb.yaml "
    "--out runs/pool\n"
    "serlib pool --family results/family.yaml --out runs/pool/family   # the declared family",
    "predict": "serlib predict --model runs/demo/models recording.wav",
    "export": "serlib export runs/nemo --out results/nemo --config configs/nemo.yaml",
    "evidence": "serlib evidence          # regenerate the report's blocks from results/\n"
    "serlib evidence --check  # fail naming each number that differs",
    "counts": cli_counts.EXAMPLE,
    "migrate": cli_migrate.EXAMPLE,
}
"""One or two example command lines per verb, shown at the end of its --help."""


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
    from serlib.evidence import figure2, summaries, table1  # noqa: PLC0415

    config = _subset(_config(args), args.seed, args.condition)
    provenance.record(config.output_path, config)  # one warning line if the folder's environment differs
    summaries.evaluate(config)
    print(table1.written_table(config.output_dir), end="")
    out = config.output_path
    print(f"\ntables: {out / 'table1.md'}, {out / 'table1.csv'}; runs: {out / 'runs.csv'}")
    print(
        f"figure 2: {out / 'figures' / (figure2.FIGURE2_STEM + '.png')} (and .pdf, also in {config.figures_dir}/)"
    )
    return 0


def _cmd_table(args: argparse.Namespace) -> int:
    from serlib.evidence import comparisons, table1  # noqa: PLC0415 - handlers import what they run

    if args.svm:  # Table 1 with the eGeMAPS + SVM row, and the confusion matrices
        from serlib.evidence import svm_tables  # noqa: PLC0415

        print(svm_tables.table_with_baseline(args.run_dir))
        print(svm_tables.confusion_markdown(args.run_dir), end="")
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
    from serlib.evidence import check  # noqa: PLC0415 - handlers import what they run

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
        cli_parsers.deprecated("serlib report --out RUN_DIR", f"serlib report {args.old_out}")
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
        cli_parsers.deprecated("serlib download --to", "--out")
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
    from serlib.evidence import svm_tables  # noqa: PLC0415 - handlers import what they run
    from serlib.protocol import svm  # noqa: PLC0415

    config = _config(args)
    print(svm.run_baseline(config).to_string(index=False))
    if (config.output_path / "results" / "protocol.json").is_file():
        print(svm_tables.table_with_baseline(config.output_dir), end="")
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
        cli_parsers.deprecated("serlib baseline table", f"serlib table {folder} --svm")
        return _cmd_table(argparse.Namespace(run_dir=folder, svm=True))
    cli_parsers.deprecated(f"serlib baseline {args.task}", f"serlib {args.task}")
    return _cmd_svm(args) if args.task == "svm" else _cmd_epochs(args)


def _cmd_matrix(args: argparse.Namespace) -> int:
    from serlib.evidence import matrix  # noqa: PLC0415 - handlers import what they run (module docstring)

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
    from serlib.evidence import sensitivity  # noqa: PLC0415 - handlers import what they run (module docstring)

    table = sensitivity.run_sensitivity(args.plan)
    _, _, output = sensitivity.load_plan(args.plan)
    print((output / "sensitivity.md").read_text(encoding="utf-8"), end="")
    print(f"\n{len(table)} comparisons: {output / 'sensitivity.csv'}")
    return 0


def _verb_adder(subparsers: Any) -> cli_parsers.Add:
    """``add(name, help=...)``: a verb's subparser with its --help examples (``EXAMPLES``) as the epilog."""

    def add(name: str, **options: Any) -> argparse.ArgumentParser:
        epilog = "examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES[name].splitlines())
        return subparsers.add_parser(  # type: ignore[no-any-return]
            name, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter, **options
        )

    return add


def build_parser() -> argparse.ArgumentParser:
    """The parser of every verb: each verb's arguments in its own function (``cli_parsers``, ``cli_pool``,
    ``cli_export``, ``cli_counts``), its handler here."""
    parser = argparse.ArgumentParser(
        prog="serlib",
        description="Speech emotion recognition with autoencoder representations (Neumann & Vu, ICASSP 2019).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    add = _verb_adder(parser.add_subparsers(dest="command", required=True))
    verbs: list[tuple[Callable[[cli_parsers.Add, cli_parsers.Handler], None], cli_parsers.Handler]] = [
        (cli_parsers.config, _cmd_config_show),
        (cli_parsers.demo_corpus, _cmd_demo_corpus),
        (cli_parsers.extract, _cmd_extract),
        (cli_parsers.train_ae, _cmd_train_ae),
        (cli_parsers.encode, _cmd_encode),
        (cli_parsers.evaluate, _cmd_evaluate),
        (cli_parsers.table, _cmd_table),
        (cli_parsers.svm, _cmd_svm),
        (cli_parsers.epochs, _cmd_epochs),
        (cli_parsers.reproduce, _cmd_reproduce),
        (cli_parsers.report, _cmd_report),
        (cli_parsers.provenance, _cmd_provenance),
        (cli_parsers.check, _cmd_check),
        (cli_parsers.download, _cmd_download),
        (cli_parsers.baseline, _cmd_baseline),
        (cli_parsers.matrix, _cmd_matrix),
        (cli_parsers.sensitivity, _cmd_sensitivity),
    ]
    for register, handler in verbs:
        register(add, handler)
    for module in (
        cli_pool,
        cli_export,
        cli_counts,
        cli_migrate,
    ):  # verbs with their handlers in their own module
        module.add_parser(add)
    cli_parsers.predict(add, _cmd_predict)
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

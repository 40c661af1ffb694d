"""The demo preset's reference grid (issue 34): the demo protocol over seeds 0-9, then its per-seed UARs
written as ``serlib/references/demo.csv`` and ``demo.json`` (``serlib.evidence.check``).

Only ``protocol.seeds`` differs from the demo preset (and the output folder): the autoencoders and
feature stores are the demo's, the ACNN runs scale with the seeds (10 x 5 conditions x (within folds
+ cross)). The grid runs in sittings of two seeds with every condition, so that a grid stopped early
still holds complete seeds; finished runs are reused, so calling it again resumes, and a call that
finds every run finished only rewrites the reference files. ``--seeds N`` writes the reference from
the first N seeds (those finished) without training.

Each value carries the CPU family that computed it (``cpu_family``: ``serlib check`` compares a run with
its own family's values exactly, with another family's within a cross-CPU tolerance). On a machine of
another CPU family (an AMD EPYC, when the reference was made on an Intel Xeon), ``--add-family`` runs the
demo's own seeds (0 and 1; ``--seeds N`` for the first N) and adds their values, with this machine's
environment, to the shipped reference, keeping its own values (issue 42):

    SERLIB_TF_THREADS=1 nice -n 10 python docs/probes/demo_reference.py [--out runs/demo-reference] [--seeds 10]
    SERLIB_TF_THREADS=1 nice -n 10 python docs/probes/demo_reference.py --add-family [--seeds 2]
"""

from __future__ import annotations

import argparse

from serlib.base import config as config_module
from serlib.base import provenance
from serlib.evidence import check, summaries

SEEDS = list(range(10))
SITTING = 2
COMMAND = "SERLIB_TF_THREADS=1 nice -n 10 python docs/probes/demo_reference.py"
# What the shipped serlib/references/demo.* were made from (the JSON's commit is the one that wrote them).
SOURCE = (
    "the demo preset over seeds 0-9 (300 ACNN runs on 2 Dask workers at 1 TensorFlow thread), run "
    "2026-12-05 07:55-08:56 UTC on the 2-core Intel Xeon (AVX-512/AMX, KVM) shared with other jobs "
    "(1-minute load average 10-21); training code as 9f7351f (the commits in between changed serlib check, "
    "the report and docs only); seeds 0-1 give the Table 1 of `make demo` at 9f7351f on this machine, digit for digit"
)


def reference_config(out: str, seeds: list[int]) -> config_module.Config:
    return config_module.override(
        config_module.load_preset("demo"), output_dir=out, **{"protocol.seeds": seeds}
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/demo-reference")
    parser.add_argument(
        "--seeds", type=int, default=None, help="write the reference from the first N seeds, no training"
    )
    parser.add_argument(
        "--add-family",
        action="store_true",
        help="run the first --seeds seeds (default 2, the demo's) here and add this CPU family's values",
    )
    args = parser.parse_args()
    if args.add_family:
        add_family(args.out, args.seeds or 2)
        return
    if args.seeds is None:
        for start in range(0, len(SEEDS), SITTING):
            config = reference_config(args.out, SEEDS[start : start + SITTING])
            provenance.record(config.output_path, config, command=COMMAND)
            summaries.evaluate(config, progress=False)
    config = reference_config(args.out, SEEDS[: args.seeds])
    summaries.evaluate(config, progress=False)  # every run finished: the tables of all the seeds
    written = check.write_reference(config.output_path, "demo", command=COMMAND, config=config, source=SOURCE)
    print("\n".join(str(path) for path in written))


def add_family(out: str, seeds: int) -> None:
    """This machine's values of the first ``seeds`` seeds, added to serlib/references/demo.* under its
    CPU family (``out`` must be a folder of this machine: another family's finished runs would be reused)."""
    config = reference_config(out, SEEDS[:seeds])
    provenance.record(config.output_path, config, command=COMMAND + " --add-family")
    summaries.evaluate(config, progress=False)
    source = f"the demo preset, seeds 0-{seeds - 1}, run on this machine ({COMMAND} --add-family)"
    written = check.write_reference(
        config.output_path,
        "demo",
        command=COMMAND + " --add-family",
        config=config,
        source=source,
        add_family=True,
    )
    print("\n".join(str(path) for path in written))


if __name__ == "__main__":  # the Dask and extraction workers import this file again
    main()

"""The overhead ratio of whole ACNN protocol runs (issue 44): training CPU seconds over the calibrated
step compute, for a demo-sized and a paper-sized run, with Keras ``fit`` and with the compiled loop.

Run ``python -m benchmarks.bench_runs [--quick | --smoke]`` (or ``python -m benchmarks --only runs``).
Each row is ``profile_run.profile`` in a fresh process (so each loop traces its own models): demo, runs
as a Dask worker of ``make demo`` trains them (the first run of each of the 4 architectures traces, the
later ones reuse it); paper, one run of 4,400 utterances for a few of its 100 epochs. *Calibrated step
compute* = the calibration's CPU seconds per training utterance (``models.acnn.choice``, this machine's
cache) x utterance-epochs: the steps alone. The ratios are CPU-second ratios (1 TensorFlow thread), which
other processes on the cores change much less than wall time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from benchmarks import common


def _child(preset: str, loop: str, runs: int) -> dict[str, Any]:
    code = (
        "import json, sys; from benchmarks import profile_run as p; "
        f"r = p.profile({preset!r}, {loop!r}, {runs}); r['steady'] = p.steady_epoch_ratio(r); "
        "print('RESULT ' + json.dumps(r))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ.copy()
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def run(quick: bool = False, smoke: bool = False) -> list[dict[str, Any]]:
    """Rows for ``benchmarks/__main__``: per (preset, loop) the overhead ratios and the phase split."""
    plans = [("demo", 8 if not smoke else 2), ("paper", 1)]
    if smoke:
        plans = plans[:1]
    rows = []
    for preset, runs in plans:
        for loop in ("keras", "compiled"):
            result = _child(preset, loop, runs)
            cpu, step = result["cpu"], result["step_cpu"]
            counts = sorted(set(result["train_counts"]))
            epochs = len(result["epoch_cpu"][0])
            phases = ", ".join(
                f"{name} {cpu.get(name, 0.0):.2f}" for name in ("build", "train", "predict", "write")
            )
            rows.append(
                {
                    "benchmark": "runs",
                    "stage": "ACNN run overhead",
                    "implementation": f"{loop} ({result['implementation']} kernels)",
                    "work": f"{preset}: {runs} runs of {'/'.join(map(str, counts))} utt x {epochs} epochs, "
                    "1 TF thread",
                    "wall_s": round(result["wall"]["run"], 2),
                    "throughput": None if not step else round(cpu["train"] / step, 2),
                    "throughput_unit": "x step compute (training CPU-s)",
                    "note": (
                        f"whole runs {cpu['run'] / step:.2f}x, an epoch after the first "
                        f"{result['steady']:.2f}x its steps; CPU-s: {phases}; step compute {step:.2f} CPU-s "
                        f"({result['cpu_per_utterance'] * 1e3:.3f} CPU ms per utterance); "
                        f"load {common.load_average():.2f}"
                    )
                    if step
                    else "no calibration in the cache",
                }
            )
    return rows


def main() -> None:
    smoke, quick = "--smoke" in sys.argv, "--quick" in sys.argv
    for row in run(quick=quick, smoke=smoke):
        print(json.dumps(row))


if __name__ == "__main__":
    main()

"""``python -m benchmarks [--full]``: the feature, autoencoder and ACNN benchmarks in one table.

Each benchmark module runs in a fresh child process (so its peak memory is its own and one module's
TensorFlow state cannot slow another), returns its rows as JSON, and the rows are put into one table:
stage, implementation, work size, wall time, throughput, peak memory, achieved GFLOP/s against this
machine's GEMM rate measured in the same run, and the speed ratio to the reference implementation
measured in the same run (log-Mel/spectrogram: librosa; AE: a plain Keras model; ACNN: eager
execution). The table and a description of the machine are written to ``benchmarks/RESULTS.md``.
Quick mode (default) takes a few minutes on 2 cores; ``--full`` uses more data and repeats.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import common

MODULES = {
    "features": "benchmarks.bench_features",
    "autoencoder": "benchmarks.bench_autoencoder",
    "acnn": "benchmarks.bench_acnn",
}
RESULTS = Path(__file__).with_name("RESULTS.md")
COLUMNS = (
    ("stage", "stage"),
    ("implementation", "implementation"),
    ("work", "work"),
    ("wall_s", "wall s"),
    ("throughput_text", "throughput"),
    ("peak_text", "peak MiB"),
    ("gflops_text", "GFLOP/s (% of GEMM)"),
    ("ratio_text", "x reference"),
)


# -- child side -----------------------------------------------------------------------------------------
def _child(name: str, quick: bool, output: Path) -> None:
    """Run one benchmark module's ``run(quick)`` with peak-memory sampling; write its rows as JSON."""
    module = importlib.import_module(MODULES[name])
    load_before = common.load_average()
    start, cpu = time.perf_counter(), common.cpu_seconds()
    with common.peak_memory() as peak:
        rows = module.run(quick=quick)
    summary = {
        "module": name,
        "wall_s": round(time.perf_counter() - start, 1),
        "cpu_s": round(common.cpu_seconds() - cpu, 1),
        "peak_mib": round(peak.peak_mib, 0),
        "load_before": round(load_before, 2),
        "load_after": round(common.load_average(), 2),
    }
    output.write_text(json.dumps({"summary": summary, "rows": rows}, default=_plain), encoding="utf-8")


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


# -- parent side ----------------------------------------------------------------------------------------
def _run_module(name: str, quick: bool) -> dict[str, Any]:
    """One module in a child process; a missing or failing module gives an error entry, not a crash."""
    try:
        spec = importlib.util.find_spec(MODULES[name])
    except ModuleNotFoundError:
        spec = None
    if spec is None:
        return {"summary": {"module": name, "error": f"{MODULES[name]} not found"}, "rows": []}
    with tempfile.TemporaryDirectory(prefix="serlib-bench-") as folder:
        output = Path(folder) / "rows.json"
        command = [sys.executable, "-m", "benchmarks", "--child", name, "--json", str(output)]
        if not quick:
            command.append("--full")
        environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        print(f"[benchmarks] {name} ...", flush=True)
        done = subprocess.run(
            command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        if done.returncode != 0 or not output.is_file():
            tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
            return {"summary": {"module": name, "error": f"exit {done.returncode}: {tail[0]}"}, "rows": []}
        return json.loads(output.read_text(encoding="utf-8"))


def _number(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}"
    return str(value)


def normalise(
    module: str, row: dict[str, Any], summary: dict[str, Any], rows: list[dict[str, Any]]
) -> dict[str, Any]:
    """One table row from a benchmark row (each module's own keys mapped to the common columns).

    Modules may return the common keys directly: stage, implementation, work, wall_s, throughput,
    throughput_unit, peak_mib, gflops, gemm_fraction, ratio_vs_reference, reference.
    """
    out = dict(row)
    if module == "features" and "realtime_factor" in row:
        out["stage"] = f"features: {row['extractor']}"
        out["work"] = f"{row['files']} files, {row['audio_s']} s audio, {row['processes']} proc"
        out["throughput"] = row["realtime_factor"]
        out["throughput_unit"] = "x real time"
        out["ratio_vs_reference"] = row.get("ratio_vs_librosa")
        out["reference"] = "librosa"
        cpu = row.get("realtime_factor_per_cpu_s")
        if cpu:
            out["note"] = f"{cpu:,.0f}x real time per CPU-second"
    elif module == "autoencoder":
        out = _autoencoder_row(row, rows)
    out.setdefault("stage", module)
    out.setdefault("implementation", "")
    out.setdefault("work", "")
    unit = out.get("throughput_unit", "")
    out["throughput_text"] = f"{_number(out.get('throughput'))} {unit}".strip()
    if out.get("peak_mib") is not None:
        out["peak_text"] = _number(out["peak_mib"], 0)
    else:
        out["peak_text"] = f"<= {_number(summary.get('peak_mib'), 0)} (module)"
    if out.get("gflops") is not None:
        fraction = out.get("gemm_fraction")
        share = f" ({100 * fraction:.0f}%)" if fraction is not None else ""
        out["gflops_text"] = f"{_number(out['gflops'], 1)}{share}"
    else:
        out["gflops_text"] = ""
    ratio = out.get("ratio_vs_reference")
    out["ratio_text"] = "" if ratio is None else f"{ratio:.2f} vs {out.get('reference', 'reference')}"
    out["wall_s"] = _number(out.get("wall_s"), 2)
    return out


def _autoencoder_row(row: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A benchmarks.bench_autoencoder row (keys 'row' = gemm/train/encode/pipeline) in the common columns."""
    out = dict(row)
    kind = row.get("row")
    if kind == "gemm":
        out["stage"] = "GEMM ceiling"
        out["work"] = "float32 2048 x 2048 x 2048"
        out["gflops"] = row.get("best")
        out["note"] = f"numpy {row.get('numpy')}, TensorFlow {row.get('tensorflow')} GFLOP/s"
        return out
    if kind == "train":
        out["stage"] = "AE training"
        determinism = "" if row.get("deterministic", True) else ", op determinism off"
        out["implementation"] = f"{row['implementation']} ({row['gru_variant']}{determinism})"
        out["work"] = f"{row['batches']} batches of 64 x 186 x 128"
        out["wall_s"] = row["s_per_batch_median"] * row["batches"]
        out["note"] = (
            f"{row['s_per_batch_median']} s/batch median, {row['cpu_s_per_batch']} CPU s/batch, "
            f"{row['training_gflop_per_utterance']} GFLOP/utt"
        )
        plain = next(
            (
                r
                for r in rows
                if r.get("row") == "train"
                and r.get("implementation") == "plain Keras GRU"
                and r.get("gru_variant") == row["gru_variant"]
                and r.get("deterministic", True)
            ),
            None,
        )
        if plain:
            out["ratio_vs_reference"] = row["utterances_per_s"] / plain["utterances_per_s"]
            out["reference"] = "plain Keras GRU"
    elif kind == "encode":
        out["stage"] = "AE encoding"
        out["work"] = f"{row['utterances']} utt, batch 500"
        out["wall_s"] = row.get("seconds")
    elif kind == "pipeline":
        out["stage"] = "AE input pipeline"
        out["work"] = f"{row['batches']} batches from a {row['utterances']}-row HDF5 store"
        out["note"] = f"peak memory increase {row.get('peak_memory_increase_mib')} MiB"
    out["throughput"], out["throughput_unit"] = row.get("utterances_per_s"), "utt/s"
    out["gflops"] = row.get("achieved_gflops")
    out["gemm_fraction"] = row.get("fraction_of_gemm")
    return out


def render(
    results: list[dict[str, Any]], machine: dict[str, Any], gemm: dict[str, float], quick: bool
) -> str:
    """RESULTS.md: how it was made, the machine, the table and the per-module summaries."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# serlib benchmark results",
        "",
        f"Generated by `python -m benchmarks{'' if quick else ' --full'}` ({'quick' if quick else 'full'} mode) "
        f"on {now}. Do not edit by hand: re-run the command. What each number means and what each speed "
        "change bought: `docs/performance.md`.",
        "",
        "## Machine",
        "",
        "| property | value |",
        "|---|---|",
        *[f"| {key} | {value} |" for key, value in machine.items()],
        f"| GEMM rate (float32 {common.GEMM_SIZE}^3, best of 5) | numpy {gemm['numpy']} GFLOP/s, "
        f"TensorFlow {gemm['tensorflow']} GFLOP/s |",
        "",
        "Other processes share the cores; the load average is given per module. Wall times under load are "
        "pessimistic; the feature rows also give real time per CPU-second, which load does not change.",
        "",
        "## Results",
        "",
        "| " + " | ".join(title for _, title in COLUMNS) + " | notes |",
        "|" + "---|" * (len(COLUMNS) + 1),
    ]
    for result in results:
        summary = result["summary"]
        for row in result["rows"]:
            table_row = normalise(summary["module"], row, summary, result["rows"])
            cells = [str(table_row.get(key, "")) for key, _ in COLUMNS]
            lines.append("| " + " | ".join(cells) + f" | {table_row.get('note', '')} |")
    lines += [
        "",
        "## Modules",
        "",
        "| module | wall s | CPU s | peak MiB | load before/after | status |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        s = result["summary"]
        status = s.get("error", "ok")
        lines.append(
            f"| {s['module']} | {s.get('wall_s', '')} | {s.get('cpu_s', '')} | {s.get('peak_mib', '')} | "
            f"{s.get('load_before', '')} / {s.get('load_after', '')} | {status} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="more data and repeats (tens of minutes)")
    parser.add_argument(
        "--only", default=",".join(MODULES), help="comma-separated subset of " + ", ".join(MODULES)
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the Markdown table")
    parser.add_argument("--child", choices=list(MODULES), help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = not args.full
    if args.child:
        _child(args.child, quick, args.json)
        return
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        parser.error(f"unknown benchmark {unknown}; choose from {', '.join(MODULES)}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    machine = common.describe_machine()
    gemm = common.gemm_rates()
    results = [_run_module(name, quick) for name in names]
    text = render(results, machine, gemm, quick)
    tmp = args.output.with_name(f".{args.output.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, args.output)
    print(text)
    print(f"[benchmarks] written to {args.output}")


if __name__ == "__main__":
    main()

"""``python -m benchmarks [--full]``: the feature, autoencoder and ACNN benchmarks in one table.

Each benchmark module runs in a fresh child process (so its peak memory is its own and one module's
TensorFlow state cannot slow another), returns its rows as JSON, and the rows are put into one table:
stage, implementation, work size, wall time, throughput, peak memory, achieved GFLOP/s against this
machine's GEMM rate measured in the same run, and the speed ratio to the reference implementation
measured in the same run (log-Mel/spectrogram: librosa; AE: a plain Keras model; ACNN training: the
same model with ``acnn.implementation: reference``; ACNN inference: batch 32). The table, a
description of the machine and the load average before and after are written to
``benchmarks/RESULTS.md``. Quick mode (default, ``make bench``) takes a few minutes on 2 idle cores;
``--full`` uses more data and repeats; ``--smoke`` runs every module at tiny sizes and only prints
(checks that the benchmarks run; its numbers mean nothing).
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
    "runs": "benchmarks.bench_runs",
}
RESULTS = Path(__file__).with_name("RESULTS.md")
RAW = Path(__file__).with_name("results.json")  # raw rows of the last run (git-ignored)
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
def _child(name: str, quick: bool, output: Path, smoke: bool = False) -> None:
    """Run one benchmark module's ``run(quick, smoke)``; write its rows as JSON."""
    module = importlib.import_module(MODULES[name])
    load_before = common.load_average()
    start, cpu = time.perf_counter(), common.cpu_seconds()
    rows = module.run(quick=quick, smoke=smoke)  # peak memory is sampled by the parent (no extra thread here)
    summary = {
        "module": name,
        "wall_s": round(time.perf_counter() - start, 1),
        "cpu_s": round(common.cpu_seconds() - cpu, 1),
        "load_before": round(load_before, 2),
        "load_after": round(common.load_average(), 2),
    }
    output.write_text(json.dumps({"summary": summary, "rows": rows}, default=_plain), encoding="utf-8")


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


# -- parent side ----------------------------------------------------------------------------------------
def _run_module(name: str, quick: bool, smoke: bool = False) -> dict[str, Any]:
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
        if smoke:
            command.append("--smoke")
        environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        print(f"[benchmarks] {name} ...", flush=True)
        with tempfile.TemporaryFile("w+", encoding="utf-8") as errors:
            child = subprocess.Popen(
                command, env=environment, stdout=subprocess.DEVNULL, stderr=errors, text=True
            )
            with common.peak_memory(pid=child.pid) as peak:
                returncode = child.wait()
            errors.seek(0)
            stderr = errors.read()
        if returncode != 0 or not output.is_file():
            tail = stderr.strip().splitlines()[-1:] or ["no output"]
            return {"summary": {"module": name, "error": f"exit {returncode}: {tail[0]}"}, "rows": []}
        result = json.loads(output.read_text(encoding="utf-8"))
        result["summary"]["peak_mib"] = round(peak.peak_mib, 0)
        return result


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
        notes = [f"{cpu:,.0f}x real time per CPU-second"] if cpu else []
        out["note"] = "; ".join(notes + ([row["note"]] if row.get("note") else []))
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
        if row.get("gflop_per_cpu_s"):
            out["note"] += f"; TensorFlow {row['gflop_per_cpu_s']} GFLOP per CPU-second"
        return out
    if kind == "chain":
        out["stage"] = "AE recurrence ceiling"
        out["implementation"] = f"{row['implementation']} ({row['gru_variant']})"
        stages = " + ".join("||".join(str(size) for size in sizes) for sizes in row["stages"])
        out["work"] = f"{row['batches']} batches: 186 steps x layers {stages} rows, forward + backward"
        out["wall_s"] = row["s_per_batch_median"] * row["batches"]
        out["throughput"], out["throughput_unit"] = BATCH_AE / row["s_per_batch_median"], "utt/s"
        out["gflops"] = row.get("achieved_gflops")
        out["gemm_fraction"] = row.get("fraction_of_gemm")
        out["note"] = (
            f"{row['s_per_batch_median']} s/batch median (XLA loops {row['s_per_batch_xla']}, graph loops "
            f"{row['s_per_batch_graph']}), {row['cpu_s_per_batch']} CPU s/batch, "
            f"{row['chain_gflop_per_batch']} GFLOP/batch; per CPU-second {row['gflop_per_cpu_s']} GFLOP"
        )
        if row.get("fraction_of_gemm_cpu") is not None:
            out["note"] += f" ({100 * row['fraction_of_gemm_cpu']:.0f}% of GEMM's)"
        out["note"] += f"; load {row.get('load')}"
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
        if row.get("fraction_of_gemm_cpu") is not None:
            out["note"] += f"; per CPU-second {100 * row['fraction_of_gemm_cpu']:.0f}% of GEMM's"
        if row.get("fraction_of_chain") is not None:
            out["note"] += (
                f"; **{100 * row['fraction_of_chain']:.0f}% of the recurrence ceiling's FLOP/s** (target >= 90 %; "
                f"per CPU-second {100 * row['fraction_of_chain_cpu']:.0f}%), the chain alone takes "
                f"{100 * row['chain_share_of_step']:.0f}% of the step; "
                f"{100 * row.get('fraction_of_gemm', 0):.0f}% of GEMM (target >= 52 %)"
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


BATCH_AE = 64  # the paper AE's batch (benchmarks.bench_autoencoder.BATCH)


# -- paper-scale estimate ---------------------------------------------------------------------------------
# Work of the paper preset (paper, Sec. 3-4): AE utterance-epochs, ACNN utterance-epochs, audio hours.
AE_TRAININGS = {  # name: (utterances, epochs)
    "fT: TED-LIUM 2 full": (92_973, 32),
    "sT: TED-LIUM 400 talks": (25_303, 64),
    "Li: LibriSpeech 100 h": (28_539, 64),
    "C: IEMOCAP": (5_531, 64),
    "C: MSP-IMPROV": (7_798, 64),
}
LABELED_UTTERANCES = 5_531 + 7_798
ACNN_RUNS = 5 * 10 * (5 + 1)  # conditions x seeds x (folds + cross-corpus)
ACNN_TRAINING_UTTERANCES = 4_400
ACNN_EPOCHS = 100
SPECTROGRAM_HOURS = 207 + 55 + 100 + 7 + 9  # fT, sT (400 of 1,495 talks), Li, IEMOCAP, MSP-IMPROV (approx.)
LOGMEL_HOURS = 7 + 9  # the two labeled corpora (approx.)
# One H100 (SXM): 67 TFLOP/s FP32. A batch-64 GRU with 256 units is latency-bound: cuDNN GRU training
# reached ~25 % of FP32 peak at 512 units / batch 32 and ~2.5 % at 128 units on a TITAN X
# (cudnn_rnn_theano_benchmarks), so 10-25 % is assumed for 256 units / batch 64.
GPU_NAME = "H100"
GPU_FP32_TFLOPS = 67.0
GPU_UTILISATION = (0.10, 0.25)
GPU_ACNN_STEP_S = 0.002  # Keras tf.function step overhead per batch on a GPU (the ACNN's FLOPs take ~0.4 ms)
NODES = (1, 2, 4, 8)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:,.1f} h" if seconds >= 360 else f"{seconds / 60:,.1f} min"


def _spread(loads: list[float], workers: int) -> float:
    """Longest worker's share when independent jobs go to ``workers`` (longest first to the least busy)."""
    totals = [0.0] * workers
    for load in sorted(loads, reverse=True):
        totals[totals.index(min(totals))] += load
    return max(totals)


def _rows_of(results: list[dict[str, Any]], module: str) -> list[dict[str, Any]]:
    return next((r["rows"] for r in results if r["summary"]["module"] == module), [])


def paper_scale(results: list[dict[str, Any]], cores: int) -> list[str]:
    """Markdown lines: how long the paper preset takes on this CPU, one GPU and N GPUs/machines."""
    from serlib.base import config as config_module

    ae_variant = config_module.load_preset("paper").autoencoder.gru_variant
    features = _rows_of(results, "features")
    autoencoder = _rows_of(results, "autoencoder")
    acnn_rows = _rows_of(results, "acnn")

    def feature_rate(extractor: str) -> float | None:
        row = next(
            (
                r
                for r in features
                if r.get("extractor") == extractor and r["implementation"].startswith("serlib store")
            ),
            None,
        )
        return None if row is None else row["realtime_factor_per_cpu_s"] * cores

    train = next(
        (
            r
            for r in autoencoder
            if r.get("row") == "train"
            and r.get("implementation") == "AudeepGRU"
            and r.get("gru_variant") == ae_variant
            and r.get("deterministic", True)
        ),
        None,
    )
    encode = next((r for r in autoencoder if r.get("row") == "encode"), None)
    # The protocol runs one worker per core with 1 TF thread each: the fast model's rate per CPU-second
    # with 1 thread on realistic lengths, times the cores.
    acnn_train = next(
        (
            r
            for r in acnn_rows
            if r.get("stage") == "ACNN training"
            and r.get("implementation") == "fast"
            and r.get("profile") == "realistic"
            and r.get("threads") == 1
        ),
        None,
    )
    if train is None or acnn_train is None:
        return [
            "",
            "### Paper-scale estimate",
            "",
            "Not available: the AE or ACNN benchmark did not run.",
            "",
        ]

    ae_epochs = {name: n * e for name, (n, e) in AE_TRAININGS.items()}
    ae_total = sum(ae_epochs.values())
    acnn_total = ACNN_RUNS * ACNN_TRAINING_UTTERANCES * ACNN_EPOCHS
    ae_cpu_rate = train["batches"] * 64 / (train["cpu_s_per_batch"] * train["batches"]) * cores
    acnn_cpu_rate = acnn_train["per_cpu_s"] * cores
    encode_rate = encode["utterances_per_s"] if encode else None
    flops_train = train["training_gflop_per_utterance"] * 1e9
    pipeline = next((r for r in autoencoder if r.get("row") == "pipeline"), None)
    reader_rate = pipeline["utterances_per_s"] if pipeline else math.inf  # one HDF5 reader thread
    compute_rates = [GPU_FP32_TFLOPS * 1e12 * u / flops_train for u in GPU_UTILISATION]  # utt/s, low..high
    gpu_rates = [min(rate, reader_rate) for rate in compute_rates]
    acnn_run_gpu_s = math.ceil(ACNN_TRAINING_UTTERANCES / 32) * ACNN_EPOCHS * GPU_ACNN_STEP_S
    spectrogram_rate, logmel_rate = feature_rate("spectrogram"), feature_rate("logmel")

    cpu = {
        "features": (SPECTROGRAM_HOURS * 3600 / spectrogram_rate if spectrogram_rate else math.nan)
        + (LOGMEL_HOURS * 3600 / logmel_rate if logmel_rate else math.nan),
        "ae": ae_total / ae_cpu_rate,
        "encode": 5 * LABELED_UTTERANCES / encode_rate if encode_rate else math.nan,
        "acnn": acnn_total / acnn_cpu_rate,
    }
    lines = [
        "",
        "### Paper-scale estimate",
        "",
        f"Work: AE {ae_total:,} utterance-epochs ("
        + ", ".join(f"{name} {n:,} x {e}" for name, (n, e) in AE_TRAININGS.items())
        + f"); ACNN {ACNN_RUNS} runs (5 conditions x 10 seeds x (5 folds + 1 cross)) x {ACNN_EPOCHS} epochs x "
        f"~{ACNN_TRAINING_UTTERANCES:,} training utterances = {acnn_total:,} utterance-epochs; features "
        f"~{SPECTROGRAM_HOURS} h of audio (spectrograms) and ~{LOGMEL_HOURS} h (log-Mel).",
        "",
        f"This CPU: rates per CPU-second measured above x {cores} cores (the time on the idle machine; other "
        f"processes' load does not change CPU-seconds): AE {ae_cpu_rate:.1f} utt/s ({ae_variant}, "
        f"{train['training_gflop_per_utterance']} GFLOP/utt), ACNN {acnn_cpu_rate:,.0f} utt/s (`implementation: "
        f"fast`, 1 TF thread per core, lengths 40-100 % of 750 frames), encoding "
        f"{encode_rate or float('nan'):,.0f} utt/s (as measured). One {GPU_NAME}: an estimate, not a "
        f"measurement (no GPU in this session): AE at {int(100 * GPU_UTILISATION[0])}-"
        f"{int(100 * GPU_UTILISATION[1])} % of its {GPU_FP32_TFLOPS:.0f} TFLOP/s FP32 "
        f"({compute_rates[0]:,.0f}-{compute_rates[1]:,.0f} utt/s with `gru_variant: reset_after`, the cuDNN "
        f"kernel), capped by the measured HDF5 input pipeline ({reader_rate:,.0f} utt/s, one reader thread "
        f"on this CPU); ACNN bound by ~{GPU_ACNN_STEP_S * 1e3:.0f} ms Keras step overhead per batch of 32 "
        f"({acnn_run_gpu_s:.0f} s per run); features stay on the CPU cores.",
        "",
        f"| stage | this CPU ({cores} cores) | one {GPU_NAME} (estimate) |",
        "|---|---:|---:|",
        f"| feature extraction | {_hours(cpu['features'])} | (CPU: {_hours(cpu['features'])} on {cores} cores, "
        f"/ cores) |",
        f"| AE training, all 5 AEs | {_hours(cpu['ae'])} | {_hours(ae_total / gpu_rates[1])} - "
        f"{_hours(ae_total / gpu_rates[0])} |",
        f"| of which fT alone (92,973 x 32) | {_hours(ae_epochs['fT: TED-LIUM 2 full'] / ae_cpu_rate)} | "
        f"{_hours(ae_epochs['fT: TED-LIUM 2 full'] / gpu_rates[1])} - "
        f"{_hours(ae_epochs['fT: TED-LIUM 2 full'] / gpu_rates[0])} |",
        f"| AE encoding (5 AEs x {LABELED_UTTERANCES:,} utt) | {_hours(cpu['encode'])} | < 1 min |",
        f"| ACNN, {ACNN_RUNS} runs | {_hours(cpu['acnn'])} | {_hours(ACNN_RUNS * acnn_run_gpu_s)} |",
        f"| total | {_hours(sum(cpu.values()))} | "
        f"{_hours(cpu['features'] + ae_total / gpu_rates[1] + ACNN_RUNS * acnn_run_gpu_s)} - "
        f"{_hours(cpu['features'] + ae_total / gpu_rates[0] + ACNN_RUNS * acnn_run_gpu_s)} |",
        "",
        "Scale-out: the 5 AE trainings are independent (one per GPU or machine, longest first), the 300 "
        "ACNN runs are Dask tasks (`protocol.scheduler_address`), extraction chunks too. A "
        "`MirroredStrategy` over several GPUs instead splits each batch of 64, which shortens one AE "
        "only while per-GPU batches stay large enough to keep the GPUs busy.",
        "",
        "| workers | AE (CPU machines like this) | ACNN (CPU machines) | AE (GPUs, estimate) | ACNN (GPUs, estimate) |",
        "|---:|---:|---:|---:|---:|",
    ]
    ae_loads = list(ae_epochs.values())
    for n in NODES:
        lines.append(
            f"| {n} | {_hours(_spread(ae_loads, n) / ae_cpu_rate)} | "
            f"{_hours(math.ceil(ACNN_RUNS / n) * acnn_total / ACNN_RUNS / acnn_cpu_rate)} | "
            f"{_hours(_spread(ae_loads, n) / gpu_rates[1])} - {_hours(_spread(ae_loads, n) / gpu_rates[0])} | "
            f"{_hours(math.ceil(ACNN_RUNS / n) * acnn_run_gpu_s)} |"
        )
    return lines


def render(
    results: list[dict[str, Any]],
    machine: dict[str, Any],
    gemm: dict[str, float],
    quick: bool,
    smoke: bool = False,
) -> str:
    """RESULTS.md: how it was made, the machine, the table and the per-module summaries."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    if smoke:
        command, mode = " --smoke", "smoke mode: tiny sizes, the numbers mean nothing"
    elif quick:
        command, mode = "", "quick mode; `make bench` runs the same"
    else:
        command, mode = " --full", "full mode"
    measured = [result["summary"]["module"] for result in results]
    if set(measured) != set(MODULES):
        command += f" --only {','.join(measured)}"
    cpu = str(machine.get("cpu", "?"))
    lines = [
        SECTION_MARK.format(cpu=cpu),
        f"## {cpu}",
        "",
        f"Generated by `python -m benchmarks{command}` ({mode}) on {now} at commit {_commit()}, with a "
        f"1/5/15-minute load average of {machine.get('load_average_1_5_15min', '?')} on "
        f"{machine.get('cores', '?')} cores. Do not edit by hand: re-run the command. What each number means "
        "and what each speed change bought: `docs/performance.md`.",
        "",
        "### Machine",
        "",
        "| property | value |",
        "|---|---|",
        *[f"| {key} | {value} |" for key, value in machine.items()],
        f"| GEMM rate (float32 {common.GEMM_SIZE}^3, best of 5) | numpy {gemm['numpy']} GFLOP/s, "
        f"TensorFlow {gemm['tensorflow']} GFLOP/s |",
        "",
        "Other processes share the cores; the load average is given per module (and per row for the AE "
        "recurrence and the ACNN). Wall times under load are pessimistic; the feature rows also give real "
        "time per CPU-second, the ACNN rows with 1 TF thread are utterances per CPU-second against the "
        "1-thread GEMM's GFLOP per CPU-second, which load changes much less.",
        "",
        "### Results",
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
    lines += paper_scale(results, int(machine.get("cores", common.cores())))
    lines += [
        "",
        "### Modules",
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


SECTION_MARK = "<!-- benchmarks: cpu {cpu} -->"
TITLE = [
    "# serlib benchmark results",
    "",
    "One section per CPU model, each measured on a machine with that CPU by the command in it. A run "
    "replaces the section of its own CPU model and keeps the others as they were measured, marked so, "
    "until a machine of that family runs the benchmarks again (the fast and reference ACNN kernels, for "
    "one, rank differently on AMD and Intel CPUs: `docs/performance.md`).",
    "",
]


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _sections(text: str) -> dict[str, list[str]]:
    """The CPU sections of an earlier RESULTS.md (a file from before the sections is one section, of the
    CPU its machine table names, its headings one level down)."""
    lines = text.splitlines()
    marks = [i for i, line in enumerate(lines) if line.startswith("<!-- benchmarks: cpu ")]
    if not marks:
        cpu = next((line.split("|")[2].strip() for line in lines if line.startswith("| cpu |")), None)
        if cpu is None:
            return {}
        body = [("#" + line if line.startswith("## ") else line) for line in lines[1:]]
        return {cpu: [SECTION_MARK.format(cpu=cpu), f"## {cpu}", *body]}
    sections = {}
    for start, end in zip(marks, [*marks[1:], len(lines)], strict=True):
        cpu = lines[start][len("<!-- benchmarks: cpu ") : -len(" -->")]
        sections[cpu] = lines[start:end]
    return sections


KEPT_NOTE = (
    "*Measured on another machine with this CPU model, not by the run of the section above; kept as "
    "measured until a machine of this family runs `python -m benchmarks` again.*"
)


def merge(section: str, cpu: str, previous: str | None) -> str:
    """RESULTS.md: the title, this run's ``section`` for ``cpu``, then every other CPU's earlier section."""
    lines = [*TITLE, *section.rstrip("\n").splitlines(), ""]
    for other, body in (_sections(previous) if previous else {}).items():
        if other == cpu:
            continue
        body = [line for line in body if line != KEPT_NOTE]
        while body and not body[-1].strip():
            body.pop()
        lines += [*body[:2], "", KEPT_NOTE, *body[2:], ""]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="more data and repeats (tens of minutes)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes, prints the table and writes nothing unless --output is given (checks that it runs)",
    )
    parser.add_argument(
        "--only", default=",".join(MODULES), help="comma-separated subset of " + ", ".join(MODULES)
    )
    parser.add_argument(
        "--output", type=Path, default=None, help=f"where to write the Markdown table (default {RESULTS})"
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help=f"re-render the Markdown from the last run's raw rows ({RAW}) without measuring",
    )
    parser.add_argument("--child", choices=list(MODULES), help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = not args.full
    if args.child:
        _child(args.child, quick, args.json, smoke=args.smoke)
        return
    output = args.output or (None if args.smoke else RESULTS)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        parser.error(f"unknown benchmark {unknown}; choose from {', '.join(MODULES)}")
    if args.render_only:
        raw = json.loads(RAW.read_text(encoding="utf-8"))
        text = render(raw["results"], raw["machine"], raw["gemm"], raw["quick"])
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        machine = common.describe_machine()
        gemm = common.gemm_rates()
        results = [_run_module(name, quick, args.smoke) for name in names]
        machine["load_average_1_5_15min"] = (
            f"{machine['load_average_1_5_15min']} at the start, {common.load_averages()} at the end"
        )
        raw = {"machine": machine, "gemm": gemm, "quick": quick, "results": results}
        if not args.smoke:
            RAW.write_text(json.dumps(raw, indent=1), encoding="utf-8")
        text = render(results, machine, gemm, quick, args.smoke)
    print(text)
    if output is None:
        print("[benchmarks] smoke run: nothing written (give --output to keep the table)")
        return
    previous = output.read_text(encoding="utf-8") if output.is_file() else None
    cpu = str((raw["machine"] if args.render_only else machine).get("cpu", "?"))
    text = merge(text, cpu, previous)
    tmp = output.with_name(f".{output.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, output)
    print(f"[benchmarks] written to {output}")


if __name__ == "__main__":
    main()

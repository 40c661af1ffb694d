"""``serlib export``: a run folder's evidence as a compact, diff-friendly results folder for git.

What is kept and why (the layout is :mod:`serlib.evidence.results_folder`'s):

* every finished run of the protocol (fingerprints as ``collect_runs`` checks them) and of the
  eGeMAPS + SVM reference, with each test utterance's speaker, scoring subset, true and predicted class
  and the four class probabilities rounded to 4 decimals. Every number of the report (Table 1, the
  speaker-level family, the pooled estimate, ``serlib check``) depends on the predicted class only (UAR
  is a function of argmax); the probabilities are kept for rankings and calibration plots, where 1e-4 is
  finer than anything printed. ``predicted`` is stored as the run wrote it, and ``export.json`` counts
  the rows where the argmax of the rounded probabilities differs from it (ties made by rounding; the
  SVM's softmax-of-decision-values columns are for ranking only);
* one ``runs.csv`` row per run: its ``metrics.json`` fields (fingerprint, UAR, epochs, train seconds,
  TensorFlow settings, ...) and the folder's provenance (commit, configuration hash, CPU model, BLAS,
  decisive package versions);
* ``protocol.json``, ``config.yaml`` (the validated configuration the grid ran with) and the
  configuration file as given (``config-file.yaml``), ``provenance.json``.

Not kept: ``hidden.h5`` (t-SNE inputs, megabytes per run) and models; arousal/valence predictions (their
per-run UARs are in ``runs.csv``). The folder is written beside its destination and renamed into place.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from serlib.base import files, provenance
from serlib.base.files import write_csv, write_json
from serlib.evidence import results_folder as rf
from serlib.evidence.svm_tables import baseline_runs
from serlib.evidence.table1 import collect_runs, results_root
from serlib.protocol.labeled import ProtocolError

DECIMALS = 4
RECOMPUTED = ("confusion", "classes", "subset_uar", "subset_n", "accuracy", "n_test")  # from predictions


def _provenance_columns(root: Path, protocol: dict[str, Any]) -> dict[str, Any]:
    """The folder's provenance as columns of every run row (the record of its last sitting)."""
    stamp = protocol.get("provenance") or {}
    columns: dict[str, Any] = {
        "commit": stamp.get("commit") or "",
        "dirty": stamp.get("dirty"),
        "config_sha256": stamp.get("config_sha256") or "",
    }
    try:
        record = provenance.load(root)
    except provenance.ProvenanceError:
        return columns | {"cpu_model": "", "blas": "", "packages": ""}
    items = provenance.environment_items(record)
    return columns | {
        "cpu_model": items.get("CPU", ""),
        "blas": items.get("BLAS", ""),
        "packages": " ".join(f"{k}=={v}" for k, v in sorted(record.get("packages", {}).items())),
    }


def _run_row(stored: dict[str, Any], key: dict[str, Any], folder_facts: dict[str, Any]) -> dict[str, Any]:
    row = dict(key)
    for name, value in stored.items():
        if name in RECOMPUTED or name in key:
            continue
        row[name] = json.dumps(value, separators=(",", ":")) if isinstance(value, dict | list) else value
    return row | folder_facts


def _predictions(folder: Path, key: dict[str, Any], speakers: pd.Series | None, source: str) -> pd.DataFrame:
    frame = pd.read_csv(folder / "predictions.csv", dtype={"utterance_id": str, "speaker": str})
    if "speaker" not in frame.columns:
        if speakers is None:
            raise ProtocolError(
                f"{source}: the predictions name no speaker; give the configuration whose corpora hold them "
                "(--config, needs SERLIB_DATA) or a CSV of utterance_id,speaker (--speakers)"
            )
        frame["speaker"] = frame["utterance_id"].map(speakers)
        if frame["speaker"].isna().any():
            example = frame.loc[frame["speaker"].isna(), "utterance_id"].iloc[0]
            raise ProtocolError(f"{source}: utterance {example!r} has no speaker in the speaker table")
    subset = frame["subset"].fillna("").astype(str) if "subset" in frame.columns else ""
    out = pd.DataFrame({**key, "utterance_id": frame["utterance_id"], "speaker": frame["speaker"]})
    out = out.assign(subset=subset, true=frame["true"], predicted=frame["predicted"])
    for column in rf.PROBABILITIES:
        if column in frame.columns:
            out[column] = frame[column].astype(float).round(DECIMALS)
    return out


def _folders(root: Path) -> Iterator[tuple[dict[str, Any], Path]]:
    protocol, runs = collect_runs(root)
    for frame in (runs, baseline_runs(root, protocol)):
        for row in frame.itertuples():
            key = {
                "setting": row.setting,
                "condition": row.condition,
                "seed": int(row.seed),
                "fold": int(row.fold),
            }
            yield key, Path(row.folder)


def export(
    run_dir: str | Path,
    out: str | Path,
    speakers: pd.DataFrame | None = None,
    config_file: str | Path | None = None,
    probabilities: bool = True,
) -> dict[str, Any]:
    """Export the run folder ``run_dir`` into the results folder ``out`` (replaced atomically); returns
    what ``export.json`` records. ``probabilities=False`` leaves the class probabilities out (every
    score reads ``predicted`` only; about 40 % of the bytes, e.g. for the cross-corpus matrix)."""
    root = results_root(run_dir)
    protocol = json.loads((root / "results" / "protocol.json").read_text(encoding="utf-8"))
    lookup = None
    if speakers is not None:
        lookup = speakers[["utterance_id", "speaker"]].drop_duplicates().set_index("utterance_id")["speaker"]
        if lookup.index.duplicated().any():
            clash = lookup.index[lookup.index.duplicated()][0]
            raise ProtocolError(f"the speaker table names two speakers for utterance {clash!r}")
    facts = _provenance_columns(root, protocol)
    runs, predictions = [], []
    for key, folder in _folders(root):
        stored = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        runs.append(_run_row(stored, key, facts))
        predictions.append(_predictions(folder, key, lookup, str(folder)))
    if not runs:
        raise ProtocolError(f"{root}: no finished runs to export (run `serlib evaluate` first)")
    table = pd.DataFrame(runs).sort_values(list(rf.KEY), kind="stable")
    frame = pd.concat(predictions, ignore_index=True).sort_values(list(rf.PREDICTION_KEY), kind="stable")
    kept = [
        c
        for c in rf.PREDICTION_COLUMNS
        if c in frame.columns and (probabilities or c not in rf.PROBABILITIES)
    ]
    frame = frame.loc[:, kept]
    out = Path(out)
    staging = out.with_name(f".{out.name}.tmp{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    write_csv(frame, staging / rf.PREDICTIONS_FILE, float_format=f"%.{DECIMALS}f", lineterminator="\n")
    write_csv(table, staging / rf.RUNS_FILE, lineterminator="\n")
    shutil.copyfile(root / "results" / "protocol.json", staging / rf.PROTOCOL_FILE)
    _write_configs(protocol, config_file, staging, root)
    if (root / rf.PROVENANCE_FILE).is_file():
        shutil.copyfile(root / rf.PROVENANCE_FILE, staging / rf.PROVENANCE_FILE)
    record = _record(root, frame, table, staging)
    write_json(record, staging / rf.EXPORT_FILE)
    files.replace_folder(staging, out)
    return record


def _write_configs(
    protocol: dict[str, Any], config_file: str | Path | None, staging: Path, root: Path
) -> None:
    if isinstance(protocol.get("config"), dict):
        text = yaml.safe_dump(protocol["config"], sort_keys=False, allow_unicode=True)
        (staging / rf.CONFIG_FILE).write_text(
            "# the validated configuration the grid ran with (results/protocol.json's 'config')\n" + text,
            encoding="utf-8",
        )
    elif config_file is None and (root / "config.yaml").is_file():
        shutil.copyfile(root / "config.yaml", staging / rf.CONFIG_FILE)
    elif config_file is None:
        raise ProtocolError(
            f"{root}: protocol.json holds no configuration; give the file the grid ran with (--config)"
        )
    if config_file is not None:
        shutil.copyfile(config_file, staging / "config-file.yaml")


def _record(root: Path, frame: pd.DataFrame, table: pd.DataFrame, staging: Path) -> dict[str, Any]:
    probabilities = [c for c in rf.PROBABILITIES if c in frame.columns]
    differs = 0
    if probabilities:
        values = frame[probabilities].to_numpy(dtype=np.float64)
        classes = np.asarray([c.removeprefix("p_") for c in probabilities])
        differs = int((classes[values.argmax(axis=1)] != frame["predicted"].to_numpy()).sum())
    return {
        "format": rf.FORMAT,
        "written": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "source": str(root),
        "runs": len(table),
        "predictions": len(frame),
        "conditions": sorted(table["condition"].unique().tolist()),
        "probability_decimals": DECIMALS,
        "argmax_of_rounded_probabilities_differs": differs,
        "sha256": rf.content_hash(staging),
        "bytes": {p.name: p.stat().st_size for p in sorted(staging.iterdir()) if p.is_file()},
    }


def run_folders(path: str | Path) -> list[Path]:
    """``path`` when it is a run folder, else the run folders under it (e.g. the matrix' cells
    ``<normalisation>/<train>-to-<test>/``), sorted."""
    path = Path(path)
    if (path / "results" / "protocol.json").is_file():
        return [path]
    found = sorted(p.parent.parent for p in path.glob("**/results/protocol.json"))
    if not found:
        raise ProtocolError(f"{path} holds no run folder (no results/protocol.json below it)")
    return found


def export_tree(
    path: str | Path,
    out: str | Path,
    speakers: pd.DataFrame | None = None,
    config_file: str | Path | None = None,
    probabilities: bool = True,
) -> list[tuple[Path, dict[str, Any]]]:
    """Export ``path`` (one run folder, or every run folder under it into the same relative place
    under ``out``)."""
    path, out = Path(path), Path(out)
    done = []
    for folder in run_folders(path):
        target = out / folder.relative_to(path) if folder != path else out
        done.append((target, export(folder, target, speakers, config_file, probabilities)))
    return done

"""The report's probes (docs/probes/*.py) read stored runs, never typed-in numbers: on tiny stored run
folders they print the report's rows, and with a run folder missing they fail naming it and the
command that makes it. The commands quoted in docs/results-real-speech.md resolve: every ``serlib``
line parses with serlib's own parser, every ``python docs/probes/...`` names a probe that exists."""

from __future__ import annotations

import importlib
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from stored_runs import write_grid

from serlib.app import cli

ROOT = Path(__file__).resolve().parents[1]
PROBES = ROOT / "docs" / "probes"
REPORT = ROOT / "docs" / "results-real-speech.md"
READERS = ("nemo_five_seeds", "nemo_control_five_seeds", "emodb_cross_twenty_seeds", "u4h_cross_confusion")


@pytest.fixture
def probes(monkeypatch):
    monkeypatch.syspath_prepend(str(PROBES))
    return {
        name: importlib.import_module(name)
        for name in ("nemo_five_seeds", "emodb_cross_twenty_seeds", "u4h_cross_confusion")
    }


@pytest.mark.parametrize("probe", READERS)
def test_a_probe_fails_naming_its_missing_run_folder_and_command(probe, tmp_path) -> None:
    missing = tmp_path / "runs" / "nemo"
    done = subprocess.run(
        [sys.executable, str(PROBES / f"{probe}.py"), str(missing)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert done.returncode != 0
    assert f"{missing}: no stored runs here" in done.stderr
    assert "serlib evaluate --config configs/" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_nemo_probe_reads_five_seeds_per_speaker(probes, tmp_path, capsys) -> None:
    folds = {f: [f"s{f}"] for f in range(1, 10)}
    accuracy = {c: {f"s{f}": 0.3 + 0.05 * f for f in range(1, 10)} for c in ("BL", "U", "C")}
    write_grid(tmp_path, "nemo", folds, accuracy, seeds=(0, 1, 2, 3, 4), files_per_class=3)
    probes["nemo_five_seeds"].compare(tmp_path, "U")
    out = capsys.readouterr().out
    assert "BL seeds 0-4: mean" in out and "(9 pairs)" in out and "(45 pairs)" in out
    # a seed lacking: the error names the seeds and the command
    write_grid(tmp_path / "short", "nemo", folds, accuracy, seeds=(0, 1, 2), files_per_class=3)
    with pytest.raises(Exception, match=r"(?s)seeds \[3, 4\].*--seed 3 --seed 4 --condition BL"):
        probes["nemo_five_seeds"].compare(tmp_path / "short", "U")


def test_the_emodb_cross_probes_read_both_folders(probes, tmp_path, capsys) -> None:
    conditions = (("BL", "none"), ("U4h", "other"))
    accuracy = {"BL": {"r1": 0.3, "r2": 0.3}, "U4h": {"r1": 0.4, "r2": 0.4}}
    for name, seeds in (("emodb", tuple(range(10))), ("replication", tuple(range(10, 20)))):
        write_grid(
            tmp_path / name,
            "emodb",
            {0: ["r1", "r2"]},
            accuracy,
            seeds=seeds,
            conditions=conditions,
            setting="cross",
            files_per_class=4,
        )
    probes["emodb_cross_twenty_seeds"].main(tmp_path / "emodb", tmp_path / "replication")
    out = capsys.readouterr().out
    assert (
        "| seeds 10-19 (replication: confirmatory) | 10 |" in out
        and "| seeds 0-19 (exploratory) | 20 |" in out
    )
    tables = probes["u4h_cross_confusion"].pooled_confusion([tmp_path / "emodb"])
    assert tables["BL"].sum(axis=1).round(6).eq(100).all()
    assert "| angry |" in probes["u4h_cross_confusion"].markdown(tables)


def _quoted_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", REPORT.read_text(encoding="utf-8"), re.S)
    spans = re.findall(
        r"`((?:SERLIB_\w+=\S+ )*(?:serlib|python docs/probes/)[^`]*)`", REPORT.read_text(encoding="utf-8")
    )
    lines = []
    for text in [*blocks, *(" ".join(span.split()) for span in spans)]:
        for line in text.replace("\\\n", " ").splitlines():
            line = line.split("#")[0].strip()
            line = re.sub(r"^for .*?; do | done$|; done$", "", line).strip()
            if line:
                lines.append(line)
    return lines


def test_every_command_quoted_in_the_report_resolves() -> None:
    parser = cli.build_parser()
    checked = 0
    for line in _quoted_commands():
        words = [w for w in shlex.split(line) if not re.match(r"^[A-Z_]+=", w)]
        if not words or words[0] in ("export", "git", "cd"):
            continue
        if words[0] == "serlib":
            arguments = [w.replace("$seed", "0") for w in words[1:]]
            if len(arguments) < 2 or "..." in arguments or any(w.startswith("<") for w in arguments):
                continue  # a command named in prose or abbreviated, not a command to run (test_docs checks names)
            try:
                parser.parse_args(arguments)
            except SystemExit:
                pytest.fail(f"docs/results-real-speech.md quotes `{line}`, which serlib's parser refuses")
            checked += 1
        elif words[0] == "python" and words[1].startswith("docs/probes/"):
            assert (ROOT / words[1]).is_file(), f"the report quotes {words[1]}, which does not exist"
            checked += 1
    assert checked >= 15


def test_the_silence_probe_finds_voiced_frames_and_cuts_to_them(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(PROBES))
    silence = importlib.import_module("cross_corpus_silence")
    import numpy as np

    # one utterance: 2 silent frames (ln power -20), 3 loud (0), 1 silent, then padding
    frames = np.array([-20, -20, 0, 0, 0, -20, 0, 0], dtype=np.float32)
    logmel = np.repeat(frames[None, :, None], 2, axis=2)
    lengths = np.array([6])
    mask = silence.voiced_mask(logmel, lengths, db=30.0)  # 30 dB = 6.9 ln units: -20 is out
    assert mask.tolist() == [[False, False, True, True, True, False, False, False]]
    assert silence.voiced_mask(logmel, lengths, db=90.0)[0, :6].all()  # 90 dB = 20.7 ln units
    cut, new_lengths = silence.cut_to_voiced(logmel, lengths, mask)
    assert new_lengths.tolist() == [3] and (cut[0, :3] == 0).all() and (cut[0, 3:] == 0).all()
    standard = silence.standardise_by(logmel, lengths, mask | (np.arange(8) == 0))
    assert (standard[0, 6:] == 0).all()  # padding stays zero
    assert silence.voiced_statistics(logmel, lengths, (30.0,)).shape == (1, 4)


def test_the_replication_config_is_emodb_with_only_the_four_stated_changes() -> None:
    from serlib.base import config as config_module

    emodb = config_module.load(ROOT / "configs" / "emodb.yaml").model_dump(mode="json")
    replication = config_module.load(ROOT / "configs" / "emodb-replication.yaml").model_dump(mode="json")
    assert replication["protocol"]["seeds"] == list(range(10, 20))
    assert (
        replication["protocol"]["within_corpus"] is None and replication["protocol"]["egemaps_svm"] is False
    )
    assert replication["cache_dir"] == "runs/emodb/cache"  # the U4h AE of runs/emodb
    for key in ("name", "output_dir", "cache_dir", "figures_dir"):
        emodb.pop(key), replication.pop(key)
    for key in ("seeds", "within_corpus", "egemaps_svm", "figure2_condition"):
        emodb["protocol"].pop(key), replication["protocol"].pop(key)
    assert replication == emodb


def test_the_selection_probe_chooses_on_the_development_pair_and_reads_the_others_once(
    monkeypatch, tmp_path, capsys
) -> None:
    """The normalisation best on Emo-DB -> RAVDESS (here `speaker`, 31 > 29 > 23) is chosen even though
    `train` is better on average elsewhere; the other pairs' means and wins are counted, not chosen on."""
    monkeypatch.syspath_prepend(str(PROBES))
    probe = importlib.import_module("cross_corpus_selection")
    cells = {  # (train, test): {normalisation: BL mean UAR}
        ("emodb", "ravdess"): {"train": 29.0, "corpus": 23.0, "speaker": 31.0},
        ("emodb", "nemo"): {"train": 40.0, "corpus": 44.0, "speaker": 50.0},
        ("ravdess", "emodb"): {"train": 26.0, "corpus": 23.0, "speaker": 22.0},
        ("nemo", "emodb"): {"train": 63.0, "corpus": 67.0, "speaker": 61.0},
    }
    rows = [
        {
            "normalisation": n,
            "condition": c,
            "train": tr,
            "test": te,
            "mean": v + (c == "U"),
            "min": v,
            "max": v,
        }
        for (tr, te), by_norm in cells.items()
        for n, v in by_norm.items()
        for c in ("BL", "U")
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "matrix.csv", index=False)
    probe.main(tmp_path, ("emodb", "ravdess"))
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "| BL, UAR (%) | `speaker` (chosen) | `corpus` | `train` |"
    assert out[2] == "| **Emo-DB -> RAVDESS** (development) | 31.0 | 23.0 | 29.0 |"
    assert "| mean of the 3 other pairs | 44.3 | 44.7 | 43.0 |" in out
    assert "| other pairs where `speaker` is higher | – | 1 of 3 | 1 of 3 |" in out
    # a normalisation without its cells, or no matrix at all: the error names the command
    pd.DataFrame(rows[:-2]).to_csv(tmp_path / "matrix.csv", index=False)
    with pytest.raises(probe.MissingMatrix, match="serlib matrix --config configs/cross-corpus.yaml"):
        probe.main(tmp_path, ("emodb", "ravdess"))
    with pytest.raises(probe.MissingMatrix, match="no matrix.csv here"):
        probe.main(tmp_path / "missing", ("emodb", "ravdess"))

"""Damaged input never becomes a plausible number (issue 47): generated damaged inputs of seven classes.

1. training health: a collapsed (non-finite) training stores nothing; configurations with infinite
   floats, repeated or negative seeds, inverted band edges or repeated YAML keys are refused;
2. schemas: every damaged metrics.json, predictions.csv, protocol.json and provenance.json is one
   error line (exit status 2) naming the file and the field, never a traceback;
3. completeness: a missing run is an explicit "incomplete: N of M"; a cut, header-only or wrong-scale
   result is an error, never a number in Table 1 or the pooled family;
4. model folders: models.json stays inside its folder, model.json values are checked;
5. interruption of a feature extraction: no worker traceback on Ctrl-C to the process group, no
   worker outliving a SIGKILLed parent, stale temporary files of dead processes removed;
6. special files: FIFOs, devices, link loops named as what they are, skipped entries listed, names
   that are not UTF-8 read, a header-only WAV is "empty audio";
7. this module: each case is one input; ``test_count_of_inputs`` prints their number.

Each case failed on the code before issue 47 (docs/reliability.md gives the counts).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import psutil
import pytest
import soundfile as sf
from stored_runs import CLASSES, write_grid

from serlib.app import cli
from serlib.base import config as config_module
from serlib.base import provenance
from serlib.data import audio

ROOT = Path(__file__).resolve().parents[1]
FOLDS = {1: ["s1"], 2: ["s2"]}
ACCURACY = {"BL": {"s1": 0.6, "s2": 0.5}, "U": {"s1": 0.7, "s2": 0.6}}
CONDITIONS = (("BL", "none"), ("U", "other"))


# -- helpers ---------------------------------------------------------------------------------------
def _grid(root: Path) -> Path:
    """A finished 2 conditions x 2 seeds x 2 folds run folder whose metrics.json count n_test and
    classes, as ``serlib evaluate`` writes them."""
    table = write_grid(root, "tiny", FOLDS, ACCURACY, seeds=(0, 1), files_per_class=4, conditions=CONDITIONS)
    table.to_csv(root / "speakers.csv", index=False)
    for path in (root / "results").rglob("metrics.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        predictions = pd.read_csv(path.parent / "predictions.csv")
        for emotion in CLASSES:  # one-hot probabilities of the predicted class, as a run writes them
            predictions[f"p_{emotion}"] = (predictions["predicted"] == emotion).astype(float)
        predictions.to_csv(path.parent / "predictions.csv", index=False)
        rows = len(predictions)
        data |= {"n_test": rows, "classes": list(CLASSES), "accuracy": 0.5}
        path.write_text(json.dumps(data), encoding="utf-8")
    return root


def _run(name: str = "within/BL/seed0/fold1") -> str:
    return f"results/{name}"


def _one_line_error(capsys, code: int, *names: str) -> str:
    """Exit status 2, one ``serlib ...: error:`` line naming ``names``, no traceback."""
    captured = capsys.readouterr()
    assert code == 2, captured.out[-500:] + captured.err[-2000:]
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and ": error: " in lines[0], captured.err
    assert "Traceback" not in captured.err
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def _write_yaml(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(f"base: {config_module.preset_path('demo')}\n" + text, encoding="utf-8")
    return path


# -- 1. training health and configurations -----------------------------------------------------------
def _trained(probabilities: np.ndarray, loss: list[float]):
    from serlib.protocol.run_files import TrainedRun  # noqa: PLC0415

    heads = {"emotion": probabilities, "arousal": np.full((len(probabilities), 3), 1 / 3)}
    heads["valence"] = heads["arousal"]
    return TrainedRun(None, heads, np.zeros((len(probabilities), 4)), np.zeros((len(probabilities), 2)),
                      {"loss": loss}, 1.0, None)  # fmt: skip


COLLAPSED = {
    "nan_probabilities": (np.full((3, 4), np.nan), [1.2, 1.1]),
    "nan_loss": (np.full((3, 4), 0.25), [1.2, math.nan]),
    "infinite_loss": (np.full((3, 4), 0.25), [1.2, math.inf]),
    "one_infinite_probability": (np.array([[0.25] * 4, [np.inf, 0, 0, 0], [0.25] * 4]), [1.0]),
}


@pytest.mark.parametrize("case", sorted(COLLAPSED))
def test_a_collapsed_training_stores_nothing(tmp_path, case):
    from serlib.protocol.run_files import write_run  # noqa: PLC0415

    probabilities, loss = COLLAPSED[case]
    test = SimpleNamespace(ids=np.array(["a", "b", "c"]), emotion=np.array([0, 1, 2]))
    folder = tmp_path / "within" / "BL" / "seed0" / "fold1"
    with pytest.raises(ValueError, match="within BL seed 0 fold 1") as error:
        write_run(folder, _trained(probabilities, loss), test, setting="within", condition="BL", seed=0,
                  fold=1, n_train=10)  # fmt: skip
    assert "nothing was stored" in str(error.value)
    assert not (folder / "metrics.json").exists() and not (folder / "predictions.csv").exists()


def test_a_non_finite_epoch_loss_stops_the_acnn_training():
    from serlib.protocol import runs  # noqa: PLC0415

    callback = runs._StopOnNonFinite()
    callback.set_model(SimpleNamespace(stop_training=False))
    callback.on_epoch_end(0, {"loss": 1.3})
    assert callback.model.stop_training is False
    callback.on_epoch_end(1, {"loss": math.nan})
    assert callback.model.stop_training is True


def test_ae_training_stops_on_a_non_finite_loss_and_keeps_no_checkpoint(tmp_path):
    """A guard the autoencoder already had before issue 47 (the one case here that passed then)."""
    from serlib.models.autoencoder import training  # noqa: PLC0415

    checkpoint = training._Checkpoint(tmp_path, {"loss": [], "checkpoint": None}, seed=0)
    with pytest.raises(ValueError, match=f"loss became nan in epoch 2 \\({tmp_path}\\)"):
        checkpoint.on_epoch_end(1, {"loss": math.nan})
    assert not list(tmp_path.iterdir())


BAD_CONFIGS = {
    "acnn_learning_rate_inf": ("acnn:\n  learning_rate: .inf\n", "acnn.learning_rate"),
    "acnn_learning_rate_minus_inf": ("acnn:\n  learning_rate: -.inf\n", "acnn.learning_rate"),
    "ae_learning_rate_inf": ("autoencoder:\n  learning_rate: .inf\n", "autoencoder.learning_rate"),
    "shift_inf": ("features:\n  logmel:\n    shift_s: .inf\n", "features.logmel.shift_s"),
    "perplexity_inf": ("tsne:\n  perplexity: .inf\n", "tsne.perplexity"),
    "clip_nan": ("features:\n  spectrogram:\n    clip_below_db: .nan\n", "clip_below_db"),
    "repeated_seed": ("protocol:\n  seeds: [0, 0]\n", "seeds"),
    "negative_seed": ("protocol:\n  seeds: [-1]\n", "protocol.seeds"),
    "repeated_fold": ("protocol:\n  folds: [1, 1]\n", "folds"),
    "low_above_high": ("features:\n  logmel:\n    low_hz: 7000\n    high_hz: 6500\n", "low_hz"),
    "low_equals_high": ("features:\n  logmel:\n    low_hz: 4000\n    high_hz: 4000\n", "high_hz"),
    "high_above_nyquist": ("features:\n  logmel:\n    high_hz: 9000\n", "sample_rate / 2"),
    "duplicate_section": ("acnn:\n  epochs: 3\nseed: 1\nacnn:\n  batch_size: 8\n", "'acnn' is given twice"),
    "duplicate_key": ("acnn:\n  epochs: 3\n  epochs: 4\n", "'epochs' is given twice"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_a_contradictory_configuration_is_refused_before_any_work(tmp_path, case):
    text, key = BAD_CONFIGS[case]
    path = _write_yaml(tmp_path, text)
    with pytest.raises(config_module.ConfigError) as error:
        config_module.load(path)
    assert key in str(error.value) and str(path) in str(error.value)


def test_a_sensitivity_file_with_a_repeated_key_is_refused(tmp_path):
    from serlib.evidence import sensitivity  # noqa: PLC0415

    path = tmp_path / "s.yaml"
    path.write_text(
        f"base: {config_module.preset_path('demo')}\nvariants:\n  a: {{}}\nvariants:\n  b: {{}}\n"
    )
    with pytest.raises(config_module.ConfigError, match="'variants' is given twice"):
        sensitivity.load_plan(path)


# -- 2. schemas: damaged run files ------------------------------------------------------------------
def _metrics(root: Path, run: str = _run()) -> Path:
    return root / run / "metrics.json"


def _set(path: Path, **changes) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(data | changes), encoding="utf-8")


def _predictions(root: Path, run: str = _run()) -> Path:
    return root / run / "predictions.csv"


def _cut_lines(path: Path, keep: int) -> None:
    path.write_text(
        "".join(path.read_text(encoding="utf-8").splitlines(keepends=True)[:keep]), encoding="utf-8"
    )


def _edit(path: Path, column: str, row: int, value) -> None:
    frame = pd.read_csv(path, dtype=str)
    frame.loc[row, column] = str(value)
    frame.to_csv(path, index=False)


DAMAGED_RUN_FILES = {
    # metrics.json
    "metrics_a_list": (lambda r: _metrics(r).write_text("[1, 2]"), "metrics.json", "top level"),
    "metrics_uar_text": (lambda r: _set(_metrics(r), uar="0.4"), "metrics.json", "uar"),
    "metrics_uar_percent": (lambda r: _set(_metrics(r), uar=40.0), "metrics.json", "uar"),
    "metrics_uar_nan": (lambda r: _set(_metrics(r), uar=math.nan), "metrics.json", "uar"),
    "metrics_uar_null": (lambda r: _set(_metrics(r), uar=None), "metrics.json", "uar"),
    "metrics_truncated": (
        lambda r: _metrics(r).write_text('{"setting": "within",\n  '),
        "metrics.json",
        "not valid JSON",
    ),
    "metrics_not_utf8": (lambda r: _metrics(r).write_bytes(b"\xff\xfe{}"), "metrics.json", "file"),
    "metrics_negative_n_test": (lambda r: _set(_metrics(r), n_test=-3), "metrics.json", "n_test"),
    "metrics_of_another_seed": (lambda r: _set(_metrics(r), seed=1), "metrics.json", "seed"),
    "metrics_repeated_classes": (
        lambda r: _set(_metrics(r), classes=["angry", "angry"]),
        "metrics.json",
        "classes",
    ),
    # predictions.csv
    "predictions_without_predicted": (
        lambda r: pd.read_csv(_predictions(r)).drop(columns="predicted").to_csv(_predictions(r), index=False),
        "predictions.csv",
        "'predicted'",
    ),  # fmt: skip
    "predictions_without_true": (
        lambda r: pd.read_csv(_predictions(r)).drop(columns="true").to_csv(_predictions(r), index=False),
        "predictions.csv",
        "'true'",
    ),  # fmt: skip
    "predictions_short_row": (
        lambda r: _predictions(r).write_text(_predictions(r).read_text() + "x,1,0,BL,angry\n"),
        "predictions.csv",
        "predicted",
    ),  # fmt: skip
    "predictions_cut_short": (lambda r: _cut_lines(_predictions(r), 5), "predictions.csv", "n_test"),
    "predictions_header_only": (lambda r: _cut_lines(_predictions(r), 1), "predictions.csv", "header"),
    "predictions_empty": (lambda r: _predictions(r).write_text(""), "predictions.csv", "empty"),
    "predictions_unknown_label": (
        lambda r: _edit(_predictions(r), "predicted", 0, "ANGRY"),
        "predictions.csv",
        "classes",
    ),
    "predictions_probability_text": (
        lambda r: _edit(_predictions(r), "p_sad", 1, "x"),
        "predictions.csv",
        "p_sad",
    ),
    "predictions_probability_above_1": (
        lambda r: _edit(_predictions(r), "p_sad", 2, 3.0),
        "predictions.csv",
        "p_sad",
    ),
    "predictions_binary": (
        lambda r: _predictions(r).write_bytes(bytes(range(256)) * 4),
        "predictions.csv",
        "file",
    ),
    # protocol.json
    "protocol_without_conditions": (
        lambda r: _set(r / "results" / "protocol.json", conditions=None),
        "protocol.json",
        "conditions",
    ),  # fmt: skip
    "protocol_repeated_seeds": (
        lambda r: _set(r / "results" / "protocol.json", seeds=[0, 0]),
        "protocol.json",
        "seeds",
    ),  # fmt: skip
    "protocol_seed_text": (
        lambda r: _set(r / "results" / "protocol.json", seeds=["0"]),
        "protocol.json",
        "seeds",
    ),  # fmt: skip
    "protocol_no_folds": (
        lambda r: _set(r / "results" / "protocol.json", settings={"within": {"folds": []}}),
        "protocol.json",
        "folds",
    ),  # fmt: skip
    "protocol_settings_list": (
        lambda r: _set(r / "results" / "protocol.json", settings=["within"]),
        "protocol.json",
        "settings",
    ),  # fmt: skip
    "protocol_truncated": (
        lambda r: (r / "results" / "protocol.json").write_text('{"name": "tiny", "conditions": ['),
        "protocol.json",
        "not valid JSON",
    ),  # fmt: skip
}


@pytest.fixture(scope="module")
def clean_grid(tmp_path_factory) -> Path:
    return _grid(tmp_path_factory.mktemp("grid") / "run")


def _copy(clean: Path, target: Path) -> Path:
    import shutil  # noqa: PLC0415

    shutil.copytree(clean, target)
    return target


@pytest.mark.parametrize("case", sorted(DAMAGED_RUN_FILES))
def test_table_names_the_damaged_file_and_field(tmp_path, capsys, clean_grid, case):
    damage, file_name, field = DAMAGED_RUN_FILES[case]
    root = _copy(clean_grid, tmp_path / "run")
    damage(root)
    _one_line_error(capsys, cli.main(["table", str(root)]), file_name, field)


@pytest.mark.parametrize("case", ["predictions_without_predicted", "predictions_cut_short", "metrics_uar_text",
                                  "metrics_a_list", "protocol_without_conditions"])  # fmt: skip
def test_pool_names_the_damaged_file(tmp_path, capsys, clean_grid, case):
    damage, file_name, field = DAMAGED_RUN_FILES[case]
    root = _copy(clean_grid, tmp_path / "run")
    damage(root)
    code = cli.main(
        ["pool", str(root), "--speakers", str(root / "speakers.csv"), "--out", str(tmp_path / "p")]
    )
    _one_line_error(capsys, code, file_name, field)


@pytest.mark.parametrize(
    "case", ["predictions_short_row", "predictions_without_predicted", "metrics_uar_percent"]
)
def test_check_reads_run_files_through_the_schemas(tmp_path, clean_grid, case):
    from serlib.evidence import check  # noqa: PLC0415

    damage, file_name, field = DAMAGED_RUN_FILES[case]
    root = _copy(clean_grid, tmp_path / "run")
    damage(root)
    with pytest.raises(ValueError) as error:
        check.run_scores(root)
    assert file_name in str(error.value) and field in str(error.value)


def _report_damage(out: Path, case: str) -> None:
    protocol = out / "results" / "protocol.json"
    if case == "protocol_truncated":
        protocol.write_text(protocol.read_text(encoding="utf-8")[:30], encoding="utf-8")
    elif case == "protocol_settings_list":
        _set(protocol, settings=["within"])
    elif case == "provenance_list":
        (out / "provenance.json").write_text("[1]", encoding="utf-8")
    else:
        frame = pd.read_csv(out / "table1.csv")
        if case == "table1_without_autoencoder_corpus":
            frame = frame.drop(columns="autoencoder_corpus")
        else:
            frame["within_mean"] = frame["within_mean"].astype(object)
            frame.loc[0, "within_mean"] = "abc" if case == "table1_mean_text" else 4000.0
        frame.to_csv(out / "table1.csv", index=False)


REPORT_DAMAGE = {
    "protocol_truncated": ("protocol.json", "not valid JSON"),
    "protocol_settings_list": ("protocol.json", "settings"),
    "provenance_list": ("provenance.json", "JSON object"),
    "table1_without_autoencoder_corpus": ("table1.csv", "autoencoder_corpus"),
    "table1_mean_text": ("table1.csv", "within_mean"),
    "table1_mean_not_a_percentage": ("table1.csv", "within_mean"),
}


@pytest.mark.parametrize("case", sorted(REPORT_DAMAGE))
def test_report_names_the_damaged_file(tmp_path, capsys, case):
    from sample_run import write_sample_run  # noqa: PLC0415

    out = write_sample_run(tmp_path / "run")
    _report_damage(out, case)
    _one_line_error(capsys, cli.main(["report", str(out)]), *REPORT_DAMAGE[case])


DAMAGED_PROVENANCE = {
    "serlib_a_list": {"freeze": {"packages": {}}, "serlib": []},
    "packages_a_list": {"freeze": {"packages": ["numpy"]}},
    "commit_a_number": {"freeze": {"packages": {}}, "serlib": {"commit": 12}},
}


@pytest.mark.parametrize("case", sorted(DAMAGED_PROVENANCE))
def test_provenance_names_the_damaged_field(tmp_path, capsys, case):
    path = tmp_path / "provenance.json"
    path.write_text(json.dumps(DAMAGED_PROVENANCE[case]), encoding="utf-8")
    with pytest.raises(provenance.ProvenanceError, match="provenance.json: (serlib|freeze)"):
        provenance.load(tmp_path)
    _one_line_error(capsys, cli.main(["provenance", str(tmp_path)]), "provenance.json")


# -- 3. completeness ------------------------------------------------------------------------------------
def test_table_says_incomplete_when_a_run_is_missing(tmp_path, capsys, clean_grid):
    root = _copy(clean_grid, tmp_path / "run")
    _metrics(root, _run("within/U/seed1/fold2")).unlink()
    assert cli.main(["table", str(root)]) == 0
    assert "incomplete: 7 of 8 runs finished (missing: within U seed 1 fold 2)" in capsys.readouterr().out


def test_table_says_incomplete_when_a_seed_is_missing(tmp_path, capsys, clean_grid):
    root = _copy(clean_grid, tmp_path / "run")
    for fold in (1, 2):
        for condition in ("BL", "U"):
            _metrics(root, _run(f"within/{condition}/seed1/fold{fold}")).unlink()
    assert cli.main(["table", str(root)]) == 0
    assert "incomplete: 4 of 8 runs finished" in capsys.readouterr().out


def test_a_complete_table_has_no_incomplete_note(tmp_path, capsys, clean_grid):
    root = _copy(clean_grid, tmp_path / "run")
    assert cli.main(["table", str(root)]) == 0
    assert "incomplete" not in capsys.readouterr().out


def test_pool_says_incomplete_when_a_run_is_missing(tmp_path, capsys, clean_grid):
    root = _copy(clean_grid, tmp_path / "run")
    _metrics(root, _run("within/BL/seed0/fold2")).unlink()
    code = cli.main(
        ["pool", str(root), "--speakers", str(root / "speakers.csv"), "--out", str(tmp_path / "p")]
    )
    assert code == 0
    assert "incomplete: 7 of 8 runs finished" in capsys.readouterr().out
    assert "incomplete: 7 of 8" in (tmp_path / "p" / "pool.md").read_text(encoding="utf-8")


def test_pool_refuses_a_header_only_fold(tmp_path, capsys, clean_grid):
    root = _copy(clean_grid, tmp_path / "run")
    _cut_lines(_predictions(root, _run("within/U/seed0/fold2")), 1)
    code = cli.main(
        ["pool", str(root), "--speakers", str(root / "speakers.csv"), "--out", str(tmp_path / "p")]
    )
    _one_line_error(capsys, code, "predictions.csv", "header")


# -- 4. model folders ---------------------------------------------------------------------------------------
def _model_json() -> dict:
    return {
        "format": "serlib-acnn-1",
        "classes": {
            "emotion": ["angry", "happy", "neutral", "sad"],
            "arousal": ["low", "mid", "high"],
            "valence": ["low", "mid", "high"],
        },  # fmt: skip
        "inputs": {"logmel": [750, 26]},
        "audio": {"sample_rate": 16000},
        "logmel": {
            "bands": 26,
            "max_frames": 750,
            "frame_s": 0.025,
            "shift_s": 0.01,
            "low_hz": 0.0,
            "high_hz": 6500.0,
        },  # fmt: skip
    }


BAD_MODEL_JSON = {
    "shift_zero": (("logmel", "shift_s"), 0, "logmel.shift_s"),
    "shift_negative": (("logmel", "shift_s"), -0.01, "logmel.shift_s"),
    "frame_zero": (("logmel", "frame_s"), 0, "logmel.frame_s"),
    "sample_rate_negative": (("audio", "sample_rate"), -16000, "audio.sample_rate"),
    "bands_text": (("logmel", "bands"), "many", "logmel.bands"),
    "bands_fraction": (("logmel", "bands"), 26.5, "logmel.bands"),
    "repeated_classes": (("classes", "emotion"), ["angry", "angry", "sad", "sad"], "classes.emotion"),
    "no_classes": (("classes", "emotion"), [], "classes.emotion"),
    "shift_infinite": (("logmel", "shift_s"), math.inf, "logmel.shift_s"),
}


@pytest.mark.parametrize("case", sorted(BAD_MODEL_JSON))
def test_model_json_values_are_checked(tmp_path, case):
    from serlib.app import predict  # noqa: PLC0415

    (section, key), value, field = BAD_MODEL_JSON[case]
    data = _model_json()
    data[section][key] = value
    (tmp_path / "model.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(predict.PredictError) as error:
        predict.load_predictor(tmp_path)
    assert "model.json" in str(error.value) and field in str(error.value), str(error.value)


def test_a_valid_model_json_passes_to_the_model_file(tmp_path):
    from serlib.app import predict  # noqa: PLC0415

    (tmp_path / "model.json").write_text(json.dumps(_model_json()), encoding="utf-8")
    with pytest.raises(predict.PredictError, match="model.keras does not exist"):
        predict.load_predictor(tmp_path)


OUTSIDE_DEFAULTS = {
    "parent": "../outside_model",
    "absolute": "/{outside}",
    "itself": ".",
    "nested_up": "a/../../x",
}


@pytest.mark.parametrize("case", sorted(OUTSIDE_DEFAULTS))
def test_models_json_cannot_point_outside_its_folder(tmp_path, case):
    from serlib.app import predict  # noqa: PLC0415

    outside = tmp_path / "outside_model"
    outside.mkdir()
    (outside / "model.json").write_text(json.dumps(_model_json()), encoding="utf-8")
    models = tmp_path / "models"
    (models / "a").mkdir(parents=True)
    default = OUTSIDE_DEFAULTS[case].format(outside=str(outside).lstrip("/"))
    (models / "models.json").write_text(json.dumps({"format": "serlib-models-1", "default": default}))
    with pytest.raises(predict.PredictError, match="models.json: default") as error:
        predict.resolve_model_dir(models)
    assert "inside" in str(error.value)


def test_models_json_inside_its_folder_is_followed(tmp_path):
    from serlib.app import predict  # noqa: PLC0415

    models = tmp_path / "models"
    (models / "BL").mkdir(parents=True)
    (models / "BL" / "model.json").write_text(json.dumps(_model_json()), encoding="utf-8")
    (models / "models.json").write_text(json.dumps({"format": "serlib-models-1", "default": "BL"}))
    assert predict.resolve_model_dir(models) == models.resolve() / "BL"


# -- 5. interruption of a feature extraction -------------------------------------------------------------
_POOL_CHILD = """
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # as a terminal starts it
import psutil
from serlib.features import extraction
def slow(extractor, parameters, rows):
    time.sleep(0.02)
    return [{"utterance_id": r["utterance_id"], "path": r["path"], "error": None} for r in rows]
extraction.extract_task = slow
extraction.TASK_SIZE = 1
rows = [{"utterance_id": str(i), "path": "x", "start_s": None, "end_s": None} for i in range(2000)]
try:
    for index, _ in enumerate(extraction.run_tasks("logmel", {}, rows, n_jobs=2, progress=False)):
        if index == 2:
            children = psutil.Process().children(recursive=True)
            print("WORKERS", " ".join(str(c.pid) for c in children), flush=True)
        time.sleep(0.2)  # a slow consumer: the workers wait idle for tasks, as between a store's writes
except KeyboardInterrupt:
    print("interrupted; re-run the same command to resume", file=sys.stderr)
    sys.exit(130)
"""


def _pool_child() -> tuple[subprocess.Popen, list[int]]:
    child = subprocess.Popen(
        [sys.executable, "-c", _POOL_CHILD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's job
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("WORKERS"):
            return child, [int(pid) for pid in line.split()[1:]]
    raise AssertionError(child.stderr.read() if child.stderr else "no workers")


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting to be reaped."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _gone(pids: list[int], within_s: float) -> list[int]:
    """The pids still running after waiting up to ``within_s`` (a bound, not a measurement)."""
    deadline = time.monotonic() + within_s
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [pid for pid in alive if _alive(pid)]
    return alive


def test_ctrl_c_to_the_process_group_prints_no_worker_traceback():
    child, workers = _pool_child()
    assert workers
    os.killpg(child.pid, signal.SIGINT)
    code = child.wait(timeout=60)
    stderr = child.stderr.read() if child.stderr else ""
    assert code == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert stderr.strip() == "interrupted; re-run the same command to resume"
    assert not _gone(workers, 30)


def test_workers_do_not_outlive_a_killed_parent():
    child, workers = _pool_child()
    assert workers
    child.kill()
    child.wait(timeout=60)
    try:
        assert not _gone(workers, 30), "workers still running 30 s after their parent was killed"
    finally:
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _dead_pid() -> int:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def test_stale_temporary_files_of_dead_processes_are_removed_at_the_next_extraction(tmp_path):
    from serlib.features import store  # noqa: PLC0415

    wav = tmp_path / "a.wav"
    sf.write(wav, 0.1 * np.sin(np.arange(8000) / 5.0), 16000)
    manifest = pd.DataFrame({"utterance_id": ["a"], "path": [str(wav)], "start_s": [None], "end_s": [None]})
    features = tmp_path / "cache" / "features"
    features.mkdir(parents=True)
    stale = features / f".emo_logmel_0123.h5.tmp{_dead_pid()}"
    living = features / f".emo_logmel_4567.h5.tmp{os.getppid()}"
    stale.write_bytes(b"partial")
    living.write_bytes(b"being written")
    parameters = store.extractor_parameters("logmel", 16000, config_module.FeaturesConfig())
    store.extract(manifest, "logmel", parameters, tmp_path / "cache", "emo", n_jobs=1, progress=False)
    assert not stale.exists() and living.exists()


# -- 6. special files and names ----------------------------------------------------------------------------
def _special(tmp_path: Path, kind: str) -> Path:
    path = _special_name(tmp_path, kind)  # a name that does not say what it is
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "loop":
        path.symlink_to(path)
    elif kind == "dangling":
        path.symlink_to(tmp_path / "nothing.wav")
    elif kind == "device":
        path.symlink_to("/dev/null")
    return path


def _special_name(tmp_path: Path, kind: str) -> Path:
    return tmp_path / f"entry{sorted(SPECIAL).index(kind)}.wav"


SPECIAL = {"fifo": "FIFO", "loop": "symbolic link loop", "dangling": "missing target", "device": "device"}


@pytest.mark.parametrize("kind", sorted(SPECIAL))
def test_a_special_file_is_named_as_what_it_is(tmp_path, kind):
    path = _special(tmp_path, kind)
    with pytest.raises(audio.AudioError, match=SPECIAL[kind]) as error:
        audio.load(path)
    assert str(path) in str(error.value)


def test_skipped_entries_of_a_folder_are_listed(tmp_path):
    from serlib.app import predict  # noqa: PLC0415

    sf.write(tmp_path / "good.wav", np.zeros(8000), 16000)
    for kind in SPECIAL:
        _special(tmp_path, kind)
    found = dict(predict.audio_files([tmp_path]))
    assert found.pop(tmp_path / "good.wav") is None
    assert len(found) == len(SPECIAL)
    for kind, what in SPECIAL.items():
        message = found[_special_name(tmp_path, kind)]
        assert "skipped" in message and what in message, message


def test_a_name_that_is_not_utf8_is_read(tmp_path):
    name = os.fsencode(tmp_path) + b"/voice_\xff\xfe.wav"
    sf.write(tmp_path / "plain.wav", 0.1 * np.sin(np.arange(8000) / 5.0), 16000)
    os.rename(tmp_path / "plain.wav", name)
    signal_, rate = audio.load(os.fsdecode(name))
    assert rate == 16000 and signal_.shape == (8000,)
    assert audio.duration(os.fsdecode(name)) == pytest.approx(0.5)


def test_a_header_only_wav_is_empty_audio(tmp_path):
    path = tmp_path / "header.wav"
    sf.write(path, np.zeros(0), 16000, subtype="PCM_16")
    assert path.stat().st_size == 44
    for read in (audio.load, audio.duration):
        with pytest.raises(audio.AudioError, match="empty audio"):
            read(path)


# -- 7. the count ------------------------------------------------------------------------------------------
CLASSES_OF_TESTS = {
    "1 training health and configurations": (
        "collapsed",
        "non_finite_epoch",
        "ae_training",
        "contradictory",
        "sensitivity",
    ),
    "2 schemas": ("names_the_damaged", "through_the_schemas", "provenance_names"),
    "3 completeness": ("incomplete", "header_only_fold"),
    "4 model folders": ("model_json", "models_json"),
    "5 interruption": ("ctrl_c", "outlive", "stale_temporary"),
    "6 special files": ("special_file", "skipped_entries", "not_utf8", "header_only_wav"),
}


def _inputs_of(function) -> int:
    """A test's number of inputs: its parametrized cases, else one."""
    marks = [m for m in getattr(function, "pytestmark", []) if m.name == "parametrize"]
    return len(marks[0].args[1]) if marks else 1


def test_count_of_inputs(capsys):
    tests = {
        name: f
        for name, f in globals().items()
        if name.startswith("test_") and name != "test_count_of_inputs"
    }
    counts = {
        group: sum(_inputs_of(f) for name, f in tests.items() if any(word in name for word in words))
        for group, words in CLASSES_OF_TESTS.items()
    }
    with capsys.disabled():
        print(
            f"\ndamaged inputs tried: {sum(counts.values())} ({'; '.join(f'{k}: {v}' for k, v in counts.items())})"
        )
    assert sum(counts.values()) == sum(_inputs_of(f) for f in tests.values())  # every test in one class
    assert all(counts.values()), counts

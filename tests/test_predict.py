"""``serlib predict``: exported models, per-file probabilities, any length, bad files, mismatches.

One tiny protocol (tests/tiny_pipeline.py: BL and an AE condition, cross-corpus) is trained once for
the module and exported; predictions of files that fit one window must equal the probabilities the
protocol itself stored for the same utterances (same features, same model).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny_pipeline import reference_run

from serlib.app import cli, model_folder, predict
from serlib.data.manifest import EMOTIONS, LEVELS

slow = pytest.mark.slow  # the module fixture trains the tiny protocol (about 20 s on 2 idle cores)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    config, _ = reference_run(tmp_path_factory.getbasetemp() / "tiny_shared")
    models = predict.export_models(config)
    return config, models


@pytest.fixture(scope="module")
def demo_wavs(run) -> list[Path]:
    config, _ = run
    return sorted((Path(config.output_dir) / "data" / "cross").rglob("*.wav"))


def _check_result(result: dict, classes=EMOTIONS) -> None:
    assert result["error"] is None, result["error"]
    assert result["emotion"] in classes and result["arousal"] in LEVELS and result["valence"] in LEVELS
    for key, names in (
        ("probabilities", classes),
        ("arousal_probabilities", LEVELS),
        ("valence_probabilities", LEVELS),
    ):
        values = result[key]
        assert list(values) == list(names)
        assert sum(values.values()) == pytest.approx(1.0, abs=1e-5)
        assert all(0.0 <= v <= 1.0 for v in values.values())
    assert result["emotion"] == max(result["probabilities"], key=result["probabilities"].get)
    assert result["windows"] >= 1 and result["duration_s"] > 0


@slow
def test_export_writes_model_folders(run):
    config, models = run
    index = json.loads((models / predict.INDEX_FILE).read_text())
    assert index["default"] == "sT" and set(index["models"]) == {"BL", "sT"}
    assert (models / "BL" / predict.MODEL_FILE).is_file() and not (
        models / "BL" / predict.AUTOENCODER_FILE
    ).exists()
    metadata = json.loads((models / "sT" / predict.METADATA_FILE).read_text())
    assert metadata["autoencoder"]["model"] == predict.AUTOENCODER_FILE
    assert metadata["autoencoder"]["sha256"] == model_folder.sha256(models / "sT" / predict.AUTOENCODER_FILE)
    assert predict.resolve_model_dir(models) == models / "sT"
    assert predict.resolve_model_dir(config.output_dir) == models / "sT"
    assert predict.resolve_model_dir(models / "BL") == models / "BL"


@slow
@pytest.mark.parametrize("condition", ["BL", "sT"])
@slow
def test_predictions_equal_the_protocol_s_own(run, demo_wavs, condition):
    """Files within one window: the probabilities the protocol stored for the same utterances."""
    config, models = run
    results = predict.predict_paths(models / condition, [demo_wavs[0].parents[2]], progress=False)
    assert [Path(r["file"]) for r in results] == demo_wavs  # the folder was searched recursively
    stored = pd.read_csv(
        Path(config.output_dir) / "results" / "cross" / condition / "seed0" / "fold0" / "predictions.csv"
    )
    stored = stored.set_index("utterance_id")
    compared = 0
    for result in results:
        _check_result(result)
        if result["windows"] == 1:
            row = stored.loc[Path(result["file"]).stem]
            expected = [row[f"p_{name}"] for name in EMOTIONS]
            assert list(result["probabilities"].values()) == pytest.approx(expected, abs=2e-5)
            assert (
                result["arousal"] == row["arousal_predicted"]
                and result["valence"] == row["valence_predicted"]
            )
            compared += 1
    assert compared >= len(results) // 2


@slow
def test_long_file_is_windowed_and_averaged(run, demo_wavs, tmp_path):
    _, models = run
    pieces = [sf.read(path)[0] for path in demo_wavs[:6]]
    rate = sf.info(demo_wavs[0]).samplerate
    long_path = tmp_path / "long.flac"
    sf.write(long_path, np.concatenate(pieces), rate)
    predictor = predict.load_predictor(models)
    (result,) = predict.predict_paths(models, [long_path], progress=False, predictor=predictor)
    _check_result(result)
    duration = sf.info(long_path).duration
    assert result["windows"] == len(predict.windows(duration, predictor.window_s)) > 2


@settings(max_examples=60, deadline=None)
@given(duration=st.floats(0.03, 600.0), window=st.sampled_from([1.2, 3.0, 7.5]))
def test_windows_cover_the_file(duration, window):
    segments = predict.windows(duration, window)
    if duration <= window + predict.WINDOW_MARGIN_S:
        assert segments == [(None, None)]
        return
    length = window + predict.WINDOW_MARGIN_S
    assert segments[0][0] == 0.0 and segments[-1][1] == pytest.approx(duration, abs=1e-5)
    for (start, end), (following, _) in zip(segments, segments[1:] + [(None, None)], strict=True):
        assert end - start == pytest.approx(length, abs=1e-5)
        if following is not None:
            assert 0 < following - start <= window / 2 + 1e-6  # 50 % overlap or more
    assert len(segments) <= duration / (window / 2) + 2


@slow
def test_bad_files_are_reported_without_stopping(run, demo_wavs, tmp_path):
    _, models = run
    folder = tmp_path / "batch"
    folder.mkdir()
    shutil.copy(demo_wavs[0], folder / "a_good.wav")
    (folder / "b_corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)
    sf.write(folder / "c_silence.wav", np.zeros(16000), 16000)
    sf.write(folder / "d_short.wav", np.zeros(10), 16000)
    shutil.copy(demo_wavs[1], folder / "e_good.WAV")
    (folder / "notes.txt").write_text("not audio, not an audio suffix")
    results = predict.predict_paths(models, [folder, tmp_path / "absent.wav"], progress=False)
    by_name = {Path(r["file"]).name: r for r in results}
    assert list(by_name) == [
        "a_good.wav",
        "b_corrupt.wav",
        "c_silence.wav",
        "d_short.wav",
        "e_good.WAV",
        "absent.wav",
    ]
    _check_result(by_name["a_good.wav"])
    _check_result(by_name["e_good.WAV"])
    for name in ("b_corrupt.wav", "d_short.wav", "absent.wav"):
        assert name in by_name[name]["error"] and by_name[name]["emotion"] is None
    # digital silence: the auDeep spectrogram has no dB reference, so the AE model refuses it
    assert "silent" in by_name["c_silence.wav"]["error"]
    silence_bl = predict.predict_paths(models / "BL", [folder / "c_silence.wav"], progress=False)[0]
    _check_result(silence_bl)  # the log-Mel of silence is finite (the log floor): BL can classify it


@slow
def test_cli_json_and_table(run, demo_wavs, tmp_path, capsys):
    _, models = run
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"\x00" * 100)
    assert cli.main(["predict", "--model", str(models), "--json", str(demo_wavs[0]), str(corrupt)]) == 1
    output = json.loads(capsys.readouterr().out)
    assert [Path(r["file"]).name for r in output] == [demo_wavs[0].name, "corrupt.wav"]
    _check_result(output[0])
    assert "corrupt.wav" in output[1]["error"]
    window = run[0].features.logmel.max_frames * run[0].features.logmel.shift_s
    assert output[0]["window_s"] == output[1]["window_s"] == pytest.approx(window)
    assert cli.main(["predict", "--model", str(models / "BL"), str(demo_wavs[0])]) == 0
    table = capsys.readouterr().out
    assert demo_wavs[0].name in table and "1 files predicted, 0 failed" in table
    assert f"window {window:.2f} s" in table
    assert all(name in table.splitlines()[0] for name in EMOTIONS)


@slow
def test_cli_in_a_fresh_process_prints_only_the_table(run, demo_wavs, tmp_path):
    """A fresh terminal's ``serlib predict``: the result table and the per-file errors, nothing else on
    either stream (no TensorFlow C++ start-up lines, no INFO log lines, no progress left behind)."""
    _, models = run
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"\x00" * 100)
    environment = {
        k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "SERLIB_LOG_LEVEL")
    }
    done = subprocess.run(
        [sys.executable, "-m", "serlib", "predict", "--model", str(models), str(demo_wavs[0]), str(corrupt)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    assert done.returncode == 1  # one file failed, named in the table
    assert done.stderr == "", done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("file") and all(name in lines[0] for name in EMOTIONS)
    assert demo_wavs[0].name in lines[1] and "corrupt.wav" in lines[2] and "ERROR" in lines[2]
    assert lines[3] == "1 files predicted, 1 failed" and lines[4].startswith("window ")
    assert len(lines) == 5, lines


def _copy_model(models: Path, condition: str, target: Path) -> Path:
    shutil.copytree(models / condition, target)
    return target


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@slow
@pytest.mark.parametrize(
    ("case", "change", "expected"),
    [
        (
            "logmel-bands",
            lambda d: (d["logmel"].update(bands=40), d["inputs"].update(logmel=[300, 40])),
            "log-Mel",
        ),
        (
            "max-frames",
            lambda d: (d["logmel"].update(max_frames=750), d["inputs"].update(logmel=[750, 26])),
            "log-Mel",
        ),
        ("inconsistent-json", lambda d: d["logmel"].update(bands=40), "inputs.logmel"),
        ("mel-bands", lambda d: d["autoencoder"]["spectrogram"].update(mel_bands=128), "mel bands"),
        (
            "fixed-length",
            lambda d: d["autoencoder"]["spectrogram"].update(fixed_length_s=2.0),
            "spectrograms",
        ),
        ("classes", lambda d: d["classes"].update(emotion=["angry", "happy", "sad"]), "emotion"),
        ("no-autoencoder", lambda d: d.update(autoencoder=None), "representation"),
        ("format", lambda d: d.update(format="other-1"), "format"),
        ("descriptor-input", lambda d: d.update(acnn_input="egemaps_lld"), "log-Mel models only"),
    ],
)
@slow
def test_model_feature_mismatch_is_refused(run, demo_wavs, tmp_path, case, change, expected):
    _, models = run
    folder = _copy_model(models, "sT", tmp_path / case)
    _edit(folder / predict.METADATA_FILE, change)
    with pytest.raises(predict.PredictError) as error:
        predict.predict_paths(folder, [demo_wavs[0]], progress=False)
    message = str(error.value)
    assert expected in message and str(folder) in message
    assert "mismatch" in message or case == "format"


@slow
def test_swapped_autoencoder_is_refused(run, demo_wavs, tmp_path):
    _, models = run
    folder = _copy_model(models, "sT", tmp_path / "swapped")
    shutil.copy(models / "BL" / predict.MODEL_FILE, folder / predict.AUTOENCODER_FILE)
    with pytest.raises(predict.PredictError, match="sha256"):
        predict.load_predictor(folder)
    (folder / predict.AUTOENCODER_FILE).unlink()
    _edit(
        folder / predict.METADATA_FILE, lambda d: d["autoencoder"].update(model="elsewhere/autoencoder.keras")
    )
    with pytest.raises(predict.PredictError, match="missing"):
        predict.load_predictor(folder)


def test_not_a_model_folder(tmp_path):
    with pytest.raises(predict.PredictError, match="not a model folder"):
        predict.load_predictor(tmp_path)
    (tmp_path / predict.METADATA_FILE).write_text("{not json")
    with pytest.raises(predict.PredictError, match="model.json: file: not valid JSON"):
        predict.load_predictor(tmp_path)


@slow
def test_run_folder_works_directly(run, demo_wavs):
    """A protocol run's own folder (AE path as recorded by the run) predicts the same as its export."""
    config, models = run
    folder = Path(config.output_dir) / "results" / "cross" / "sT" / "seed0" / "fold0"
    direct = predict.predict_paths(folder, demo_wavs[:2], progress=False)
    exported = predict.predict_paths(models / "sT", demo_wavs[:2], progress=False)
    for a, b in zip(direct, exported, strict=True):
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-6)


@slow
def test_models_are_exported_on_first_use(run, demo_wavs, tmp_path):
    """``serlib predict --model <output>/models`` right after ``serlib evaluate``: exported from
    results/protocol.json, then used."""
    config, _ = run
    shutil.copytree(Path(config.output_dir) / "results", tmp_path / "results")
    (result,) = predict.predict_paths(tmp_path / "models", demo_wavs[:1], progress=False)
    _check_result(result)
    assert result["model"] == "sT"
    assert json.loads((tmp_path / "models" / predict.INDEX_FILE).read_text())["default"] == "sT"


@slow
def test_real_emodb_wavs(run, shared_data):
    """Real speech at 22.05 kHz from Emo-DB: valid outputs (the tiny synthetic model is no judge of accuracy)."""
    _, models = run
    files = sorted((shared_data / "emodb" / "wav").glob("*.wav"))[:4]
    assert files, "no Emo-DB wavs under SERLIB_DATA/emodb/wav"
    results = predict.predict_paths(models, files, progress=False)
    for result in results:
        _check_result(result)

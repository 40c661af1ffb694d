"""serlib.store: layout, caching and invalidation, skipping, parallel == serial, HDF5 helpers."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from serlib.base import config as config_module
from serlib.data import audio
from serlib.data import manifest as manifests
from serlib.features import extraction, logmel, store
from serlib.features.store import StoreError

DURATIONS = (0.6, 1.3, 0.9, 1.05, 0.45)


def _corpus(folder: Path) -> pd.DataFrame:
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    rng = np.random.default_rng(0)
    for index, seconds in enumerate(DURATIONS):
        rate = 22050 if index == 3 else 16000
        t = np.arange(int(seconds * rate)) / rate
        signal = 0.3 * np.sin(2 * np.pi * (200 + 100 * index) * t) + 0.02 * rng.standard_normal(t.size)
        path = folder / f"utt{index}.wav"
        sf.write(path, signal.astype(np.float32), rate, subtype="PCM_16")
        rows.append(
            {"utterance_id": f"utt{index}", "corpus": "tiny", "path": str(path), "speaker": f"s{index % 2}"}
        )
    return manifests.make_manifest(rows)


def _config(tmp_path: Path, **changes: object) -> config_module.Config:
    base = config_module.load_preset("demo")
    settings = {
        "output_dir": str(tmp_path / "run"),
        "features.n_jobs": 1,
        "features.logmel.max_frames": 100,
        "features.spectrogram.fixed_length_s": 1.0,
    }
    settings.update(changes)
    return config_module.override(base, **settings)


@pytest.fixture
def manifest(tmp_path: Path) -> pd.DataFrame:
    return _corpus(tmp_path / "audio")


def test_logmel_store_layout_and_lengths(tmp_path: Path, manifest: pd.DataFrame) -> None:
    features = store.extract_manifest(manifest, "logmel", _config(tmp_path), progress=False)
    assert features.path.parent == tmp_path / "run" / "cache" / "features"
    assert features.path.name.startswith("tiny-logmel-") and features.path.suffix == ".h5"
    assert features.ids == [f"utt{i}" for i in range(len(DURATIONS))]
    assert features.features.shape == (5, 100, 26) and features.features.dtype == np.float32
    expected = [min(100, (int(round(s * 16000)) - 400) // 160 + 1) for s in DURATIONS]
    assert features.lengths.tolist() == expected and features.lengths.dtype == np.int32
    assert not features.chunk_numbers.any() and features.skipped == []
    assert not features.features[4, expected[4] :].any()  # zero padding after the true frames
    with h5py.File(features.path, "r") as handle:
        assert set(handle) == {"ids", "features", "lengths", "chunk_numbers"}
        assert handle.attrs["extractor"] == "logmel" and "max_frames" in handle.attrs["parameters_json"]
        assert handle.attrs["key"].startswith(features.path.stem.split("-")[-1])


def test_second_call_reads_the_store(
    tmp_path: Path, manifest: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path)
    first = store.extract_manifest(manifest, "logmel", config, progress=False)

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("extraction ran again although the store is valid")

    monkeypatch.setattr(extraction, "extract_task", fail)
    second = store.extract_manifest(manifest, "logmel", config, progress=False)
    assert second.path == first.path
    np.testing.assert_array_equal(second.features, first.features)


def test_changed_parameter_or_file_recomputes(tmp_path: Path, manifest: pd.DataFrame) -> None:
    config = _config(tmp_path)
    original = store.extract_manifest(manifest, "logmel", config, progress=False)
    other = store.extract_manifest(
        manifest, "logmel", _config(tmp_path, **{"features.logmel.high_hz": 4000.0}), progress=False
    )
    assert other.path != original.path
    assert not np.array_equal(other.features, original.features)
    # rewrite one file: new content -> new key, new values for that row only
    path = Path(manifest.loc[0, "path"])
    sf.write(path, 0.5 * np.sin(np.linspace(0, 900, 16000)).astype(np.float32), 16000, subtype="PCM_16")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    changed = store.extract_manifest(manifest, "logmel", config, progress=False)
    assert changed.path != original.path
    assert not np.array_equal(changed.features[0], original.features[0])
    np.testing.assert_array_equal(changed.features[1:], original.features[1:])


def test_same_audio_with_new_mtimes_or_elsewhere_finds_its_store(
    tmp_path: Path, manifest: pd.DataFrame
) -> None:
    """A re-materialised data folder (same bytes, new mtimes, another place) reuses its features; the
    same size with other bytes does not."""
    config = _config(tmp_path)
    original = store.extract_manifest(manifest, "spectrogram", config, progress=False)
    path = Path(manifest.loc[2, "path"])
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 5 * 10**9))
    copied = tmp_path / "copy"
    shutil.copytree(path.parent, copied)
    moved = manifest.assign(path=[str(copied / Path(p).name) for p in manifest["path"]])
    assert store.extract_manifest(manifest, "spectrogram", config, progress=False).path == original.path
    assert store.extract_manifest(moved, "spectrogram", config, progress=False).path == original.path
    data = bytearray(path.read_bytes())
    data[-2:] = bytes([data[-2] ^ 0xFF, data[-1] ^ 0xFF])  # last sample changed, same size
    path.write_bytes(bytes(data))
    # a new mtime as any rewrite has (set here: a rewrite within the file system's timestamp step
    # would keep the digest this process cached for the old bytes)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert store.extract_manifest(manifest, "spectrogram", config, progress=False).path != original.path


def test_corrupt_file_stops_or_is_skipped(tmp_path: Path, manifest: pd.DataFrame) -> None:
    broken = tmp_path / "audio" / "broken.wav"
    broken.write_bytes(b"not audio at all" * 100)
    rows = pd.concat(
        [manifest, manifests.make_manifest([{"utterance_id": "bad", "corpus": "tiny", "path": str(broken)}])]
    )
    rows = rows.reset_index(drop=True)
    with pytest.raises(StoreError, match="utterance bad") as error:
        store.extract_manifest(rows, "logmel", _config(tmp_path), progress=False)
    assert str(broken) in str(error.value) and "allow_skip" in str(error.value)
    assert not list((tmp_path / "run" / "cache" / "features").glob("*.h5"))  # nothing half-written
    features = store.extract_manifest(
        rows, "logmel", _config(tmp_path, **{"features.allow_skip": True}), progress=False
    )
    assert len(features.skipped) == 1 and features.skipped[0][0] == "bad"
    assert "bad" not in features.ids and features.features.shape[0] == len(DURATIONS)


def test_spectrogram_store_fixed_length_and_chunks(tmp_path: Path, manifest: pd.DataFrame) -> None:
    fixed = store.extract_manifest(manifest, "spectrogram", _config(tmp_path), progress=False)
    assert fixed.features.shape == (5, 24, 128)  # 1.0 s at 40 ms hops
    assert fixed.lengths.tolist()[1] == 24 and fixed.lengths.tolist()[4] < 24  # 0.45 s file is padded
    with pytest.raises(StoreError, match="fixed_length_s"):
        store.extract_manifest(
            manifest,
            "spectrogram",
            _config(tmp_path, **{"features.spectrogram.fixed_length_s": None}),
            progress=False,
        )
    chunked = store.extract_manifest(
        manifest,
        "spectrogram",
        _config(
            tmp_path,
            **{
                "features.spectrogram.fixed_length_s": 1.3,
                "features.spectrogram.chunk_length_s": 0.4,
                "features.spectrogram.chunk_count": 3,
            },
        ),
        progress=False,
    )
    assert chunked.features.shape == (15, 10, 128)
    assert chunked.ids[:4] == ["utt0", "utt0", "utt0", "utt1"]
    assert chunked.chunk_numbers.tolist()[:4] == [0, 1, 2, 0]


def test_egemaps_store(tmp_path: Path, manifest: pd.DataFrame) -> None:
    features = store.extract_manifest(manifest, "egemaps", _config(tmp_path), progress=False)
    assert features.features.shape == (5, 1, 88) and np.isfinite(features.features).all()


def test_egemaps_descriptor_store_is_cut_and_padded_as_log_mel(
    tmp_path: Path, manifest: pd.DataFrame
) -> None:
    config = _config(tmp_path)
    descriptors = store.extract_manifest(manifest, "egemaps_lld", config, progress=False)
    log_mel = store.extract_manifest(manifest, "logmel", config, progress=False)
    assert descriptors.features.shape == (5, config.features.logmel.max_frames, 25)
    assert descriptors.ids == log_mel.ids
    assert np.abs(descriptors.lengths - log_mel.lengths).max() <= 5  # both at a 10 ms hop
    for row, length in enumerate(descriptors.lengths):
        assert np.isfinite(descriptors.features[row]).all()
        assert not descriptors.features[row, length:].any()  # zero padding after the true frames
    assert Path(descriptors.path).name != Path(log_mel.path).name


def test_parallel_equals_serial(
    tmp_path: Path, manifest: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(extraction, "TASK_SIZE", 2)  # three tasks, so two workers really share the work
    serial = store.extract_manifest(manifest, "logmel", _config(tmp_path / "a"), progress=False)
    parallel = store.extract_manifest(
        manifest, "logmel", _config(tmp_path / "b", **{"features.n_jobs": 2}), progress=False
    )
    assert parallel.ids == serial.ids
    np.testing.assert_array_equal(parallel.features, serial.features)
    np.testing.assert_array_equal(parallel.lengths, serial.lengths)


def test_extract_configured_with_a_manifest_corpus(tmp_path: Path, manifest: pd.DataFrame) -> None:
    csv = manifests.write_manifest(manifest, tmp_path / "tiny.csv")
    config = _config(tmp_path)
    config = config_module.override(
        config,
        corpora={"tiny": {"type": "manifest", "root": str(csv)}},
        protocol={
            "within_corpus": "tiny",
            "cross_corpus_train": None,
            "cross_corpus_test": None,
            "conditions": [],
        },
    )
    features = store.extract_configured(config, "tiny", "logmel", progress=False)
    assert features.path.name.startswith("tiny-logmel-") and len(features.ids) == 5
    with store.open_features(features.path) as handle:  # streaming reads
        np.testing.assert_array_equal(handle["features"][1:3], features.features[1:3])


def test_save_and_load_arrays(tmp_path: Path) -> None:
    path = store.save_arrays(
        tmp_path / "x" / "reps.h5",
        ["a", "b"],
        attributes={"model_sha256": "abc", "dims": [2, 3]},
        vectors=np.eye(2),
    )
    ids, arrays, attributes = store.load_arrays(path)
    assert ids == ["a", "b"] and attributes == {"model_sha256": "abc", "dims": [2, 3]}
    np.testing.assert_array_equal(arrays["vectors"], np.eye(2))
    with pytest.raises(ValueError, match="rows"):
        store.save_arrays(tmp_path / "bad.h5", ["a"], vectors=np.eye(2))
    with pytest.raises(StoreError, match="does not exist"):
        store.load_arrays(tmp_path / "absent.h5")


def test_forkserver_workers_give_the_same_rows(
    tmp_path: Path, manifest: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The start method used when 'fork' is unsafe (threads or TensorFlow in the parent)."""
    import multiprocessing

    monkeypatch.setattr(extraction, "TASK_SIZE", 3)
    monkeypatch.setattr(extraction, "_process_context", lambda: multiprocessing.get_context("forkserver"))
    serial = store.extract_manifest(manifest, "spectrogram", _config(tmp_path / "a"), progress=False)
    parallel = store.extract_manifest(
        manifest, "spectrogram", _config(tmp_path / "b", **{"features.n_jobs": 2}), progress=False
    )
    np.testing.assert_array_equal(parallel.features, serial.features)


@pytest.mark.parametrize("rate", [16000, 22050])
def test_logmel_store_reads_only_what_the_cut_keeps(tmp_path: Path, rate: int) -> None:
    """A turn longer than max_frames is cut; reading only its start (plus a margin that keeps the
    resampler's edge away) gives exactly the rows of the whole file."""

    path = tmp_path / "long.wav"
    rng = np.random.default_rng(3)
    sf.write(path, (0.1 * rng.standard_normal(rate * 3)).astype(np.float32), rate, subtype="PCM_16")
    rows = manifests.make_manifest([{"utterance_id": "long", "corpus": "tiny", "path": str(path)}])
    stored = store.extract_manifest(rows, "logmel", _config(tmp_path), progress=False)  # 100 frames = 1.015 s
    whole = logmel.logmel(audio.load(path)[0], 16000)
    np.testing.assert_array_equal(stored.features[0], whole[:100])
    assert stored.lengths.tolist() == [100]


def test_cli_extract_fills_the_configured_acnn_input_by_default(
    tmp_path: Path, manifest: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    from serlib.app import cli
    from serlib.base import config_yaml

    table = tmp_path / "tiny.csv"
    manifest.to_csv(table, index=False)
    config = _config(tmp_path, **{"features.acnn_input": "egemaps_lld"})
    corpora = {**config.corpora, "tiny": config_module.CorpusConfig(type="manifest", root=str(table))}
    path = config_yaml.save(config.model_copy(update={"corpora": corpora}), tmp_path / "tiny.yaml")
    assert cli.main(["extract", "--config", str(path), "--corpus", "tiny"]) == 0
    printed = capsys.readouterr().out
    assert "tiny egemaps_lld: 5 rows" in printed and "tiny spectrogram:" in printed
    assert "logmel" not in printed

"""Feature stores that fit (issue 46): ``features`` stored gzip-compressed with byte shuffling, one row per
chunk, read back bit for bit; a version-1 (uncompressed) store is migrated by its fingerprint, without
extracting again."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from serlib.base import config as config_module
from serlib.data import loaders
from serlib.data.demo import lengths as length_corpora
from serlib.features import extraction, store

FEATURES = config_module.load_preset("paper").features


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    folder = tmp_path_factory.mktemp("store-layout")
    return loaders.load("manifest", length_corpora.write_corpus(folder / "corpus", "iemocap", 6, seed=3))


def _version_1(monkeypatch, manifest, cache, extractor) -> store.FeatureSet:
    """A store as version 1 wrote it: uncompressed, up to 1 MB chunks."""
    with monkeypatch.context() as patch:
        patch.setattr(store, "STORE_VERSION", 1)
        patch.setattr(store, "COMPRESSION", {})
        parameters = store.extractor_parameters(extractor, 16000, FEATURES)
        return store.extract(manifest, extractor, parameters, cache, n_jobs=1, progress=False)


@pytest.mark.parametrize("extractor", ["logmel", "spectrogram"])
def test_stores_are_compressed_and_read_back_unchanged(manifest, tmp_path, monkeypatch, extractor):
    old = _version_1(monkeypatch, manifest, tmp_path / "v1", extractor)
    parameters = store.extractor_parameters(extractor, 16000, FEATURES)
    new = store.extract(manifest, extractor, parameters, tmp_path / "v2", n_jobs=1, progress=False)
    with h5py.File(new.path) as handle:
        dataset = handle["features"]
        assert (dataset.compression, dataset.shuffle, dataset.chunks[0]) == ("gzip", True, 1)
    with h5py.File(old.path) as handle:
        assert handle["features"].compression is None
    np.testing.assert_array_equal(new.features, old.features)  # lossless: the same bits
    np.testing.assert_array_equal(new.lengths, old.lengths)
    assert new.ids == old.ids
    assert new.path.stat().st_size < old.path.stat().st_size / 1.3  # padding and clipped values compress


def test_a_version_1_store_is_migrated_without_extracting_again(manifest, tmp_path, monkeypatch):
    old = _version_1(monkeypatch, manifest, tmp_path, "logmel")
    expected = old.features.copy()

    def refuse(*args, **kwargs):
        raise AssertionError("extracted again although a version-1 store of the same audio exists")

    monkeypatch.setattr(extraction, "run_tasks", refuse)
    parameters = store.extractor_parameters("logmel", 16000, FEATURES)
    migrated = store.extract(manifest, "logmel", parameters, tmp_path, n_jobs=1, progress=False)
    assert migrated.path != old.path and not old.path.exists()
    np.testing.assert_array_equal(migrated.features, expected)
    assert migrated.ids == old.ids and migrated.parameters["store_version"] == store.STORE_VERSION
    with h5py.File(migrated.path) as handle:
        assert handle["features"].compression == "gzip"
    again = store.extract(manifest, "logmel", parameters, tmp_path, n_jobs=1, progress=False)
    assert again.path == migrated.path  # found by its fingerprint from now on


def test_the_autoencoder_reads_a_compressed_store_from_memory_when_it_fits(manifest, tmp_path, monkeypatch):
    from serlib.models.autoencoder import training  # noqa: PLC0415 - TensorFlow only for this test

    parameters = store.extractor_parameters("spectrogram", 16000, FEATURES)
    features = store.extract(manifest, "spectrogram", parameters, tmp_path, n_jobs=1, progress=False)
    in_memory = training._Source(features.path)
    assert in_memory.array is not None
    np.testing.assert_array_equal(in_memory.array, features.features)
    monkeypatch.setattr(training, "IN_MEMORY_SHARE", 0.0)
    streamed = training._Source(features.path)
    assert streamed.array is None
    with streamed.reader() as data:
        rows = np.array([4, 0, 2])
        np.testing.assert_array_equal(training._Source.read(data, rows), features.features[rows])

"""Feature stores that fit (issue 46): ``features`` stored gzip-compressed with byte shuffling, one row per
chunk, read back bit for bit; a version-1 (uncompressed) store is migrated by its fingerprint, without
extracting again. With ``features.spectrogram.store_decimals`` (the paper preset's 4) the spectrograms are
rounded by HDF5's scale-offset filter: within 10^-decimals of the lossless values, under another store
key, and a lossless store of the same audio is rounded into the new layout instead of extracting again."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from serlib.base import config as config_module
from serlib.data import loaders
from serlib.data.demo import lengths as length_corpora
from serlib.features import extraction, store

PAPER = config_module.load_preset("paper")
FEATURES = config_module.override(PAPER, **{"features.spectrogram.store_decimals": None}).features  # lossless
ROUNDED = PAPER.features  # spectrograms kept to features.spectrogram.store_decimals decimals


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


def _spectrograms(manifest, cache, features) -> store.FeatureSet:
    parameters = store.extractor_parameters("spectrogram", 16000, features)
    return store.extract(manifest, "spectrogram", parameters, cache, n_jobs=1, progress=False)


def test_rounded_spectrograms_are_within_their_decimals_of_the_lossless_ones(manifest, tmp_path):
    decimals = ROUNDED.spectrogram.store_decimals
    assert decimals == 4
    lossless = _spectrograms(manifest, tmp_path / "lossless", FEATURES)
    rounded = _spectrograms(manifest, tmp_path / "rounded", ROUNDED)
    assert rounded.path.name != lossless.path.name  # another store key: never read in place of the other
    assert rounded.parameters["store_decimals"] == decimals and "store_decimals" not in lossless.parameters
    with h5py.File(rounded.path) as handle:
        dataset = handle["features"]
        assert (dataset.scaleoffset, dataset.compression, dataset.dtype) == (decimals, "gzip", np.float32)
    with h5py.File(lossless.path) as handle:
        assert handle["features"].scaleoffset is None
    error = np.abs(rounded.features - lossless.features)
    assert 0 < error.max() <= 10.0**-decimals  # rounded, and by no more than the last kept decimal
    assert rounded.ids == lossless.ids
    np.testing.assert_array_equal(rounded.lengths, lossless.lengths)
    assert rounded.path.stat().st_size < 0.8 * lossless.path.stat().st_size


def test_a_lossless_store_is_rounded_without_extracting_again_and_another_setting_rebuilds(
    manifest, tmp_path, monkeypatch
):
    fresh = _spectrograms(manifest, tmp_path / "fresh", ROUNDED).features
    lossless = _spectrograms(manifest, tmp_path / "cache", FEATURES)

    def refuse(*args, **kwargs):
        raise AssertionError("extracted again although a lossless store of the same audio exists")

    with monkeypatch.context() as patch:
        patch.setattr(extraction, "run_tasks", refuse)
        rounded = _spectrograms(manifest, tmp_path / "cache", ROUNDED)
    assert not lossless.path.exists() and rounded.path.exists()
    np.testing.assert_array_equal(rounded.features, fresh)  # the filter rounds a copy as it rounds extraction
    coarser = config_module.override(PAPER, **{"features.spectrogram.store_decimals": 2}).features
    with monkeypatch.context() as patch:
        patch.setattr(extraction, "run_tasks", refuse)
        with pytest.raises(AssertionError, match="extracted again"):  # a rounded store is no source
            _spectrograms(manifest, tmp_path / "cache", coarser)
    rebuilt = _spectrograms(manifest, tmp_path / "cache", coarser)
    with h5py.File(rebuilt.path) as handle:
        assert handle["features"].scaleoffset == 2
    assert np.abs(rebuilt.features - fresh).max() <= 10.0**-2 + 10.0**-4


def test_store_decimals_changes_the_fingerprints_of_the_runs_that_read_spectrograms():
    from serlib.protocol import conditions  # noqa: PLC0415 - the protocol layer, for its fingerprints

    rounded = config_module.override(PAPER, **{"acnn.implementation": "reference"})  # no calibration
    lossless = config_module.override(rounded, **{"features.spectrogram.store_decimals": None})
    identity = {"stand-in/logmel": "stand-in-0123456789abcdef.h5"}  # the same store names for both
    for condition in PAPER.protocol.conditions:
        changed = conditions.fingerprint(rounded, "within", condition, identity) != conditions.fingerprint(
            lossless, "within", condition, identity
        )
        assert changed == (condition.autoencoder_corpus != "none"), condition.name  # BL keeps its runs


def test_notebook_01s_feature_figure_draws_with_the_paper_preset() -> None:
    """store_decimals is a storage setting, not an argument of the spectrogram (notebook 01 passes the rest)."""
    import matplotlib.pyplot as plt  # noqa: PLC0415

    from serlib.analysis import data_overview  # noqa: PLC0415 - the analysis layer, for notebook 01's figure

    tone = np.sin(np.linspace(0, 2000 * np.pi, 16000)).astype(np.float32) * 0.1
    figure = data_overview.plot_features(tone, 16000, PAPER)
    assert figure is not None
    plt.close("all")

"""One meaning per key and name (issue 43, item 4): the SVM's normalisation stated, the metadata's one
normalisation key (old model folders still read), and the eGeMAPS descriptors' cut named."""

from __future__ import annotations

import pytest

from serlib.app.model_folder import normalisation_mode
from serlib.base import config
from serlib.features import store
from serlib.protocol import labeled, svm


def test_none_is_train_for_the_svm_and_hashes_as_train() -> None:
    assert [svm.svm_normalisation(m) for m in ("none", "train", "corpus", "speaker")] == [
        "train",
        "train",
        "corpus",
        "speaker",
    ]
    demo = config.load_preset("demo")
    none = config.override(demo, **{"features.normalisation": "none"})
    speaker = config.override(demo, **{"features.normalisation": "speaker"})
    assert svm.fingerprint(none, "within") == svm.fingerprint(demo, "within")
    assert svm.fingerprint(speaker, "within") != svm.fingerprint(demo, "within")


@pytest.mark.parametrize(
    ("metadata", "mode"),
    [
        ({"normalisation": {"mode": "none", "band_statistics": None, "in_model": False}}, "none"),
        ({"normalisation": {"mode": "speaker", "band_statistics": {"mean": [0.0], "std": [1.0]}}}, "speaker"),
        # written before issue 43: the mode and the statistics under two keys
        ({"feature_normalisation": "none", "normalisation": None}, "none"),
        ({"feature_normalisation": "corpus", "normalisation": {"mean": [0.0], "std": [1.0]}}, "corpus"),
        ({"normalisation": {"mean": [0.0], "std": [1.0], "in_model": True}}, "train"),  # before the mode
    ],
)
def test_model_metadata_names_its_normalisation_once_and_old_folders_still_read(metadata, mode) -> None:
    assert normalisation_mode(metadata) == mode


def test_the_egemaps_descriptors_are_cut_to_the_named_input_length() -> None:
    paper = config.load_preset("paper")
    lld = config.override(paper, **{"features.acnn_input": "egemaps_lld", "features.logmel.max_frames": 300})
    assert lld.features.input_frames == 300
    assert labeled.acnn_input_shape(lld.features) == (300, 25)
    assert labeled.acnn_input_shape(paper.features) == (
        paper.features.input_frames,
        paper.features.logmel.bands,
    )
    parameters = store.extractor_parameters("egemaps_lld", 16000, lld.features)
    assert parameters["max_frames"] == lld.features.input_frames

"""auDeep CSV/ARFF interchange: lossless round trips, auDeep's documented layout, matching errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from serlib.models.autoencoder import audeep_files
from serlib.models.autoencoder.audeep_files import AudeepFileError


def _manifest(ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"utterance_id": ids, "path": [f"/corpus/Session1/{i}.wav" for i in ids]})


def _vectors(n: int, d: int, seed: int = 0) -> np.ndarray:
    # Awkward float32 values (tiny, huge, negative, many digits) to catch lossy formatting.
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((n, d)) * 10.0 ** rng.integers(-8, 8, (n, d))
    return values.astype(np.float32)


@pytest.mark.parametrize("writer", [audeep_files.export_csv, audeep_files.export_arff])
@pytest.mark.parametrize("labels_last", [False, True])
def test_export_import_round_trip_is_exact(tmp_path, writer, labels_last):
    ids = ["a01", "b02", "c03", "d04"]
    vectors = _vectors(4, 7)
    path = writer(
        tmp_path / "rep", ids, vectors, labels=["sad", None, "angry", "sad"], labels_last=labels_last
    )
    imported_ids, imported = audeep_files.import_representations(path, _manifest(ids))
    assert imported_ids == ids
    assert imported.dtype == np.float32
    assert np.array_equal(imported, vectors)


def test_csv_layout_matches_audeep_export(tmp_path):
    path = audeep_files.export_csv(tmp_path / "rep", ["x", "y"], _vectors(2, 3), labels=["happy", "angry"])
    assert path.name == "rep.csv"
    frame = pd.read_csv(path)
    assert list(frame.columns) == ["filename", "chunk_nr", "label_nominal", "label_numeric"] + [
        f"feature_{i}" for i in range(3)
    ]
    assert frame["label_numeric"].tolist() == [1, 0]  # index in the sorted label names
    last = audeep_files.export_csv(tmp_path / "last.csv", ["x"], _vectors(1, 2), labels_last=True)
    assert pd.read_csv(last).columns.tolist() == [
        "filename",
        "chunk_nr",
        "feature_0",
        "feature_1",
        "label_nominal",
        "label_numeric",
    ]


def test_arff_layout_matches_audeep_export(tmp_path):
    path = audeep_files.export_arff(tmp_path / "rep", ["x", "y"], _vectors(2, 2), labels=["sad", "angry"])
    text = path.read_text()
    assert '@RELATION "auDeep exported data set"' in text  # liac-arff's quoting, as auDeep's
    assert "@ATTRIBUTE filename STRING" in text
    assert "@ATTRIBUTE label_nominal {angry, sad}" in text
    assert "@ATTRIBUTE feature_1 REAL" in text


def test_hand_written_audeep_csv_imports_and_fuses_chunks(tmp_path):
    # auDeep writes filename relative to --basedir with extension, one row per chunk, labels empty if unknown.
    text = (
        "filename,chunk_nr,label_nominal,label_numeric,feature_0,feature_1\n"
        "Session1/u2.wav,1,,,0.5,-0.25\n"
        "Session1/u1.wav,0,neu,2,1.0,2.0\n"
        "Session1/u2.wav,0,,,3.0,4.0\n"
        "Session1/u1.wav,1,neu,2,-1.5,0.125\n"
    )
    path = tmp_path / "export.csv"
    path.write_text(text)
    ids, vectors = audeep_files.import_representations(path, _manifest(["u1", "u2"]))
    assert ids == ["u1", "u2"]
    np.testing.assert_array_equal(vectors, [[1.0, 2.0, -1.5, 0.125], [3.0, 4.0, 0.5, -0.25]])


def test_hand_written_arff_matches_by_relative_path(tmp_path):
    text = """@RELATION 'auDeep exported data set'
@ATTRIBUTE filename STRING
@ATTRIBUTE chunk_nr INTEGER
@ATTRIBUTE label_nominal {neg,pos}
@ATTRIBUTE label_numeric INTEGER
@ATTRIBUTE feature_0 REAL
@DATA
'Session1/take 1.wav',0,pos,1,0.75
"""
    path = tmp_path / "export.arff"
    path.write_text(text)
    manifest = pd.DataFrame({"utterance_id": ["s1_take1"], "path": ["/data/Session1/take 1.wav"]})
    ids, vectors = audeep_files.import_representations(path, manifest)
    assert ids == ["s1_take1"]
    np.testing.assert_array_equal(vectors, [[0.75]])


def test_unmatched_rows_are_named(tmp_path):
    path = audeep_files.export_csv(tmp_path / "rep", ["u1", "stranger"], _vectors(2, 2))
    with pytest.raises(AudeepFileError, match="stranger"):
        audeep_files.import_representations(path, _manifest(["u1"]))


def test_duplicate_rows_are_named(tmp_path):
    path = audeep_files.export_csv(tmp_path / "rep", ["u1", "u2", "u1"], _vectors(3, 2))
    with pytest.raises(AudeepFileError, match=r"duplicate.*u1"):
        audeep_files.import_representations(path, _manifest(["u1", "u2"]))


def test_missing_utterances_are_an_error_unless_allowed(tmp_path):
    path = audeep_files.export_csv(tmp_path / "rep", ["u2"], _vectors(1, 2))
    with pytest.raises(AudeepFileError, match="u1"):
        audeep_files.import_representations(path, _manifest(["u1", "u2"]))
    ids, vectors = audeep_files.import_representations(path, _manifest(["u1", "u2"]), allow_missing=True)
    assert ids == ["u2"] and vectors.shape == (1, 2)


def test_ambiguous_file_name_is_an_error(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("filename,chunk_nr,label_nominal,label_numeric,feature_0\ntake.wav,0,,,1.0\n")
    manifest = pd.DataFrame({"utterance_id": ["a", "b"], "path": ["/x/s1/take.wav", "/x/s2/take.wav"]})
    with pytest.raises(AudeepFileError, match="several"):
        audeep_files.import_representations(path, manifest)


def test_fuse_chunks_concatenates_in_chunk_order_and_checks_completeness():
    vectors = np.arange(12, dtype=np.float32).reshape(6, 2)
    ids, fused = audeep_files.fuse_chunks(["b", "a", "b", "a", "b", "a"], [2, 0, 0, 1, 1, 2], vectors)
    assert ids == ["b", "a"]
    np.testing.assert_array_equal(fused[0], [4, 5, 8, 9, 0, 1])
    np.testing.assert_array_equal(fused[1], [2, 3, 6, 7, 10, 11])
    with pytest.raises(AudeepFileError, match="chunks 0..1"):
        audeep_files.fuse_chunks(["a", "a", "b"], [0, 1, 0], vectors[:3])

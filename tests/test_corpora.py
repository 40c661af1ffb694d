"""The manifest schema: binning, make_manifest, validate, reading/writing CSVs, describe, load."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from serlib.base import config as config_module
from serlib.data import loaders
from serlib.data import manifest as manifests


@pytest.mark.parametrize(
    ("rating", "expected"),
    [
        (1.0, "low"),
        (1.5, "low"),
        (2.0, "low"),
        (2.0001, "medium"),
        (3.0, "medium"),
        (3.9999, "medium"),
        (4.0, "high"),
        (5.0, "high"),
        (None, ""),
        (float("nan"), ""),
        (np.float64(4.0), "high"),
    ],
)
def test_level_uses_the_papers_bins(rating, expected) -> None:
    assert manifests.level(rating) == expected


@pytest.mark.parametrize("rating", [0.99, 5.01, -1.0])
def test_level_refuses_ratings_off_the_scale(rating) -> None:
    with pytest.raises(manifests.CorpusError, match="outside the 1-5 scale"):
        manifests.level(rating)


def _row(utterance: str, path: str, **fields) -> dict:
    return {"utterance_id": utterance, "path": path, **fields}


def test_make_manifest_fills_orders_and_derives_classes(tmp_path: Path) -> None:
    manifest = manifests.make_manifest(
        [
            _row("a", "a.wav", arousal=2.0, valence=4.0, emotion="sad"),
            _row("b", "b.wav", arousal="2.0001", valence="3.9999"),
            _row("c", "c.wav", arousal_class="high"),  # a given class is kept, not derived
            _row("d", "d.wav", start_s=1.5, end_s=2.0, speaker=7),
        ]
    )
    assert list(manifest.columns) == list(manifests.MANIFEST_COLUMNS)
    assert manifest["arousal_class"].tolist() == ["low", "medium", "high", ""]
    assert manifest["valence_class"].tolist() == ["high", "medium", "", ""]
    assert manifest["emotion"].tolist() == ["sad", "", "", ""]
    assert manifest["speaker"].tolist() == ["", "", "", "7"]  # text columns are strings, never NaN
    assert manifest.loc[3, "start_s"] == 1.5 and math.isnan(manifest.loc[0, "start_s"])
    assert manifest["arousal"].dtype == np.float64


def _valid(tmp_path: Path, n: int = 3) -> pd.DataFrame:
    rows = []
    for index in range(n):
        path = tmp_path / f"u{index}.wav"
        sf.write(path, np.zeros(160, dtype=np.float32), 16000)
        rows.append(
            _row(f"u{index}", str(path), emotion=manifests.EMOTIONS[index % 4], arousal=3.0, valence=3.0)
        )
    return manifests.make_manifest(rows)


def test_validate_accepts_a_good_manifest(tmp_path: Path) -> None:
    manifest = _valid(tmp_path)
    assert manifests.validate(manifest) is manifest


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.drop(columns=["speaker", "emotion"]), r"missing columns \['speaker', 'emotion'\]"),
        (lambda m: m.assign(utterance_id=["u0", "u1", "u0"]), r"duplicate utterance_id values: \['u0'\]"),
        (lambda m: m.assign(utterance_id=["u0", "", "u2"]), "1 rows have an empty utterance_id"),
        (
            lambda m: m.assign(emotion=["angry", "joy", "excited"]),
            r"unknown emotion labels \['excited', 'joy'\]",
        ),
        (lambda m: m.assign(arousal_class=["low", "mid", ""]), r"unknown arousal_class values \['mid'\]"),
        (lambda m: m.assign(valence=[3.0, 5.5, 0.5]), "valence outside 1-5 in 2 rows"),
        (
            lambda m: m.assign(start_s=[1.0, 0.0, 0.0], end_s=[0.5, 1.0, 1.0]),
            "1 segments end before they start",
        ),
        (
            lambda m: m.assign(path=["/nowhere/x.wav"] * 3),
            r"1 audio files do not exist, e.g. \['/nowhere/x.wav'\]",
        ),
    ],
    ids=[
        "missing-columns",
        "duplicate-ids",
        "empty-id",
        "unknown-labels",
        "unknown-class",
        "ratings",
        "times",
        "files",
    ],
)
def test_validate_names_what_is_wrong(tmp_path: Path, change, message) -> None:
    with pytest.raises(manifests.CorpusError, match=message) as error:
        manifests.validate(change(_valid(tmp_path)), source="my.csv")
    assert str(error.value).startswith("my.csv")


def test_validate_can_skip_the_file_check(tmp_path: Path) -> None:
    manifest = _valid(tmp_path).assign(path="/nowhere/x.wav")
    assert len(manifests.validate(manifest, check_files=False)) == 3


CSV = (
    "utterance_id,path,speaker,session,emotion,arousal,valence,start_s,end_s\n"
    "one,audio/one.wav,s1,1,happy,4,2.0001,,\n"
    "two,audio/two.wav,s2,2,,,,0.5,1.25\n"
)


def _csv_folder(tmp_path: Path) -> Path:
    (tmp_path / "audio").mkdir(parents=True)
    for name in ("one", "two"):
        sf.write(tmp_path / "audio" / f"{name}.wav", np.zeros(160, dtype=np.float32), 16000)
    return tmp_path


@pytest.mark.parametrize("variant", ["plain", "bom", "crlf", "bom+crlf"])
def test_read_manifest_relative_paths_bom_and_crlf(tmp_path: Path, variant: str) -> None:
    folder = _csv_folder(tmp_path)
    text = CSV.replace("\n", "\r\n") if "crlf" in variant else CSV
    data = ("\ufeff" if "bom" in variant else "") + text
    (folder / "mine.csv").write_bytes(data.encode("utf-8"))
    manifest = manifests.read_manifest(folder / "mine.csv")
    assert manifest["utterance_id"].tolist() == ["one", "two"]  # BOM not glued to the first column
    assert manifest["path"].tolist() == [
        str((folder / "audio" / f"{n}.wav").resolve()) for n in ("one", "two")
    ]
    assert manifest["corpus"].tolist() == ["mine", "mine"]  # the file's stem when the column is absent
    assert manifest["arousal_class"].tolist() == ["high", ""]
    assert manifest["valence_class"].tolist() == ["medium", ""]
    assert manifest["session"].tolist() == ["1", "2"]
    assert manifest.loc[1, "end_s"] == 1.25 and math.isnan(manifest.loc[0, "start_s"])


def test_read_manifest_errors(tmp_path: Path) -> None:
    with pytest.raises(manifests.CorpusError, match="does not exist"):
        manifests.read_manifest(tmp_path / "absent.csv")
    (tmp_path / "no_path.csv").write_text("utterance_id,speaker\na,s\n")
    with pytest.raises(manifests.CorpusError, match=r"missing required columns \['path'\]"):
        manifests.read_manifest(tmp_path / "no_path.csv")
    (tmp_path / "missing_audio.csv").write_text("utterance_id,path\na,audio/none.wav\n")
    with pytest.raises(manifests.CorpusError, match="missing_audio.csv: 1 audio files do not exist"):
        manifests.read_manifest(tmp_path / "missing_audio.csv")
    assert len(manifests.read_manifest(tmp_path / "missing_audio.csv", check_files=False)) == 1


def test_write_then_read_round_trip_with_relative_paths(tmp_path: Path) -> None:
    folder = _csv_folder(tmp_path / "corpus")
    (folder / "mine.csv").write_text(CSV)
    manifest = manifests.read_manifest(folder / "mine.csv")
    written = manifests.write_manifest(manifest, folder / "copy" / "copy.csv", relative_to=folder / "copy")
    assert "../audio/one.wav" in written.read_text()
    assert not list((folder / "copy").glob(".*tmp*"))  # the temp file was renamed, not left behind
    again = manifests.read_manifest(written)
    pd.testing.assert_frame_equal(again, manifest)


def test_describe_counts_and_hours(tmp_path: Path) -> None:
    rows = [
        _row("a", str(tmp_path / "a.wav"), emotion="happy", speaker="1F", session="1", gender="female"),
        _row("b", str(tmp_path / "b.wav"), emotion="happy", speaker="1M", session="1", gender="male"),
        _row(
            "c", str(tmp_path / "c.wav"), speaker="2F", session="2", gender="female", start_s=0.0, end_s=1.5
        ),
    ]
    for name, seconds in (("a", 1.0), ("b", 0.5), ("c", 2.0)):
        sf.write(tmp_path / f"{name}.wav", np.zeros(int(16000 * seconds), dtype=np.float32), 16000)
    summary = manifests.describe(manifests.make_manifest(rows))
    assert summary["utterances"] == 3 and summary["speakers"] == 3 and summary["sessions"] == 2
    assert summary["emotion"] == {"happy": 2, "(unlabeled)": 1}
    assert summary["per_session"] == {"1": 2, "2": 1}
    assert summary["gender"] == {"female": 2, "male": 1}
    assert summary["hours_of_segments"] == pytest.approx(1.5 / 3600)
    assert "hours" not in summary
    measured = manifests.describe(manifests.make_manifest(rows), audio_hours=True)
    assert measured["hours"] == pytest.approx((1.0 + 0.5 + 1.5) / 3600)


def test_load_dispatches_by_name(tmp_path: Path) -> None:
    folder = _csv_folder(tmp_path)
    (folder / "mine.csv").write_text(CSV)
    assert loaders.load("manifest", folder / "mine.csv")["utterance_id"].tolist() == ["one", "two"]
    with pytest.raises(manifests.CorpusError, match="unknown corpus type 'timit'; known: .*emodb.*iemocap"):
        loaders.load("timit", folder)
    for name in ("iemocap", "msp_improv", "tedlium2", "librispeech", "emodb", "ravdess", "manifest"):
        assert name in loaders.LOADERS


def test_load_configured_names_the_corpus_by_its_key(tmp_path: Path) -> None:
    folder = _csv_folder(tmp_path)
    (folder / "mine.csv").write_text(CSV)
    config = config_module.from_dict(
        {
            "corpora": {"my_key": {"type": "manifest", "root": str(folder / "mine.csv")}},
            "protocol": {"within_corpus": "my_key", "cross_corpus_train": None, "cross_corpus_test": None},
        }
    )
    assert loaders.load_configured(config, "my_key")["corpus"].tolist() == ["my_key", "my_key"]


def test_load_names_a_misspelt_option(tmp_path: Path) -> None:
    with pytest.raises(
        manifests.CorpusError, match="'tedlium2' has no option 'talk'; its options are talks, seed"
    ):
        loaders.load("tedlium2", tmp_path, talk=400)

"""Corpus loaders on fixture trees in each corpus' real layout (tiny generated audio), and on the
real public data of SERLIB_DATA where present (Emo-DB, RAVDESS, IEMOCAP label files, LibriSpeech)."""

from __future__ import annotations

import math
import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from serlib.base import config as config_module
from serlib.data import loaders
from serlib.data import manifest as manifests
from serlib.data.corpora import emodb as emodb_module
from serlib.data.corpora import iemocap
from serlib.data.corpora import nemo as nemo_module


def _audio(path: Path, seconds: float = 0.1, rate: int = 16000, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = np.random.default_rng(len(path.name)).normal(0, 0.05, int(round(seconds * rate)))
    sf.write(path, samples.astype(np.float32), rate, **({"subtype": "PCM_16"} | options))
    return path


def _row(manifest: pd.DataFrame, utterance: str) -> dict:
    rows = manifest[manifest["utterance_id"] == utterance]
    assert len(rows) == 1, f"{utterance} is not in the manifest exactly once"
    return rows.iloc[0].to_dict()


def _check_fields(row: dict, **expected) -> None:
    for key, value in expected.items():
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(row[key]), key
        else:
            assert row[key] == value, f"{key}: {row[key]!r} != {value!r}"


# -- IEMOCAP ---------------------------------------------------------------------------------------
def _iemocap_block(utterance: str, label: str, valence: str, arousal: str, start: str = "1.0000") -> str:
    return (
        f"[{start} - 9.0000]\t{utterance}\t{label}\t[{valence}, {arousal}, 3.0000]\n"
        "C-E1:\tNeutral;\t()\nC-E2:\tExcited;\t(comment)\nA-E1:\tval 3; act 2; dom  2;\t()\n\n"
    )


# Written in the release's own format, saved with a BOM and CRLF line ends like a Windows copy.
SESSION2_FILE = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n" + "".join(
    [
        _iemocap_block("Ses02M_script01_1_F000", "exc", "4.0000", "2.0001"),
        _iemocap_block("Ses02M_script01_1_M000", "hap", "3.9999", "2.0000"),
        _iemocap_block("Ses02M_script01_1_F001", "sad", "1.0000", "5.0000"),
        _iemocap_block("Ses02M_script01_1_M001", "fru", "2.0000", "3.0000"),
        _iemocap_block("Ses02M_script01_1_F002", "xxx", "3.0000", "3.0000"),
        _iemocap_block("Ses02M_script01_1_M002", "ang", "1.5000", "4.0000"),
    ]
)


def _iemocap_tree(tmp_path: Path, shared: Path | None = None) -> Path:
    """IEMOCAP_full_release with Session2 (written here) and, given the shared samples, Session1."""
    release = tmp_path / "IEMOCAP_full_release"
    labels = {}
    if shared is not None:
        sample = shared / "formats" / "iemocap" / "IEMOCAP_full_release" / "Session1" / "dialog"
        shutil.copytree(sample / "EmoEvaluation", release / "Session1" / "dialog" / "EmoEvaluation")
        for path in sorted((release / "Session1" / "dialog" / "EmoEvaluation").glob("*.txt")):
            labels[path] = path.read_text(encoding="utf-8")
    session2 = release / "Session2" / "dialog" / "EmoEvaluation" / "Ses02M_script01_1.txt"
    session2.parent.mkdir(parents=True)
    session2.write_bytes(b"\xef\xbb\xbf" + SESSION2_FILE.replace("\n", "\r\n").encode("utf-8"))
    labels[session2] = SESSION2_FILE
    # Annotator files in the subfolders have another format; the loader must not read them.
    (session2.parent / "Categorical").mkdir()
    (session2.parent / "Categorical" / "Ses02M_script01_1_e1_cat.txt").write_text(
        "[broken]\tnot a label line\n"
    )
    for path, text in labels.items():
        session = path.parents[2].name
        for utterance in re.findall(r"^\[[^\]]*\]\t(\S+)\t", text, flags=re.MULTILINE):
            _audio(release / session / "sentences" / "wav" / path.stem / f"{utterance}.wav", seconds=0.05)
    return release


def test_iemocap_classes_speakers_and_binning_edges(tmp_path: Path) -> None:
    release = _iemocap_tree(tmp_path)
    manifest = loaders.load("iemocap", tmp_path)  # the parent of IEMOCAP_full_release works too
    assert manifest["utterance_id"].tolist() == [
        "Ses02M_script01_1_F000",
        "Ses02M_script01_1_M000",
        "Ses02M_script01_1_F001",
        "Ses02M_script01_1_M002",
    ]  # fru and xxx left out
    wav = release / "Session2" / "sentences" / "wav" / "Ses02M_script01_1"
    _check_fields(
        _row(manifest, "Ses02M_script01_1_F000"),
        emotion="happy",  # excited merged into happy
        valence=4.0,
        arousal=2.0001,
        valence_class="high",
        arousal_class="medium",
        speaker="2F",  # the speaker's letter, not the marker wearer's (M)
        gender="female",
        session="2",
        corpus="iemocap",
        path=str(wav / "Ses02M_script01_1_F000.wav"),
        label_original="exc",
    )
    _check_fields(
        _row(manifest, "Ses02M_script01_1_M000"),
        emotion="happy",
        valence_class="medium",
        arousal_class="low",
        speaker="2M",
        gender="male",
    )
    _check_fields(
        _row(manifest, "Ses02M_script01_1_F001"), emotion="sad", valence_class="low", arousal_class="high"
    )
    _check_fields(
        _row(manifest, "Ses02M_script01_1_M002"),
        emotion="angry",
        valence=1.5,
        arousal=4.0,
        valence_class="low",
        arousal_class="high",
    )
    assert manifest["start_s"].isna().all() and manifest["end_s"].isna().all()
    assert loaders.load("iemocap", release).equals(manifest)


def test_iemocap_all_labels_keeps_the_rest_unlabelled(tmp_path: Path) -> None:
    _iemocap_tree(tmp_path)
    manifest = loaders.load("iemocap", tmp_path, all_labels=True)
    assert len(manifest) == 6
    _check_fields(
        _row(manifest, "Ses02M_script01_1_M001"),
        emotion="",
        label_original="fru",
        valence_class="low",
        arousal_class="medium",
    )
    assert _row(manifest, "Ses02M_script01_1_F002")["label_original"] == "xxx"
    assert manifests.describe(manifest)["emotion"] == {"happy": 2, "(unlabeled)": 2, "sad": 1, "angry": 1}


def test_iemocap_missing_audio_is_an_error_or_skipped(tmp_path: Path, caplog) -> None:
    release = _iemocap_tree(tmp_path)
    (release / "Session2/sentences/wav/Ses02M_script01_1/Ses02M_script01_1_F001.wav").unlink()
    with pytest.raises(manifests.CorpusError, match="1 utterances have no audio file.*F001.wav"):
        loaders.load("iemocap", release)
    with caplog.at_level("WARNING", logger="serlib.data"):
        manifest = loaders.load("iemocap", release, allow_missing=True)
    assert "Ses02M_script01_1_F001" not in set(manifest["utterance_id"]) and len(manifest) == 3
    assert "skipped 1 utterances without audio" in caplog.text
    assert len(loaders.load("iemocap", release, check_files=False)) == 4


def test_iemocap_errors_name_the_folder_and_line(tmp_path: Path) -> None:
    with pytest.raises(manifests.CorpusError, match="no Session1..5 folders under .*IEMOCAP_full_release"):
        loaders.load("iemocap", tmp_path)
    release = _iemocap_tree(tmp_path)
    label_file = release / "Session2" / "dialog" / "EmoEvaluation" / "Ses02M_script01_1.txt"
    label_file.write_text(SESSION2_FILE + "[1.0 - 2.0]\tSes02M_script01_1_F009\tneu\t[2.5, 2.5]\n")
    with pytest.raises(manifests.CorpusError, match=r"Ses02M_script01_1.txt:33: cannot read"):
        loaders.load("iemocap", release)


def test_iemocap_release_label_files(shared_data: Path, tmp_path: Path) -> None:
    """The release's own Session1 label files (shared samples) with generated audio."""
    _iemocap_tree(tmp_path, shared=shared_data)
    manifest = loaders.load("iemocap", tmp_path)
    session1 = manifest[manifest["session"] == "1"]
    # Ses01F_impro01: 5 neu, 3 ang; Ses01F_script01_1: 21 neu, 6 ang; fru, xxx and sur are left out.
    assert session1["emotion"].value_counts().to_dict() == {"neutral": 26, "angry": 9}
    assert set(session1["speaker"]) == {"1F", "1M"}
    _check_fields(
        _row(manifest, "Ses01F_impro01_F000"),
        emotion="neutral",
        arousal=2.5,
        valence=2.5,
        arousal_class="medium",
        valence_class="medium",
        speaker="1F",
        gender="female",
        session="1",
    )
    _check_fields(
        _row(manifest, "Ses01F_impro01_M011"),  # [2.0000, 4.0000, 4.0000]: both on a bin edge
        emotion="angry",
        valence=2.0,
        arousal=4.0,
        valence_class="low",
        arousal_class="high",
        speaker="1M",
        gender="male",
    )
    for dropped in ("Ses01F_impro01_F003", "Ses01F_impro01_F006"):  # xxx, fru
        assert dropped not in set(manifest["utterance_id"])
    everything = loaders.load("iemocap", tmp_path, all_labels=True)
    assert len(everything[everything["session"] == "1"]) == 30 + 89


@pytest.mark.slow
def test_real_iemocap_gives_the_papers_counts() -> None:
    root = os.environ.get("IEMOCAP_ROOT")
    if not root or not Path(root).is_dir():
        pytest.skip("IEMOCAP_ROOT is not set to an IEMOCAP_full_release folder")
    manifest = loaders.load("iemocap", root)
    assert manifest["emotion"].value_counts().to_dict() == iemocap.IEMOCAP_PAPER_COUNTS
    assert len(manifest) == 5531
    assert manifest["session"].nunique() == 5 and manifest["speaker"].nunique() == 10


# -- MSP-IMPROV ------------------------------------------------------------------------------------
def _msp_block(name: str, label: str, arousal: str, valence: str) -> str:
    return (
        f"UTD-IMPROV-{name}.avi; {label}; A:{arousal}; V:{valence}; D:3.000000 ; N:3.000000;\n"
        "R1-S1; Neutral; Neutral; A:3.000000; V:3.000000; D:3.000000; N:3.000000;\n"
        "R2-S1; Angry; Frustrated; A:4.000000; V:2.000000; D:3.000000; N:3.000000;\n\n"
    )


MSP_FILE = "".join(
    [
        _msp_block("S01A-F01-S-FM01", "A", "4.200000", "1.800000"),
        _msp_block("S01H-M01-P-MF02", "H", "3.000000", "4.000000"),
        _msp_block("S02N-F03-R-FM01", "N", "2.000000", "3.000000"),
        _msp_block("S03S-M06-T-MF03", "S", "1.500000", "2.000100"),
        _msp_block("S04A-F02-P-FM05", "X", "3.000000", "3.000000"),
        _msp_block("S04A-F02-P-FM06", "O", "NaN", "NaN"),
    ]
)


def _msp_tree(tmp_path: Path, label_folder: str = "") -> Path:
    root = tmp_path / "MSP-IMPROV"
    (root / label_folder).mkdir(parents=True, exist_ok=True)
    (root / label_folder / "Evalution.txt").write_text(MSP_FILE)
    for name in re.findall(r"^UTD-IMPROV-(\S+)\.avi", MSP_FILE, flags=re.MULTILINE):
        session = int(name.split("-")[1][1:])
        _audio(
            root / "Audio" / f"session{session}" / name[:4] / name.split("-")[2] / f"MSP-IMPROV-{name}.wav",
            0.05,
        )
    return root


@pytest.mark.parametrize("label_folder", ["", "Evaluation"])
def test_msp_improv_classes_speakers_and_ratings(tmp_path: Path, label_folder: str) -> None:
    root = _msp_tree(tmp_path, label_folder)
    manifest = loaders.load("msp_improv", root)
    assert manifest["utterance_id"].tolist() == [
        "MSP-IMPROV-S01A-F01-S-FM01",
        "MSP-IMPROV-S01H-M01-P-MF02",
        "MSP-IMPROV-S02N-F03-R-FM01",
        "MSP-IMPROV-S03S-M06-T-MF03",
    ]
    _check_fields(
        _row(manifest, "MSP-IMPROV-S01A-F01-S-FM01"),
        emotion="angry",
        arousal=4.2,
        valence=1.8,
        arousal_class="high",
        valence_class="low",
        speaker="1F",
        session="1",
        gender="female",
        path=str(root / "Audio/session1/S01A/S/MSP-IMPROV-S01A-F01-S-FM01.wav"),
    )
    _check_fields(
        _row(manifest, "MSP-IMPROV-S01H-M01-P-MF02"), emotion="happy", speaker="1M", valence_class="high"
    )
    _check_fields(_row(manifest, "MSP-IMPROV-S02N-F03-R-FM01"), emotion="neutral", speaker="3F", session="3")
    _check_fields(
        _row(manifest, "MSP-IMPROV-S03S-M06-T-MF03"),
        emotion="sad",
        speaker="6M",
        session="6",
        gender="male",
        arousal_class="low",
        valence_class="medium",
    )
    everything = loaders.load("msp_improv", root, all_labels=True)
    assert everything["label_original"].tolist() == ["A", "H", "N", "S", "X", "O"]
    _check_fields(
        _row(everything, "MSP-IMPROV-S04A-F02-P-FM06"), emotion="", arousal=float("nan"), arousal_class=""
    )
    assert manifests.describe(manifest)["per_session"] == {"1": 2, "3": 1, "6": 1}


def test_msp_improv_strict_parser_and_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(manifests.CorpusError, match="no Evalution.txt .* or Evaluation.txt"):
        loaders.load("msp_improv", tmp_path)
    root = _msp_tree(tmp_path)
    (root / "Evalution.txt").write_text(MSP_FILE + "UTD-IMPROV-S05A-F05-P-FM01.avi; A; A:3.0; V:3.0;\n")
    with pytest.raises(manifests.CorpusError, match=r"Evalution.txt:25: cannot read"):
        loaders.load("msp_improv", root)
    (root / "Evalution.txt").write_text(MSP_FILE + "just text where a block should start\n")
    with pytest.raises(manifests.CorpusError, match=r"Evalution.txt:25"):
        loaders.load("msp_improv", root)
    (root / "Evalution.txt").write_text(MSP_FILE)
    next(root.rglob("MSP-IMPROV-S02N-F03-R-FM01.wav")).unlink()
    with pytest.raises(manifests.CorpusError, match="1 utterances have no audio"):
        loaders.load("msp_improv", root)
    assert len(loaders.load("msp_improv", root, allow_missing=True)) == 3
    _audio(root / "resampled" / "MSP-IMPROV-S01A-F01-S-FM01.wav", 0.05)
    with pytest.raises(manifests.CorpusError, match="1 utterances have more than one audio file"):
        loaders.load("msp_improv", root, allow_missing=True)


# -- TED-LIUM 2 ------------------------------------------------------------------------------------
def _stm_lines(talk: str, gender: str) -> str:
    return (
        f";; transcript of {talk}\n"
        f"{talk} 1 {talk} 0.00 0.31 <o,f0,{gender}> hello there\n"
        f"{talk} 1 inter_segment_gap 0.31 0.40 <o,,unknown> ignore_time_segment_in_scoring\n"
        f"{talk} 1 {talk} 0.40 0.95 <o,f0,{gender}> second segment\n"
        f"{talk} 1 {talk} 0.95 1.37 <o,f0,{gender}> third one\n"
    )


TALKS = {
    "train": ["AaronHuey_2010X", "AlGore_2009", "BillGates_2010", "JaneDoe_2011", "ZoeSmith_2012"],
    "dev": ["DevTalk_2010"],
    "test": ["TestTalk_2011"],
}


def _tedlium_tree(tmp_path: Path) -> Path:
    release = tmp_path / "TEDLIUM_release2"
    for split, talks in TALKS.items():
        for index, talk in enumerate(talks):
            (release / split / "stm").mkdir(parents=True, exist_ok=True)
            gender = "female" if index % 2 else "male"
            (release / split / "stm" / f"{talk}.stm").write_text(_stm_lines(talk, gender))
            _audio(release / split / "sph" / f"{talk}.sph", seconds=1.5, format="NIST")
    return release


def test_tedlium2_segments_from_stm(tmp_path: Path) -> None:
    release = _tedlium_tree(tmp_path)
    manifest = loaders.load("tedlium2", tmp_path)  # parent of TEDLIUM_release2
    assert len(manifest) == 5 * 3  # train only; the ignore_time_segment_in_scoring gap dropped
    talk = manifest[manifest["session"] == "AlGore_2009"]
    assert talk["utterance_id"].tolist() == [
        "AlGore_2009-0000000-0000031",
        "AlGore_2009-0000040-0000095",
        "AlGore_2009-0000095-0000137",
    ]
    assert talk["start_s"].tolist() == [0.0, 0.40, 0.95]
    assert talk["end_s"].tolist() == [0.31, 0.95, 1.37]
    assert set(talk["speaker"]) == {"AlGore_2009"} and set(talk["gender"]) == {"female"}
    assert set(talk["path"]) == {str(release / "train" / "sph" / "AlGore_2009.sph")}
    assert (manifest["emotion"] == "").all() and (manifest["arousal_class"] == "").all()
    assert manifests.describe(manifest)["hours_of_segments"] == pytest.approx(5 * (0.31 + 0.55 + 0.42) / 3600)
    info = sf.info(str(release / "train" / "sph" / "AlGore_2009.sph"))  # the .sph is readable audio
    assert info.samplerate == 16000 and info.frames == 24000
    both = loaders.load("tedlium2", release, splits=["train", "dev"])
    assert len(both) == 6 * 3 and "DevTalk_2010" in set(both["session"])


def test_tedlium2_talk_subset_is_seeded_and_deterministic(tmp_path: Path) -> None:
    release = _tedlium_tree(tmp_path)
    first = loaders.load("tedlium2", release, talks=2)
    again = loaders.load("tedlium2", release, talks=2)
    pd.testing.assert_frame_equal(first, again)
    expected = sorted(random.Random(0).sample(sorted(TALKS["train"]), 2))  # the documented rule
    assert sorted(set(first["session"])) == expected and len(first) == 2 * 3
    subsets = {
        tuple(sorted(set(loaders.load("tedlium2", release, talks=2, seed=s)["session"]))) for s in range(6)
    }
    assert len(subsets) > 1  # the seed matters
    assert set(loaders.load("tedlium2", release, talks=5)["session"]) == set(TALKS["train"])
    with pytest.raises(manifests.CorpusError, match="talks=6 but only 5 talks"):
        loaders.load("tedlium2", release, talks=6)


def test_tedlium2_errors(tmp_path: Path) -> None:
    with pytest.raises(manifests.CorpusError, match="point root at TEDLIUM_release2"):
        loaders.load("tedlium2", tmp_path)
    release = _tedlium_tree(tmp_path)
    with pytest.raises(manifests.CorpusError, match="splits"):
        loaders.load("tedlium2", release, splits=["training"])
    (release / "train" / "sph" / "ZoeSmith_2012.sph").unlink()
    with pytest.raises(manifests.CorpusError, match="3 utterances have no audio"):
        loaders.load("tedlium2", release)
    (release / "train" / "stm" / "BillGates_2010.stm").write_text(
        "BillGates_2010 1 BillGates_2010 zero 1.0 <o>\n"
    )
    with pytest.raises(manifests.CorpusError, match=r"BillGates_2010.stm:1"):
        loaders.load("tedlium2", release, allow_missing=True)


# -- LibriSpeech -----------------------------------------------------------------------------------
SPEAKERS_TXT = """; Some pipe(|) separated metadata about all LibriVox readers
;ID  |SEX| SUBSET           |MINUTES| NAME
19   | F | train-clean-100  | 25.19 | Kara Shallenberg
26   | M | train-clean-100  | 25.08 | Denny Sayers
84   | F | dev-clean        | 8.02 | Christie Nowak
"""
LIBRI_FILES = {  # utterance -> seconds
    "train-clean-100/19/198/19-198-0000": 1.0,
    "train-clean-100/19/198/19-198-0001": 2.0,
    "train-clean-100/26/495/26-495-0000": 1.5,
    "train-clean-100/26/496/26-496-0003": 0.5,
    "train-clean-100/27/124/27-124-0000": 1.0,
    "dev-clean/84/121123/84-121123-0000": 0.5,
}


def _librispeech_tree(tmp_path: Path) -> Path:
    folder = tmp_path / "LibriSpeech"
    folder.mkdir()
    (folder / "SPEAKERS.TXT").write_text(SPEAKERS_TXT)
    for name, seconds in LIBRI_FILES.items():
        _audio(folder / f"{name}.flac", seconds=seconds, format="FLAC")
    return folder


def test_librispeech_speakers_sessions_and_subsets(tmp_path: Path) -> None:
    folder = _librispeech_tree(tmp_path)
    manifest = loaders.load("librispeech", tmp_path)  # parent of LibriSpeech
    assert manifest["utterance_id"].tolist() == [
        "84-121123-0000",
        "19-198-0000",
        "19-198-0001",
        "26-495-0000",
        "26-496-0003",
        "27-124-0000",
    ]
    _check_fields(
        _row(manifest, "26-496-0003"),
        speaker="26",
        session="496",
        gender="male",
        emotion="",
        path=str(folder / "train-clean-100/26/496/26-496-0003.flac"),
    )
    assert _row(manifest, "84-121123-0000")["gender"] == "female"
    assert _row(manifest, "27-124-0000")["gender"] == ""  # not in SPEAKERS.TXT
    train = loaders.load("librispeech", folder, subsets=["train-clean-100"])
    assert len(train) == 5 and manifests.describe(train, audio_hours=True)["hours"] == pytest.approx(
        6.0 / 3600
    )
    with pytest.raises(
        manifests.CorpusError, match=r"subsets \['train-other-500'\] not found; present: dev-clean"
    ):
        loaders.load("librispeech", folder, subsets=["train-other-500"])


def test_librispeech_hours_subset_is_the_shortest_seeded_prefix(tmp_path: Path) -> None:
    folder = _librispeech_tree(tmp_path)
    hours = 2.2 / 3600
    chosen = loaders.load("librispeech", folder, subsets=["train-clean-100"], hours=hours, seed=3)
    pd.testing.assert_frame_equal(
        chosen, loaders.load("librispeech", folder, subsets=["train-clean-100"], hours=hours, seed=3)
    )
    seconds = {name.rsplit("/", 1)[1]: length for name, length in LIBRI_FILES.items() if "train" in name}
    order = sorted(seconds)
    random.Random(3).shuffle(order)  # the documented rule: shuffle the sorted ids, take until H hours
    total, expected = 0.0, []
    for utterance in order:
        if total >= 2.2:
            break
        expected.append(utterance)
        total += seconds[utterance]
    assert chosen["utterance_id"].tolist() == sorted(expected)
    kept = sum(seconds[u] for u in chosen["utterance_id"])
    assert kept >= 2.2 and kept - seconds[expected[-1]] < 2.2
    with pytest.raises(manifests.CorpusError, match="hold only 0.00 h"):
        loaders.load("librispeech", folder, subsets=["train-clean-100"], hours=1.0)


def test_librispeech_shared_excerpts(shared_data: Path) -> None:
    manifest = loaders.load("librispeech", shared_data / "librispeech")
    assert len(manifest) == 351 and manifest["speaker"].nunique() == 261
    assert manifest["gender"].value_counts().to_dict() == {"male": 176, "female": 175}
    train = loaders.load("librispeech", shared_data / "librispeech", subsets=["train-clean-100"])
    assert len(train) == 251


# -- Emo-DB ----------------------------------------------------------------------------------------
EMODB_FIXTURE = ["03a01Wa", "03a01Fa", "08a02Nb", "09b01Tc", "10a04La", "13b10Ea", "16a05Ab", "15b03Wc"]


def _emodb_tree(tmp_path: Path) -> Path:
    root = tmp_path / "emodb"
    for name in EMODB_FIXTURE:
        _audio(root / "wav" / f"{name}.wav", seconds=0.05)
    _audio(root / "wav" / "readme.wav", seconds=0.05)
    return root


def test_emodb_fixture_tree(tmp_path: Path) -> None:
    root = _emodb_tree(tmp_path)
    manifest = loaders.load("emodb", root)
    assert manifest["utterance_id"].tolist() == ["03a01Fa", "03a01Wa", "08a02Nb", "09b01Tc", "15b03Wc"]
    _check_fields(
        _row(manifest, "03a01Wa"),
        emotion="angry",
        speaker="03",
        gender="male",
        session="1",
        arousal_class="high",
        valence_class="low",
        label_original="anger",
        path=str(root / "wav" / "03a01Wa.wav"),
    )
    _check_fields(_row(manifest, "03a01Fa"), emotion="happy", arousal_class="high", valence_class="high")
    _check_fields(_row(manifest, "08a02Nb"), emotion="neutral", gender="female", session="1")
    _check_fields(
        _row(manifest, "09b01Tc"), emotion="sad", session="2", arousal_class="low", valence_class="low"
    )
    _check_fields(_row(manifest, "15b03Wc"), session="5", gender="male")
    assert manifest["arousal"].isna().all()  # classes only: Emo-DB has no dimensional ratings
    everything = loaders.load("emodb", root / "wav", all_emotions=True)
    assert len(everything) == len(EMODB_FIXTURE)
    _check_fields(
        _row(everything, "10a04La"), emotion="", label_original="boredom", arousal_class="", session="2"
    )
    assert everything["label_original"].tolist().count("fear") == 1
    assert loaders.load("emodb", root, all_labels=True).equals(everything.assign(path=everything["path"]))


def test_emodb_errors(tmp_path: Path) -> None:
    with pytest.raises(manifests.CorpusError, match="no .wav files"):
        loaders.load("emodb", tmp_path)
    _audio(tmp_path / "wav" / "07a01Wa.wav", seconds=0.05)
    with pytest.raises(manifests.CorpusError, match="speaker 07 is not one of Emo-DB's"):
        loaders.load("emodb", tmp_path)


def test_emodb_sessions_pair_one_female_with_one_male() -> None:
    sessions: dict[str, list[str]] = {}
    for speaker, session in emodb_module.EMODB_SESSIONS.items():
        sessions.setdefault(session, []).append(emodb_module.EMODB_SPEAKER_SEX[speaker])
    assert sorted(sessions) == ["1", "2", "3", "4", "5"]
    assert all(sorted(sexes) == ["female", "male"] for sexes in sessions.values())


def test_emodb_shared_copy(shared_data: Path) -> None:
    manifest = loaders.load("emodb", shared_data / "emodb")
    assert manifest["emotion"].value_counts().to_dict() == {
        "angry": 127,
        "neutral": 79,
        "happy": 71,
        "sad": 62,
    }
    assert len(manifest) == 339 and manifest["speaker"].nunique() == 10
    assert manifest.groupby("session")["gender"].nunique().to_dict() == {str(s): 2 for s in range(1, 6)}
    everything = loaders.load("emodb", shared_data / "emodb", all_emotions=True)
    assert len(everything) == 535 and everything["label_original"].nunique() == 7
    reference = pd.read_csv(shared_data / "emodb" / "manifest.csv", dtype=str)  # the copy's own metadata
    sexes = dict(zip(reference["file"].str[4:-4], reference["sex"], strict=True))
    assert all(sexes[u] == g for u, g in zip(everything["utterance_id"], everything["gender"], strict=True))
    assert manifests.describe(everything)["utterances"] == 535


# -- RAVDESS ---------------------------------------------------------------------------------------
def test_ravdess_fixture_tree(tmp_path: Path) -> None:
    root = tmp_path / "ravdess"
    names = {
        "Actor_01": [
            "03-01-01-01-01-01-01",
            "03-01-05-02-01-01-01",
            "03-01-02-01-01-01-01",
            "03-02-03-01-01-01-01",
        ],
        "Actor_02": ["03-01-03-01-02-02-02", "03-01-04-02-01-01-02", "03-01-08-01-01-01-02"],
        "Actor_03": ["03-01-04-01-01-01-03"],
    }
    for actor, files in names.items():
        for name in files:
            _audio(root / "wav" / actor / f"{name}.wav", seconds=0.05)
    manifest = loaders.load("ravdess", root)
    assert manifest["utterance_id"].tolist() == [
        "03-01-01-01-01-01-01",
        "03-01-05-02-01-01-01",
        "03-01-03-01-02-02-02",
        "03-01-04-02-01-01-02",
        "03-01-04-01-01-01-03",
    ]  # calm, surprised and the song file (vocal channel 02) are left out
    _check_fields(
        _row(manifest, "03-01-05-02-01-01-01"),
        emotion="angry",
        speaker="01",
        gender="male",
        session="1",
        arousal_class="high",
        valence_class="low",
    )
    _check_fields(
        _row(manifest, "03-01-03-01-02-02-02"), emotion="happy", speaker="02", gender="female", session="1"
    )
    _check_fields(_row(manifest, "03-01-04-01-01-01-03"), emotion="sad", gender="male", session="2")
    _check_fields(_row(manifest, "03-01-01-01-01-01-01"), emotion="neutral", arousal_class="medium")
    everything = loaders.load("ravdess", root / "wav", all_labels=True)
    assert sorted(everything["label_original"]) == [
        "angry",
        "calm",
        "happy",
        "neutral",
        "sad",
        "sad",
        "surprised",
    ]
    _audio(root / "wav" / "Actor_03" / "03-01-04-01-01-01-04.wav", seconds=0.05)
    with pytest.raises(manifests.CorpusError, match="actor 04 in the name but the file is in Actor_03"):
        loaders.load("ravdess", root)
    with pytest.raises(manifests.CorpusError, match="no Actor_XX folders"):
        loaders.load("ravdess", tmp_path / "nothing")


def test_ravdess_shared_actors(shared_data: Path) -> None:
    manifest = loaders.load("ravdess", shared_data / "ravdess")
    assert manifest["emotion"].value_counts().to_dict() == {
        "happy": 64,
        "sad": 64,
        "angry": 64,
        "neutral": 32,
    }
    assert manifest["speaker"].nunique() == 8 and len(manifest) == 224
    assert manifest.groupby("session")["gender"].nunique().to_dict() == {str(s): 2 for s in range(1, 5)}
    assert (manifest.groupby("speaker").size() == 28).all()


# -- configuration -----------------------------------------------------------------------------------
def test_configured_corpus_key_and_options(tmp_path: Path) -> None:
    root = _emodb_tree(tmp_path)
    config = config_module.from_dict(
        {
            "corpora": {"berlin": {"type": "emodb", "root": str(root), "options": {"all_emotions": True}}},
            "protocol": {"within_corpus": "berlin", "cross_corpus_train": None, "cross_corpus_test": None},
        }
    )
    manifest = loaders.load_configured(config, "berlin")
    assert len(manifest) == len(EMODB_FIXTURE) and set(manifest["corpus"]) == {"berlin"}


# -- nEMO ------------------------------------------------------------------------------------------
NEMO_HEADER = "file_id\temotion\traw_text\tnormalized_text\tspeaker_id\tgender\tage"
NEMO_FIXTURE = (
    ("EB0_anger_1.ogg", "anger", "EB0", "female"),
    ("EB0_sadness_2.ogg", "sadness", "EB0", "female"),
    ("KS0_happiness_1.ogg", "happiness", "KS0", "male"),
    ("KS0_fear_3.ogg", "fear", "KS0", "male"),
    ("MP0_neutral_4.ogg", "neutral", "MP0", "male"),
    ("MP0_surprised_5.ogg", "surprised", "MP0", "male"),
)


def _nemo_tree(tmp_path: Path, lines: list[str] | None = None) -> Path:
    """nEMO's layout: data.tsv and samples/<file_id> as Ogg/Opus at 16 kHz (as the shared copy)."""
    root = tmp_path / "nemo"
    rows = (
        lines
        if lines is not None
        else [
            f"{name}\t{emotion}\tZdanie.\tzdanie\t{speaker}\t{gender}\t25"
            for name, emotion, speaker, gender in NEMO_FIXTURE
        ]
    )
    root.mkdir(parents=True)
    (root / "data.tsv").write_text("\n".join([NEMO_HEADER, *rows]) + "\n", encoding="utf-8")
    for name, *_ in NEMO_FIXTURE:
        _audio(root / "samples" / name, seconds=0.5, format="OGG", subtype="OPUS")
    return root


def test_nemo_fixture_tree(tmp_path: Path) -> None:
    root = _nemo_tree(tmp_path)
    manifest = loaders.load("nemo", root)
    assert manifest["utterance_id"].tolist() == [
        "EB0_anger_1",
        "EB0_sadness_2",
        "KS0_happiness_1",
        "MP0_neutral_4",
    ]
    _check_fields(
        _row(manifest, "EB0_anger_1"),
        emotion="angry",
        speaker="EB0",
        session="EB0",
        gender="female",
        arousal_class="high",
        valence_class="low",
        label_original="anger",
        text="zdanie",
        path=str(root / "samples" / "EB0_anger_1.ogg"),
    )
    _check_fields(_row(manifest, "KS0_happiness_1"), emotion="happy", gender="male", session="KS0")
    _check_fields(_row(manifest, "EB0_sadness_2"), emotion="sad", arousal_class="low")
    everything = loaders.load("nemo", root, all_labels=True)
    assert len(everything) == 6
    _check_fields(_row(everything, "KS0_fear_3"), emotion="", label_original="fear", arousal_class="")
    assert sorted(everything["session"].unique()) == ["EB0", "KS0", "MP0"]  # one fold per speaker


def test_nemo_errors_name_the_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(manifests.CorpusError, match="no data.tsv in"):
        loaders.load("nemo", tmp_path)
    bad = ["EB0_anger_1.ogg\tjoy\tZ.\tz\tEB0\tfemale\t25"]
    with pytest.raises(manifests.CorpusError, match=r"data.tsv:2: unknown emotion 'joy'"):
        loaders.load("nemo", _nemo_tree(tmp_path / "a", bad))
    twice = ["EB0_anger_1.ogg\tanger\tZ.\tz\tEB0\tfemale\t25"] * 2
    with pytest.raises(manifests.CorpusError, match=r"data.tsv:3: EB0_anger_1.ogg is listed twice"):
        loaders.load("nemo", _nemo_tree(tmp_path / "b", twice))
    absent = ["XX0_anger_9.ogg\tanger\tZ.\tz\tXX0\tmale\t25"]
    with pytest.raises(manifests.CorpusError, match="1 utterances have no audio file"):
        loaders.load("nemo", _nemo_tree(tmp_path / "c", absent))
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "data.tsv").write_text("file\temotion\n", encoding="utf-8")
    with pytest.raises(manifests.CorpusError, match="missing columns"):
        loaders.load("nemo", tmp_path / "d")


def test_nemo_shared_copy(shared_data: Path) -> None:
    if not (shared_data / "nemo").is_dir():
        pytest.skip("no nemo/ in SERLIB_DATA")
    manifest = loaders.load("nemo", shared_data / "nemo")
    assert manifest["emotion"].value_counts().to_dict() == {
        "neutral": 809,
        "sad": 769,
        "angry": 749,
        "happy": 749,
    }
    assert manifest["speaker"].nunique() == 9 and manifest["session"].nunique() == 9
    assert manifest.groupby("gender")["speaker"].nunique().to_dict() == {"female": 4, "male": 5}
    everything = loaders.load("nemo", shared_data / "nemo", all_labels=True)
    assert len(everything) == nemo_module.NEMO_COUNTS["utterances"] == 4481


# -- segments and unions ------------------------------------------------------------------------------
def test_segment_option_splits_every_loader_s_rows(tmp_path: Path) -> None:
    root = tmp_path / "emodb"
    _audio(root / "wav" / "03a01Wa.wav", seconds=5.3)  # 2 + 2 + 1.3 s: the tail is kept (>= 1 s)
    _audio(root / "wav" / "08a02Nb.wav", seconds=0.7)  # shorter than half a piece: kept whole
    manifest = loaders.load("emodb", root, segment_s=2.0)
    assert manifest["utterance_id"].tolist() == ["03a01Wa_0", "03a01Wa_1", "03a01Wa_2", "08a02Nb_0"]
    np.testing.assert_allclose(manifest["start_s"], [0.0, 2.0, 4.0, 0.0])
    np.testing.assert_allclose(manifest["end_s"], [2.0, 4.0, 5.3, 0.7])
    assert set(manifest["emotion"]) == {"angry", "neutral"}  # the rows keep their labels
    with pytest.raises(manifests.CorpusError, match="its options are all_labels, all_emotions, segment_s"):
        loaders.load("emodb", root, segments=2.0)


def test_union_joins_configured_corpora_with_prefixed_ids(tmp_path: Path) -> None:
    emodb = _emodb_tree(tmp_path)
    nemo = _nemo_tree(tmp_path)
    config = config_module.from_dict(
        {
            "corpora": {
                "berlin": {"type": "emodb", "root": str(emodb)},
                "polish": {"type": "nemo", "root": str(nemo), "options": {"all_labels": True}},
                "both": {"type": "union", "options": {"parts": ["berlin", "polish"], "segment_s": 0.2}},
            },
            "protocol": {"within_corpus": "berlin", "cross_corpus_train": None, "cross_corpus_test": None},
        }
    )
    both = loaders.load_configured(config, "both")
    assert set(both["corpus"]) == {"both"}
    assert both["utterance_id"].str.startswith(("berlin:", "polish:")).all()
    assert (
        both["utterance_id"].str.startswith("polish:")
    ).sum() == 6 * 2  # 0.5 s -> 0.2 + 0.2 (+0.1 dropped)
    assert "polish:KS0_fear_3_1" in set(both["utterance_id"])
    with pytest.raises(config_module.ConfigError, match="a union cannot contain a union"):
        config_module.from_dict(
            {
                "corpora": {
                    "a": {"type": "union", "options": {"parts": ["b"]}},
                    "b": {"type": "union", "options": {"parts": ["a"]}},
                },
                "protocol": {"within_corpus": None, "cross_corpus_train": None, "cross_corpus_test": None},
            }
        )

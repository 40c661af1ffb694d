"""The offline demo corpus: determinism, balance, schema, caching, speech-likeness and emotion acoustics."""

from __future__ import annotations

import hashlib
import wave
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from serlib.app import cli
from serlib.data import loaders
from serlib.data import manifest as manifests
from serlib.data.demo import design, generator, speech

TINY = {
    "labeled_sessions": 5,
    "utterances_per_speaker_emotion": 1,
    "cross_sessions": 2,
    "cross_utterances_per_speaker_emotion": 1,
    "unlabeled_talks": 3,
    "unlabeled_utterances": 9,
    "books_readers": 2,
    "books_utterances": 4,
}


def _hashes(root: Path) -> dict[str, str]:
    files = sorted(p for p in root.rglob("*") if p.suffix in (".wav", ".csv"))
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _read(path: str | Path) -> np.ndarray:
    with wave.open(str(path), "rb") as handle:
        assert handle.getframerate() == speech.SAMPLE_RATE
        assert handle.getsampwidth() == 2 and handle.getnchannels() == 1
        data = handle.readframes(handle.getnframes())
    return np.frombuffer(data, dtype="<i2").astype(np.float64) / 32768.0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "a"
    generator.generate(root, seed=0, **TINY)
    return root


@pytest.fixture(scope="module")
def labeled(corpus: Path) -> pd.DataFrame:
    manifest = loaders.load("demo", corpus, part="labeled")
    details = pd.read_csv(corpus / "labeled" / "utterances.csv")
    return manifest.merge(details, on="utterance_id", validate="one_to_one")


def test_espeak_is_used_when_available(corpus: Path) -> None:
    details = pd.read_csv(corpus / "labeled" / "utterances.csv")
    expected = "espeak" if speech.espeak_available() else "numpy"
    assert set(details["engine"]) == {expected}


@pytest.fixture(scope="module")
def cached(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second generation with the same seed, through ``ensure`` (the ensure test later changes its seed)."""
    root = tmp_path_factory.mktemp("demo") / "cached"
    generator.ensure(root, seed=0, **TINY)
    return root


def test_same_seed_gives_identical_bytes(corpus: Path, cached: Path) -> None:
    first, second = _hashes(corpus), _hashes(cached)
    assert len(first) > 60 and first == second


def test_parts_validate_and_follow_the_schema(corpus: Path) -> None:
    sizes = {**generator.DEFAULT_SIZES, **TINY}
    expected = {
        "labeled": 5 * 2 * 4,
        "cross": 2 * 2 * 4,
        "unlabeled": sizes["unlabeled_utterances"],
        "unlabeled_books": sizes["books_utterances"],
    }
    for part, count in expected.items():
        raw = pd.read_csv(corpus / part / "manifest.csv", dtype=str, keep_default_na=False)
        assert not any(Path(p).is_absolute() for p in raw["path"]), "manifest paths must be relative"
        manifest = manifests.validate(manifests.read_manifest(corpus / part / "manifest.csv"))
        assert len(manifest) == count
        for path, row in zip(manifest["path"], manifest.itertuples(), strict=True):
            relative = Path(path).relative_to((corpus / part).resolve())
            assert relative.parts == (row.session, row.speaker, f"{row.utterance_id}.wav")
        assert set(manifest["gender"]) <= set(manifests.GENDERS)
        if part in ("unlabeled", "unlabeled_books"):
            assert (manifest["emotion"] == "").all() and manifest["arousal"].isna().all()


def test_labeled_structure_balance_and_ratings(labeled: pd.DataFrame) -> None:
    assert sorted(labeled["session"].unique()) == ["1", "2", "3", "4", "5"]
    speakers = labeled.groupby("speaker")["gender"].agg(set)
    assert sorted(speakers.index) == [f"{s}{g}" for s in range(1, 6) for g in "FM"]
    assert all(genders == {"female" if name.endswith("F") else "male"} for name, genders in speakers.items())
    counts = labeled.groupby(["speaker", "emotion"]).size()
    assert len(counts) == 10 * 4 and counts.nunique() == 1
    assert labeled["voice"].nunique() == 10
    for column in ("arousal", "valence"):
        assert labeled[column].between(1, 5).all()
        assert (labeled[f"{column}_class"] == [manifests.level(v) for v in labeled[column]]).all()
    means = labeled.groupby("emotion")[["arousal", "valence"]].mean()
    assert means.loc["angry", "arousal"] > means.loc["neutral", "arousal"] > means.loc["sad", "arousal"]
    assert means.loc["happy", "valence"] > means.loc["neutral", "valence"] > means.loc["angry", "valence"]


def test_cross_corpus_uses_other_voices_and_sentences(corpus: Path, labeled: pd.DataFrame) -> None:
    cross = pd.read_csv(corpus / "cross" / "utterances.csv")
    assert not set(cross["voice"]) & set(labeled["voice"])
    assert not set(cross["text"].str.rstrip(".!?")) & set(labeled["text"].str.rstrip(".!?"))
    unlabeled = pd.read_csv(corpus / "unlabeled" / "utterances.csv")
    assert not set(unlabeled["voice"]) & set(labeled["voice"])


def test_durations_within_one_to_four_seconds(corpus: Path) -> None:
    for part in generator.PARTS:
        manifest = manifests.read_manifest(corpus / part / "manifest.csv")
        seconds = [len(_read(p)) / speech.SAMPLE_RATE for p in manifest["path"]]
        assert min(seconds) >= 1.0 and max(seconds) <= 4.0, part


def _frames(x: np.ndarray, size: int = 441) -> np.ndarray:
    count = len(x) // size
    return x[: count * size].reshape(count, size)


def _periodicity(x: np.ndarray, rate: int) -> float:
    """Median over the 8 loudest frames of the best normalised autocorrelation at a 60-500 Hz pitch lag."""
    window, longest = 512, rate // 60
    frames = _frames(x, window + longest)
    values = []
    for frame in frames[np.argsort(-np.mean(frames**2, axis=1))[:8]]:
        head = frame[:window] - frame[:window].mean()
        best = 0.0
        for lag in range(rate // 500, longest):
            shifted = frame[lag : lag + window] - frame[lag : lag + window].mean()
            best = max(best, float(head @ shifted / np.sqrt((head @ head) * (shifted @ shifted) + 1e-12)))
        values.append(best)
    return float(np.median(values))


def _pause_fraction(x: np.ndarray) -> float:
    """Fraction of 20 ms frames more than 20 dB below the loudest frame."""
    energy_db = 10 * np.log10(np.mean(_frames(x) ** 2, axis=1) + 1e-12)
    return float(np.mean(energy_db - energy_db.max() < -20))


def test_audio_is_speech_like_not_noise(labeled: pd.DataFrame) -> None:
    rate = speech.SAMPLE_RATE
    for path in labeled["path"][::4]:
        x = _read(path)
        assert _pause_fraction(x) > 0.05, "no pauses"
        energy_db = 10 * np.log10(np.mean(_frames(x) ** 2, axis=1) + 1e-12)
        assert np.mean(energy_db - energy_db.max() > -15) > 0.2, "no voiced stretches"
        spectrum = np.abs(np.fft.rfft(x)) ** 2
        centroid = float(np.sum(np.fft.rfftfreq(len(x), 1 / rate) * spectrum) / np.sum(spectrum))
        assert centroid < 2500, centroid
        assert _periodicity(x, rate) > 0.5, "the loudest frames are not voiced"
    noise = np.random.default_rng(0).standard_normal(rate * 2) * 0.1  # the criteria reject noise
    assert _pause_fraction(noise) == 0 and _periodicity(noise, rate) < 0.3


def test_emotions_differ_acoustically_in_the_expected_direction(labeled: pd.DataFrame) -> None:
    labeled = labeled.assign(
        rms_db=[10 * np.log10(np.mean(_read(p) ** 2)) for p in labeled["path"]],
        seconds_per_word=labeled["speech_seconds"] / labeled["text"].str.split().str.len(),
    )
    means = labeled.groupby("emotion")[["rms_db", "seconds_per_word", "pitch", "pitch_range"]].mean()
    assert means.loc["angry", "rms_db"] > means.loc["neutral", "rms_db"] > means.loc["sad", "rms_db"]
    assert means.loc["sad", "seconds_per_word"] > means.loc["neutral", "seconds_per_word"]
    assert means.loc["sad", "seconds_per_word"] > means.loc["angry", "seconds_per_word"]
    assert means.loc["happy", "pitch"] > means.loc["neutral", "pitch"] > means.loc["sad", "pitch"]
    assert (
        means.loc["sad", "pitch_range"]
        < means.loc["neutral", "pitch_range"]
        < means.loc["angry", "pitch_range"]
    )


def test_limit_is_a_speaker_balanced_subset(corpus: Path) -> None:
    full = loaders.load("demo", corpus, part="unlabeled")
    small = loaders.load("demo", corpus, part="unlabeled", limit=5)
    smaller = loaders.load("demo", corpus, part="unlabeled", limit=3)
    assert len(small) == 5 and len(smaller) == 3
    assert set(smaller["utterance_id"]) <= set(small["utterance_id"]) <= set(full["utterance_id"])
    assert smaller["speaker"].nunique() == 3
    assert len(loaders.load("demo", corpus, part="unlabeled", limit=10_000)) == len(full)


def test_loader_rejects_unknown_part_and_bad_limit(corpus: Path) -> None:
    with pytest.raises(manifests.CorpusError, match="labeled, cross, unlabeled, unlabeled_books"):
        loaders.load("demo", corpus, part="books")
    with pytest.raises(manifests.CorpusError, match="limit"):
        loaders.load("demo", corpus, part="labeled", limit=0)


def test_bad_parameters_are_named() -> None:
    with pytest.raises(design.DemoCorpusError, match="utterances_per_emotion"):
        generator.generate("/nonexistent", utterances_per_emotion=3)
    with pytest.raises(design.DemoCorpusError, match="books_utterances"):
        generator.generate("/nonexistent", books_utterances=0)


def test_ensure_regenerates_only_when_parameters_change(corpus: Path, cached: Path) -> None:
    root = cached
    paths = {part: root / part / "manifest.csv" for part in generator.PARTS}
    stamp = paths["labeled"].stat().st_mtime_ns
    assert generator.ensure(root, seed=0, **TINY) == paths
    assert paths["labeled"].stat().st_mtime_ns == stamp
    generator.ensure(root, seed=1, **TINY)
    assert paths["labeled"].stat().st_mtime_ns != stamp
    changed = _hashes(root)
    assert changed.keys() == _hashes(corpus).keys()
    differing = [k for k in changed if k.endswith(".wav") and changed[k] != _hashes(corpus)[k]]
    assert len(differing) == sum(k.endswith(".wav") for k in changed), "a new seed must change every file"
    assert not list(root.parent.glob(".*tmp*")), "no staging folder left behind"


def test_ensure_refuses_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(design.DemoCorpusError, match="not a serlib demo corpus"):
        generator.ensure(tmp_path / "mine", **TINY)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_numpy_fallback_produces_valid_speech_like_audio(tmp_path: Path) -> None:
    sizes = {
        **TINY,
        "labeled_sessions": 1,
        "cross_sessions": 1,
        "unlabeled_utterances": 3,
        "books_utterances": 2,
    }
    paths = generator.generate(tmp_path / "numpy", seed=3, engine="numpy", **sizes)
    manifest = manifests.read_manifest(paths["labeled"])
    assert len(manifest) == 8 and set(pd.read_csv(paths["labeled"].parent / "utterances.csv")["engine"]) == {
        "numpy"
    }
    levels = {}
    for row in manifest.itertuples():
        x = _read(row.path)
        assert 1.0 <= len(x) / speech.SAMPLE_RATE <= 4.0
        assert _pause_fraction(x) > 0.05 and _periodicity(x, speech.SAMPLE_RATE) > 0.5
        levels[row.emotion] = 10 * np.log10(np.mean(x**2))
    assert levels["angry"] > levels["sad"]
    again = generator.generate(tmp_path / "numpy2", seed=3, engine="numpy", **sizes)
    assert _hashes(paths["labeled"].parent) == _hashes(again["labeled"].parent)


def test_cli_writes_a_valid_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(generator, "DEFAULT_SIZES", {**generator.DEFAULT_SIZES, **TINY})
    assert cli.main(["demo-corpus", "--out", str(tmp_path / "cli"), "--seed", "2"]) == 0
    assert "labeled" in capsys.readouterr().out
    manifest = manifests.read_manifest(tmp_path / "cli" / "labeled" / "manifest.csv")
    manifests.validate(manifest)
    assert len(manifest) == 40


def test_auto_engine_falls_back_to_numpy_with_a_warning(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    monkeypatch.setattr(generator, "espeak_available", lambda: False)
    with caplog.at_level("WARNING", logger="serlib.data.demo"):
        assert generator._resolve_engine("auto") == "numpy"
    assert "falls back to the numpy" in caplog.text
    with pytest.raises(design.DemoCorpusError, match="espeakng-loader"):
        generator._resolve_engine("espeak")

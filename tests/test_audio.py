"""serlib.audio: reading, segments, mono mix, resampling to 16 kHz, and clear errors naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from serlib.data import audio
from serlib.data.audio import AudioError


def _sine(frequency: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return amplitude * np.sin(2 * np.pi * frequency * t)


def _peak_hz(signal: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return float(np.fft.rfftfreq(len(signal), 1 / rate)[np.argmax(spectrum)])


def test_int16_wav_is_float32_in_unit_range(tmp_path: Path) -> None:
    samples = np.array([0, 16384, -32768, 32767, -1] * 200, dtype=np.int16)
    path = tmp_path / "a.wav"
    sf.write(path, samples, 16000, subtype="PCM_16")
    signal, rate = audio.load(path)
    assert rate == 16000 and signal.dtype == np.float32 and signal.shape == (1000,)
    np.testing.assert_array_equal(signal, samples.astype(np.float32) / 32768)


@pytest.mark.parametrize("native_rate", [22050, 44100, 48000])
def test_resampling_keeps_frequency_and_amplitude(tmp_path: Path, native_rate: int) -> None:
    tone = _sine(1000.0, 1.0, native_rate)
    path = tmp_path / f"tone{native_rate}.wav"
    sf.write(path, np.stack([tone, tone], axis=1), native_rate, subtype="FLOAT")  # stereo, same channels
    signal, rate = audio.load(path)
    assert rate == 16000
    assert abs(len(signal) - 16000) <= 1
    assert abs(_peak_hz(signal, rate) - 1000.0) <= 1.0
    middle = signal[1000:-1000]  # away from the resampler's edge transients
    assert np.sqrt(np.mean(middle**2)) == pytest.approx(0.5 / np.sqrt(2), rel=1e-3)


def test_resampling_removes_content_above_new_nyquist(tmp_path: Path) -> None:
    path = tmp_path / "high.wav"
    sf.write(path, _sine(10000.0, 1.0, 48000), 48000, subtype="FLOAT")  # above 8 kHz: must vanish
    signal, _ = audio.load(path)
    assert np.sqrt(np.mean(signal[1000:-1000] ** 2)) < 1e-3


def test_stereo_channels_are_averaged(tmp_path: Path) -> None:
    left = _sine(440.0, 0.5, 16000)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, np.zeros_like(left)], axis=1), 16000, subtype="FLOAT")
    signal, _ = audio.load(path)
    np.testing.assert_allclose(signal, (left / 2).astype(np.float32), atol=1e-7)


def test_segment_reads_only_the_requested_samples(tmp_path: Path) -> None:
    ramp = (np.arange(48000) % 1000 / 1000.0 - 0.5).astype(np.float32)
    path = tmp_path / "ramp.wav"
    sf.write(path, ramp, 16000, subtype="FLOAT")
    whole, _ = audio.load(path)
    part, _ = audio.load(path, start_s=0.5, end_s=1.25)
    np.testing.assert_array_equal(part, whole[8000:20000])
    tail, _ = audio.load(path, start_s=2.5)
    np.testing.assert_array_equal(tail, whole[40000:])
    assert audio.duration(path, 0.5, 1.25) == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (3.5, None, "outside the file"),
        (1.0, 4.0, "after the end"),
        (1.0, 1.0, "empty"),
        (-1.0, None, "negative"),
    ],
)
def test_segment_outside_the_file_is_an_error(
    tmp_path: Path, start: float, end: float | None, message: str
) -> None:
    path = tmp_path / "three.wav"
    sf.write(path, np.zeros(48000, dtype=np.float32) + 0.1, 16000)
    with pytest.raises(AudioError, match=message) as error:
        audio.load(path, start, end)
    assert str(path) in str(error.value)


def test_nist_sphere_and_flac_are_read(tmp_path: Path) -> None:
    tone = (_sine(300.0, 0.5, 16000) * 32767).astype(np.int16)
    for name, kwargs in [
        ("a.sph", {"format": "NIST", "subtype": "PCM_16"}),
        ("a.flac", {"subtype": "PCM_16"}),
    ]:
        path = tmp_path / name
        sf.write(path, tone, 16000, **kwargs)
        signal, _ = audio.load(path)
        np.testing.assert_array_equal(signal, tone.astype(np.float32) / 32768)


def test_corrupt_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio" * 5)
    with pytest.raises(AudioError, match="cannot be read as audio") as error:
        audio.load(path)
    assert str(path) in str(error.value)


def test_missing_empty_short_and_nan_files(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="does not exist"):
        audio.load(tmp_path / "absent.wav")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.int16), 16000)
    with pytest.raises(AudioError, match="empty") as error:
        audio.load(empty)
    assert str(empty) in str(error.value)
    short = tmp_path / "short.wav"
    sf.write(short, np.full(160, 0.1, dtype=np.float32), 16000)  # 10 ms
    with pytest.raises(AudioError, match="shorter than one 25 ms analysis frame"):
        audio.load(short)
    nan = tmp_path / "nan.wav"
    values = np.full(8000, 0.1, dtype=np.float32)
    values[100] = np.nan
    sf.write(nan, values, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN") as error:
        audio.load(nan)
    assert str(nan) in str(error.value)


def test_real_emodb_file_is_resampled_to_16k(shared_data: Path) -> None:
    path = sorted((shared_data / "emodb" / "wav").glob("*.wav"))[0]
    assert sf.info(path).samplerate == 22050
    signal, rate = audio.load(path)
    assert rate == 16000 and signal.dtype == np.float32
    assert len(signal) == 32000  # every Emo-DB file here is 2.0 s
    assert 0 < np.abs(signal).max() <= 1.0


def test_max_duration_reads_a_prefix(tmp_path: Path) -> None:
    ramp = (np.arange(48000) % 1000 / 1000.0 - 0.5).astype(np.float32)
    path = tmp_path / "ramp.wav"
    sf.write(path, ramp, 16000, subtype="FLOAT")
    part, _ = audio.load(path, start_s=1.0, max_duration_s=0.5)
    np.testing.assert_array_equal(part, ramp[16000:24000])
    assert len(audio.load(path, max_duration_s=10.0)[0]) == 48000


@pytest.mark.parametrize(
    ("name", "options", "rate"),
    [
        ("a.ogg", {"format": "OGG", "subtype": "OPUS"}, 16000),  # nEMO's container and codec
        ("b.ogg", {"format": "OGG", "subtype": "VORBIS"}, 22050),
        ("c.mp3", {"format": "MP3", "subtype": "MPEG_LAYER_III"}, 16000),
    ],
)
def test_lossy_containers_keep_the_tone_and_the_duration(tmp_path: Path, name, options, rate) -> None:
    """Ogg/Opus, Ogg/Vorbis and MP3 (libsndfile >= 1.1) decode to the same tone at 16 kHz, within the
    codec's error, with the duration of the original (MP3 may add its encoder delay)."""
    path = tmp_path / name
    sf.write(path, _sine(440.0, 1.0, rate, amplitude=0.5).astype(np.float32), rate, **options)
    signal, out_rate = audio.load(path)
    assert out_rate == 16000
    assert abs(len(signal) - 16000) <= (1200 if name.endswith(".mp3") else 2)
    assert abs(_peak_hz(signal[2000:14000], 16000) - 440.0) < 3.0
    assert np.sqrt(np.mean(signal[2000:14000] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)
    assert audio.duration(path) == pytest.approx(len(signal) / 16000, abs=0.08)


@pytest.mark.parametrize("damage", ["cut", "garbage", "random"])
def test_corrupt_ogg_gets_the_same_clear_error_as_a_corrupt_wav(tmp_path: Path, damage: str) -> None:
    good = tmp_path / "good.ogg"
    sf.write(good, _sine(300.0, 1.0, 16000).astype(np.float32), 16000, format="OGG", subtype="OPUS")
    data = good.read_bytes()
    noise = np.random.default_rng(0).integers(0, 256, len(data), dtype=np.uint8).tobytes()
    broken = tmp_path / f"{damage}.ogg"
    broken.write_bytes(
        {"cut": data[: len(data) // 2], "garbage": data[:200] + noise[200:], "random": noise[:5000]}[damage]
    )
    with pytest.raises(AudioError, match="cannot be read as audio") as error:
        audio.load(broken)
    assert str(broken) in str(error.value)

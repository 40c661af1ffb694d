"""serlib.features: openSMILE log-Mel (shape, cut/pad rule, batching, independent check), auDeep
spectrogram parity with the golden arrays, auDeep's fixed-length/chunking rules, eGeMAPS."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from serlib import audio, features
from serlib.audio import AudioError

RATE = 16000


def _noise(seconds: float, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(round(seconds * RATE)))).astype(np.float32)


# -- log-Mel ---------------------------------------------------------------------------------------
def test_logmel_shape_dtype_and_frame_count() -> None:
    values = features.logmel(_noise(2.0), RATE)
    assert values.shape == (198, 26) and values.dtype == np.float32  # openSMILE does not pad: 2.0 s -> 198
    assert np.isfinite(values).all()
    assert features.logmel_frames(32000, RATE) == 198
    assert features.logmel(_noise(0.025), RATE).shape == (1, 26)


@pytest.mark.parametrize(
    ("seconds", "true_frames"), [(7.49, 747), (7.50, 748), (7.51, 749), (7.515, 750), (8.0, 750)]
)
def test_paper_cut_and_pad_rule_at_7_5_seconds(seconds: float, true_frames: int) -> None:
    signal = _noise(seconds)
    raw = features.logmel(signal, RATE)
    assert raw.shape[0] == features.logmel_frames(len(signal), RATE)
    fixed, length = features.fix_length(raw, 750)
    assert fixed.shape == (750, 26) and fixed.dtype == np.float32
    assert length == true_frames
    np.testing.assert_array_equal(fixed[:length], raw[:length])
    assert not fixed[length:].any()  # zero padding after the true frames


def test_fix_length_cuts_and_pads_any_array() -> None:
    x = np.arange(12, dtype=np.float32).reshape(6, 2) + 1
    cut, n = features.fix_length(x, 4)
    assert n == 4 and cut.shape == (4, 2)
    np.testing.assert_array_equal(cut, x[:4])
    padded, n = features.fix_length(x, 9)
    assert n == 6 and padded.shape == (9, 2) and not padded[6:].any()


def test_batched_extraction_equals_one_call_per_signal() -> None:
    signals = [_noise(s, seed) for seed, s in enumerate([0.4, 1.0331, 0.0251, 2.2, 0.9999])]
    one_by_one = [features.logmel(s, RATE) for s in signals]
    batched = features.logmel_many(signals, RATE)
    for single, many in zip(one_by_one, batched, strict=True):
        np.testing.assert_array_equal(single, many)


def test_logmel_path_equals_opensmile_process_signal() -> None:
    """One signal path (Smile.__call__) — its values equal Smile.process_signal's (opensmile#46)."""
    import opensmile

    signal = _noise(1.3)
    smile = opensmile.Smile(feature_set=str(features.LOGMEL_CONFIG), feature_level=features.LOGMEL_LEVEL)
    reference = smile.process_signal(signal, RATE).to_numpy(dtype=np.float32)
    np.testing.assert_array_equal(features.logmel(signal, RATE), reference)


def test_full_scale_sample_does_not_wrap_around() -> None:
    signal = _noise(0.5)
    loud = signal.copy()
    loud[4000:4400] = 1.0  # opensmile casts x * 32768 to int16: +1.0 would become -32768 without clipping
    capped = loud.copy()
    capped[4000:4400] = 32767 / 32768
    np.testing.assert_array_equal(features.logmel(loud, RATE), features.logmel(capped, RATE))


def test_digital_silence_gives_the_log_floor() -> None:
    values = features.logmel(np.zeros(RATE, dtype=np.float32), RATE)
    np.testing.assert_allclose(values, features.LOGMEL_FLOOR, rtol=1e-6)


def _independent_logmel(signal: np.ndarray) -> np.ndarray:
    """The same quantity without openSMILE: numpy framing, HTK per-frame pre-emphasis 0.97, symmetric
    Hamming, 512-point power FFT, librosa's HTK-mel filterbank (0-6.5 kHz, no norm), ln with floor."""
    import librosa
    import scipy.signal

    frames = librosa.util.frame(signal.astype(np.float64), frame_length=400, hop_length=160, axis=0)
    emphasised = np.concatenate([frames[:, :1] * 0.03, frames[:, 1:] - 0.97 * frames[:, :-1]], axis=1)
    power = np.abs(np.fft.rfft(emphasised * scipy.signal.windows.hamming(400, sym=True), n=512, axis=1)) ** 2
    bank = librosa.filters.mel(sr=RATE, n_fft=512, n_mels=26, fmin=0.0, fmax=6500.0, htk=True, norm=None)
    return np.log(np.maximum(power @ bank.T, 1e-10))


@pytest.mark.slow
def test_opensmile_matches_independent_computation_on_real_speech(shared_data: Path) -> None:
    """Correlation > 0.99 per band. Systematic differences: librosa's triangles are linear in Hz,
    openSMILE's linear in mel; openSMILE sees int16-quantised float32 samples. Both shift band means
    by at most a few hundredths of a ln unit (stated in the assertion)."""
    paths = (
        sorted((shared_data / "librispeech").rglob("*.flac"))[:2]
        + sorted((shared_data / "ravdess").rglob("*.wav"))[:2]
    )
    assert paths, "no real speech found"
    for path in paths:
        signal, rate = audio.load(path)
        ours = features.logmel(signal, rate)
        reference = _independent_logmel(signal)
        assert ours.shape == reference.shape
        correlations = [np.corrcoef(ours[:, band], reference[:, band])[0, 1] for band in range(26)]
        assert min(correlations) > 0.99, (path.name, min(correlations))
        assert np.abs((ours - reference).mean(axis=0)).max() < 0.05


# -- auDeep spectrograms ---------------------------------------------------------------------------
SIGNALS = ("sines", "chirp", "noise")


def test_audeep_golden_parity(golden_audeep: Path) -> None:
    golden = np.load(golden_audeep / "spectrograms.npz", allow_pickle=False)
    provenance = json.loads(str(golden["provenance_json"]))
    assert provenance  # the file is the documented one
    rate, width, overlap = (
        int(golden["fs"]),
        int(golden["window_width_samples"]),
        int(golden["window_overlap_samples"]),
    )
    bank, centres = features.audeep_mel_filterbank(rate, width, int(golden["n_mels"]))
    np.testing.assert_array_equal(bank, golden["mel_fbank"])
    np.testing.assert_allclose(centres, golden["mel_center_hz"], rtol=1e-12)
    for name in SIGNALS:
        signal = golden[f"input_{name}"]
        emphasised = features.preemphasis(signal)
        np.testing.assert_array_equal(emphasised, golden[f"preemph_{name}"])
        power = features.power_spectrogram(emphasised, rate, width, overlap)
        np.testing.assert_allclose(
            power, golden[f"power_{name}"], rtol=1e-9, atol=1e-9 * golden[f"power_{name}"].max()
        )
        mel_power = bank @ power
        np.testing.assert_allclose(mel_power, golden[f"melpower_{name}"], rtol=1e-9, atol=1e-12)
        for clip_name, clip in (("clipnone", None), ("clip60", -60.0)):
            db = features.power_to_db(mel_power, clip_below_db=clip)
            np.testing.assert_allclose(db, golden[f"db_{name}_{clip_name}"], rtol=0, atol=1e-6)
            final = features.audeep_spectrogram(signal, rate, clip_below_db=clip)
            assert final.dtype == np.float32 and final.shape == golden[f"final_{name}_{clip_name}"].shape
            np.testing.assert_allclose(final, golden[f"final_{name}_{clip_name}"], rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("array", "signal", "options"),
    [
        ("extra_fixed_chirp_L2p0_clip60", "chirp", {"fixed_length_s": 2.0}),
        ("extra_fixedcenter_chirp_L2p0_clip60", "chirp", {"fixed_length_s": 2.0, "center_fixed": True}),
        ("extra_fixed_sines_L1p2_clip60", "sines", {"fixed_length_s": 1.2}),
        ("extra_chunks_chirp_len0p5_cnt4_clip60", "chirp", {"chunk_length_s": 0.5, "chunk_count": 4}),
    ],
)
def test_audeep_golden_fixed_length_and_chunks(
    golden_audeep: Path, array: str, signal: str, options: dict
) -> None:
    golden = np.load(golden_audeep / "spectrograms.npz", allow_pickle=False)
    result = features.audeep_chunks(
        golden[f"input_{signal}"], int(golden["fs"]), clip_below_db=-60.0, **options
    )
    assert result.shape == golden[array].shape
    np.testing.assert_allclose(result, golden[array], rtol=0, atol=1e-6)
    if "chunk_length_s" in options:  # the 2-D/3-D convention of audeep_spectrogram
        assert features.audeep_spectrogram(golden[f"input_{signal}"], 16000, **options).ndim == 3


@pytest.mark.parametrize("seconds", [0.6, 1.2, 1.4, 2.4, 3.8, 4.6, 4.8])
def test_overlap_correction_fires_where_the_spec_says(seconds: float) -> None:
    assert features.audeep_window_samples(RATE, int(seconds * RATE), 0.08, 0.04, seconds) == (1280, 639)


@pytest.mark.parametrize("seconds", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 7.5, 8.0, 10.0])
def test_overlap_correction_stays_off_elsewhere(seconds: float) -> None:
    assert features.audeep_window_samples(RATE, int(seconds * RATE), 0.08, 0.04, seconds) == (1280, 640)


def test_paper_spectrogram_shape_for_7_5_seconds() -> None:
    result = features.audeep_spectrogram(_noise(5.0), RATE, fixed_length_s=7.5)
    assert result.shape == (186, 128) and result.dtype == np.float32
    assert result.min() == -1.0 and result.max() == 1.0
    np.testing.assert_array_equal(result[-10:], -1.0)  # zero padding sits at the -60 dB floor


def test_chunking_error_rule_and_exact_multiple_quirk() -> None:
    signal = _noise(2.3)  # 56 frames
    with pytest.raises(AudioError, match="too few chunks"):
        features.audeep_chunks(signal, RATE, chunk_length_s=0.5, chunk_count=5)  # 12*4 + 8: only 4 full
    exact = _noise(0.04 * 49)  # (n - 640) // 640 = 48 frames = 4 chunks of 12, exactly
    assert features.audeep_chunks(exact, RATE, chunk_length_s=0.5, chunk_count=6).shape == (4, 12, 128)
    with pytest.raises(ValueError, match="together"):
        features.audeep_chunks(signal, RATE, chunk_length_s=0.5)


def test_silent_input_is_a_clear_error() -> None:
    with pytest.raises(AudioError, match="digitally silent"):
        features.audeep_spectrogram(np.zeros(RATE, dtype=np.float32), RATE)


# -- eGeMAPS ---------------------------------------------------------------------------------------
def test_egemaps_functionals() -> None:
    t = np.arange(RATE) / RATE
    voice = (0.3 * np.sin(2 * np.pi * 150 * t) + 0.1 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    values = features.egemaps(voice + _noise(1.0) * 0.05, RATE)
    assert values.shape == (88,) and values.dtype == np.float32 and np.isfinite(values).all()
    names = features.egemaps_names()
    assert len(names) == 88
    f0_mean = values[names.index("F0semitoneFrom27.5Hz_sma3nz_amean")]
    assert f0_mean == pytest.approx(12 * np.log2(150 / 27.5), abs=1.0)  # 150 Hz is 29.4 semitones


def test_egemaps_of_a_too_short_signal_is_an_error() -> None:
    with pytest.raises(AudioError, match="too short for eGeMAPS"):
        features.egemaps(_noise(0.03), RATE)

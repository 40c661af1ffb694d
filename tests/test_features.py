"""serlib.features: openSMILE log-Mel (shape, cut/pad rule, batching, independent check, the numpy
engine's equality with openSMILE), auDeep
spectrogram parity with the golden arrays, auDeep's fixed-length/chunking rules, eGeMAPS."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from serlib.data import audio
from serlib.data.audio import AudioError
from serlib.features import egemaps, logmel, spectrogram

RATE = 16000


def _noise(seconds: float, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(round(seconds * RATE)))).astype(np.float32)


# -- log-Mel ---------------------------------------------------------------------------------------
def test_logmel_shape_dtype_and_frame_count() -> None:
    values = logmel.logmel(_noise(2.0), RATE)
    assert values.shape == (198, 26) and values.dtype == np.float32  # openSMILE does not pad: 2.0 s -> 198
    assert np.isfinite(values).all()
    assert logmel.logmel_frames(32000, RATE) == 198
    assert logmel.logmel(_noise(0.025), RATE).shape == (1, 26)


@pytest.mark.parametrize(
    ("seconds", "true_frames"), [(7.49, 747), (7.50, 748), (7.51, 749), (7.515, 750), (8.0, 750)]
)
def test_paper_cut_and_pad_rule_at_7_5_seconds(seconds: float, true_frames: int) -> None:
    signal = _noise(seconds)
    raw = logmel.logmel(signal, RATE)
    assert raw.shape[0] == logmel.logmel_frames(len(signal), RATE)
    fixed, length = logmel.fix_length(raw, 750)
    assert fixed.shape == (750, 26) and fixed.dtype == np.float32
    assert length == true_frames
    np.testing.assert_array_equal(fixed[:length], raw[:length])
    assert not fixed[length:].any()  # zero padding after the true frames


def test_fix_length_cuts_and_pads_any_array() -> None:
    x = np.arange(12, dtype=np.float32).reshape(6, 2) + 1
    cut, n = logmel.fix_length(x, 4)
    assert n == 4 and cut.shape == (4, 2)
    np.testing.assert_array_equal(cut, x[:4])
    padded, n = logmel.fix_length(x, 9)
    assert n == 6 and padded.shape == (9, 2) and not padded[6:].any()


@pytest.mark.parametrize("engine", logmel.LOGMEL_ENGINES)
def test_batched_extraction_equals_one_call_per_signal(engine: logmel.LogMelEngine) -> None:
    signals = [_noise(s, seed) for seed, s in enumerate([0.4, 1.0331, 0.0251, 2.2, 0.9999])]
    one_by_one = [logmel.logmel(s, RATE, engine=engine) for s in signals]
    batched = logmel.logmel_many(signals, RATE, engine=engine)
    for single, many in zip(one_by_one, batched, strict=True):
        np.testing.assert_array_equal(single, many)


def test_logmel_path_equals_opensmile_process_signal() -> None:
    """One signal path (Smile.__call__) — its values equal Smile.process_signal's (opensmile#46)."""
    import opensmile

    signal = _noise(1.3)
    smile = opensmile.Smile(feature_set=str(logmel.LOGMEL_CONFIG), feature_level=logmel.LOGMEL_LEVEL)
    reference = smile.process_signal(signal, RATE).to_numpy(dtype=np.float32)
    np.testing.assert_array_equal(logmel.logmel(signal, RATE, engine="opensmile"), reference)


@pytest.mark.parametrize("engine", logmel.LOGMEL_ENGINES)
def test_full_scale_sample_does_not_wrap_around(engine: logmel.LogMelEngine) -> None:
    signal = _noise(0.5)
    loud = signal.copy()
    loud[4000:4400] = 1.0  # opensmile casts x * 32768 to int16: +1.0 would become -32768 without clipping
    capped = loud.copy()
    capped[4000:4400] = 32767 / 32768
    np.testing.assert_array_equal(
        logmel.logmel(loud, RATE, engine=engine), logmel.logmel(capped, RATE, engine=engine)
    )


@pytest.mark.parametrize("engine", logmel.LOGMEL_ENGINES)
def test_digital_silence_gives_the_log_floor(engine: logmel.LogMelEngine) -> None:
    values = logmel.logmel(np.zeros(RATE, dtype=np.float32), RATE, engine=engine)
    np.testing.assert_allclose(values, logmel.LOGMEL_FLOOR, rtol=1e-6)


def _engine_difference(signals: list[np.ndarray], rate: int, **settings: float) -> np.ndarray:
    """numpy engine minus openSMILE, all frames of all signals (shapes must agree)."""
    reference = logmel.logmel_many(signals, rate, engine="opensmile", **settings)  # type: ignore[arg-type]
    fast = logmel.logmel_many(signals, rate, engine="numpy", **settings)  # type: ignore[arg-type]
    for ours, theirs in zip(fast, reference, strict=True):
        assert ours.shape == theirs.shape and ours.dtype == np.float32
    return np.concatenate([(ours - theirs).ravel() for ours, theirs in zip(fast, reference, strict=True)])


def _test_signals(rate: int) -> list[np.ndarray]:
    """Noise, a 100 Hz-6 kHz chirp, a vowel-like harmonic tone with silence around it, a clipped
    burst, and the shortest lengths that give one and two frames."""
    rng = np.random.default_rng(7)
    t = np.arange(int(1.5 * rate)) / rate
    chirp = 0.3 * np.sin(2 * np.pi * (100 * t + 0.5 * 5900 / 1.5 * t**2))
    vowel = sum(0.2 / h * np.sin(2 * np.pi * 140 * h * t) for h in range(1, 30))
    vowel[: rate // 4] = 0.0
    vowel[-rate // 4 :] = 0.0
    burst = np.clip(3.0 * rng.standard_normal(rate // 2), -1.0, 1.0)
    frame, shift = round(0.025 * rate), round(0.010 * rate)
    return [
        (0.1 * rng.standard_normal(rate)).astype(np.float32),
        chirp.astype(np.float32),
        np.asarray(vowel, dtype=np.float32),
        burst.astype(np.float32),
        (0.05 * rng.standard_normal(frame)).astype(np.float32),
        (0.05 * rng.standard_normal(frame + shift)).astype(np.float32),
    ]


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
@pytest.mark.parametrize(("low_hz", "high_hz"), [(0.0, 6500.0), (20.0, 8000.0), (300.0, 3400.0)])
def test_numpy_engine_equals_opensmile(rate: int, low_hz: float, high_hz: float) -> None:
    """The fast engine computes openSMILE's numbers: same frames, differences at float32 rounding
    (openSMILE's float FFT vs pocketfft's), also where a band edge lies above the Nyquist frequency."""
    difference = _engine_difference(_test_signals(rate), rate, low_hz=low_hz, high_hz=high_hz)
    assert np.abs(difference).max() < 1e-3
    assert np.abs(difference).mean() < 1e-5


def test_numpy_engine_rounding_outside_the_filterbank_range() -> None:
    """A tone above high_hz leaves only window leakage in the bands, 10-25 ln units below the
    frame's energy, where float32 rounding of the two FFTs shows more (measured 4e-3 at 48 kHz)."""
    rate = 48000
    t = np.arange(rate) / rate
    tone = (0.3 * np.sin(2 * np.pi * 15000 * t)).astype(np.float32)
    difference = _engine_difference([tone], rate)
    assert np.abs(difference).max() < 2e-2
    assert np.abs(difference).mean() < 1e-3


def test_numpy_engine_hands_fractional_frame_grids_to_opensmile() -> None:
    """At 22.05 kHz 10 ms is 220.5 samples: openSMILE frames it, so both engines agree exactly."""
    signal = _test_signals(22050)[0]
    np.testing.assert_array_equal(
        logmel.logmel(signal, 22050, engine="numpy"), logmel.logmel(signal, 22050, engine="opensmile")
    )


def test_unknown_engine_is_named() -> None:
    with pytest.raises(ValueError, match="librosa.*numpy, opensmile"):
        logmel.logmel(_noise(0.1), RATE, engine="librosa")  # type: ignore[arg-type]


def test_opensmile_mel_filterbank_is_htk_triangles_in_mel() -> None:
    """Each FFT bin between the first and last centre splits 1 between two neighbouring bands;
    bins at or below low_hz and at or above high_hz get nothing; each band peaks near 1."""
    bank = logmel.opensmile_mel_filterbank(16000, 512, 26, 0.0, 6500.0)
    assert bank.shape == (257, 26) and bank.dtype == np.float32
    assert not bank[0].any() and not bank[208:].any()  # DC; 6500 Hz is bin 208 (31.25 Hz bins)
    inner = bank[1:208].sum(axis=1)
    centre_bins = np.flatnonzero(np.isclose(inner, 1.0, atol=1e-6))
    assert centre_bins.min() <= 3 and centre_bins.max() >= 185  # all but the outer half-bands
    assert ((bank > 0).sum(axis=1) <= 2).all()
    assert (bank.max(axis=0) > 0.8).all() and (bank <= 1.0).all()
    peaks = bank.argmax(axis=0)
    assert (np.diff(peaks) > 0).all()  # centres rise with the band index


@pytest.mark.slow
def test_numpy_engine_equals_opensmile_on_real_speech(shared_data: Path) -> None:
    """Emo-DB, RAVDESS and LibriSpeech (60 files each): same frames; mean |difference| below 2e-6
    and no bias (measured: 4e-7 to 7e-7 mean, 2e-8 bias, 6e-4 max ln units on 200 files each)."""
    paths = []
    for corpus, pattern in (("emodb", "*.wav"), ("ravdess", "*.wav"), ("librispeech", "*.flac")):
        paths += sorted((shared_data / corpus).rglob(pattern))[:60]
    assert len(paths) >= 60, "no real speech found"
    difference = _engine_difference([audio.load(path)[0] for path in paths], RATE)
    assert np.abs(difference).max() < 2e-3
    assert np.abs(difference).mean() < 2e-6
    assert abs(difference.mean()) < 2e-7


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
        ours = logmel.logmel(signal, rate)
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
    bank, centres = spectrogram.audeep_mel_filterbank(rate, width, int(golden["n_mels"]))
    np.testing.assert_array_equal(bank, golden["mel_fbank"])
    np.testing.assert_allclose(centres, golden["mel_center_hz"], rtol=1e-12)
    for name in SIGNALS:
        signal = golden[f"input_{name}"]
        emphasised = spectrogram.preemphasis(signal)
        np.testing.assert_array_equal(emphasised, golden[f"preemph_{name}"])
        power = spectrogram.power_spectrogram(emphasised, rate, width, overlap)
        np.testing.assert_allclose(
            power, golden[f"power_{name}"], rtol=1e-9, atol=1e-9 * golden[f"power_{name}"].max()
        )
        mel_power = bank @ power
        np.testing.assert_allclose(mel_power, golden[f"melpower_{name}"], rtol=1e-9, atol=1e-12)
        for clip_name, clip in (("clipnone", None), ("clip60", -60.0)):
            db = spectrogram.power_to_db(mel_power, clip_below_db=clip)
            np.testing.assert_allclose(db, golden[f"db_{name}_{clip_name}"], rtol=0, atol=1e-6)
            final = spectrogram.audeep_spectrogram(signal, rate, clip_below_db=clip)
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
    result = spectrogram.audeep_chunks(
        golden[f"input_{signal}"], int(golden["fs"]), clip_below_db=-60.0, **options
    )
    assert result.shape == golden[array].shape
    np.testing.assert_allclose(result, golden[array], rtol=0, atol=1e-6)
    if "chunk_length_s" in options:  # the 2-D/3-D convention of audeep_spectrogram
        assert spectrogram.audeep_spectrogram(golden[f"input_{signal}"], 16000, **options).ndim == 3


@pytest.mark.parametrize("seconds", [0.6, 1.2, 1.4, 2.4, 3.8, 4.6, 4.8])
def test_overlap_correction_fires_where_the_spec_says(seconds: float) -> None:
    assert spectrogram.audeep_window_samples(RATE, int(seconds * RATE), 0.08, 0.04, seconds) == (1280, 639)


@pytest.mark.parametrize("seconds", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 7.5, 8.0, 10.0])
def test_overlap_correction_stays_off_elsewhere(seconds: float) -> None:
    assert spectrogram.audeep_window_samples(RATE, int(seconds * RATE), 0.08, 0.04, seconds) == (1280, 640)


def test_paper_spectrogram_shape_for_7_5_seconds() -> None:
    result = spectrogram.audeep_spectrogram(_noise(5.0), RATE, fixed_length_s=7.5)
    assert result.shape == (186, 128) and result.dtype == np.float32
    assert result.min() == -1.0 and result.max() == 1.0
    np.testing.assert_array_equal(result[-10:], -1.0)  # zero padding sits at the -60 dB floor


def test_chunking_error_rule_and_exact_multiple_quirk() -> None:
    signal = _noise(2.3)  # 56 frames
    with pytest.raises(AudioError, match="too few chunks"):
        spectrogram.audeep_chunks(signal, RATE, chunk_length_s=0.5, chunk_count=5)  # 12*4 + 8: only 4 full
    exact = _noise(0.04 * 49)  # (n - 640) // 640 = 48 frames = 4 chunks of 12, exactly
    assert spectrogram.audeep_chunks(exact, RATE, chunk_length_s=0.5, chunk_count=6).shape == (4, 12, 128)
    with pytest.raises(ValueError, match="together"):
        spectrogram.audeep_chunks(signal, RATE, chunk_length_s=0.5)


def test_silent_input_is_a_clear_error() -> None:
    with pytest.raises(AudioError, match="digitally silent"):
        spectrogram.audeep_spectrogram(np.zeros(RATE, dtype=np.float32), RATE)


# -- eGeMAPS ---------------------------------------------------------------------------------------
def test_egemaps_functionals() -> None:
    t = np.arange(RATE) / RATE
    voice = (0.3 * np.sin(2 * np.pi * 150 * t) + 0.1 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    values = egemaps.egemaps(voice + _noise(1.0) * 0.05, RATE)
    assert values.shape == (88,) and values.dtype == np.float32 and np.isfinite(values).all()
    names = egemaps.egemaps_names()
    assert len(names) == 88
    f0_mean = values[names.index("F0semitoneFrom27.5Hz_sma3nz_amean")]
    assert f0_mean == pytest.approx(12 * np.log2(150 / 27.5), abs=1.0)  # 150 Hz is 29.4 semitones


def test_egemaps_of_a_too_short_signal_is_an_error() -> None:
    with pytest.raises(AudioError, match="too short for eGeMAPS"):
        egemaps.egemaps(_noise(0.03), RATE)


def test_egemaps_descriptors_per_frame() -> None:
    """25 descriptors per 10 ms frame; the pitch descriptor of a 150 Hz voice reads 150 Hz where voiced."""
    t = np.arange(RATE) / RATE
    voice = (0.3 * np.sin(2 * np.pi * 150 * t) + 0.1 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    values = egemaps.egemaps_lld(voice + _noise(1.0) * 0.05, RATE)
    assert values.dtype == np.float32 and values.shape[1] == egemaps.EGEMAPS_LLD_DIMS == 25
    assert abs(values.shape[0] - 100) <= 5 and np.isfinite(values).all()  # 1 s at a 10 ms hop
    pitch = values[:, egemaps.egemaps_lld_names().index("F0semitoneFrom27.5Hz_sma3nz")]  # 0 where unvoiced
    voiced = pitch[pitch > 0]
    assert len(voiced) > 50
    assert np.median(voiced) == pytest.approx(12 * np.log2(150 / 27.5), abs=1.0)

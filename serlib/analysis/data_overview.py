"""Notebook 01: the corpora and their roles, label and duration distributions (the counts beside the
paper's are ``corpus_counts``'), one utterance heard and seen as log-Mel and audeep_image spectrogram,
and what the feature store will hold."""

from __future__ import annotations

import logging
import math
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import soundfile

from serlib.analysis.tsne import AnalysisError
from serlib.data import audio
from serlib.data.manifest import EMOTIONS, LEVELS
from serlib.features import logmel, spectrogram
from serlib.protocol.conditions import autoencoder_corpus, autoencoder_jobs, corpora_of, settings_of

log = logging.getLogger(__name__)


def corpus_roles(config: Any) -> dict[str, list[str]]:
    """What each configured corpus is used for in the protocol (labeled training/test, which AE)."""
    roles: dict[str, list[str]] = {key: [] for key in config.corpora}
    protocol = config.protocol
    if protocol.within_corpus:
        roles[protocol.within_corpus].append("within-corpus (LOSO)")
    if "cross" in settings_of(config):
        roles[protocol.cross_corpus_train].append("cross-corpus training")
        roles[protocol.cross_corpus_test].append("cross-corpus test")
    for setting in settings_of(config):
        for condition in protocol.conditions:
            key = autoencoder_corpus(config, setting, condition)
            if key is not None:
                label = f"AE of {condition.name}"
                if label not in roles[key]:
                    roles[key].append(label)
    return roles


def durations(manifest: pd.DataFrame) -> np.ndarray:
    """Seconds per utterance: segment times where given, else the audio file's header."""
    seconds = np.array(manifest["end_s"] - manifest["start_s"], dtype=float)  # a writable copy
    for row in np.flatnonzero(np.isnan(seconds)):
        info = soundfile.info(str(manifest["path"].iloc[row]))
        seconds[row] = info.frames / info.samplerate
    return seconds


def corpus_summary(config: Any, manifests: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per corpus: its role, utterances, 4-class labeled utterances, speakers, sessions, hours."""
    roles = corpus_roles(config)
    rows = []
    for key, manifest in manifests.items():
        seconds = durations(manifest)
        rows.append(
            {
                "corpus": key,
                "type": config.corpora[key].type,
                "used as": ", ".join(roles.get(key, [])) or "(not used by the protocol)",
                "utterances": len(manifest),
                "4-class labeled": int(manifest["emotion"].isin(EMOTIONS).sum()),
                "speakers": int(manifest["speaker"].nunique()),
                "sessions": int(manifest["session"].nunique()),
                "hours": round(float(np.sum(seconds)) / 3600.0, 3),
                "mean seconds": round(float(np.mean(seconds)), 2) if len(seconds) else math.nan,
            }
        )
    return pd.DataFrame(rows)


def plot_label_distributions(manifests: dict[str, pd.DataFrame]) -> Any:
    """Bar charts of emotion, arousal class and valence class per labeled corpus (counts on the bars)."""
    labeled = {k: m for k, m in manifests.items() if m["emotion"].isin(EMOTIONS).any()}
    if not labeled:
        raise AnalysisError("no configured corpus has emotion labels: nothing to plot")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), layout="constrained")
    specs = (
        ("emotion", EMOTIONS, "Emotion"),
        ("arousal_class", LEVELS, "Arousal class"),
        ("valence_class", LEVELS, "Valence class"),
    )
    colours = sns.color_palette("colorblind", len(labeled))
    width = 0.8 / len(labeled)
    for axis, (column, classes, title) in zip(axes, specs, strict=True):
        for number, (key, manifest) in enumerate(labeled.items()):
            subset = manifest[manifest["emotion"].isin(EMOTIONS)]
            counts = subset[column].value_counts()
            heights = [int(counts.get(c, 0)) for c in classes]
            positions = np.arange(len(classes)) + (number - (len(labeled) - 1) / 2) * width
            bars = axis.bar(positions, heights, width, color=colours[number], label=key)
            axis.bar_label(bars, fontsize=8)
        axis.set_xticks(np.arange(len(classes)), [c.capitalize() for c in classes])
        axis.set_title(f"{title} (4-class utterances)")
        axis.set_xlabel(title)
        axis.set_ylabel("Utterances")
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, title="Corpus", loc="outside right upper", frameon=False)
    return fig


def plot_durations(seconds: dict[str, np.ndarray], config: Any) -> Any:
    """Histogram of utterance durations per corpus, with the ACNN's cut and the AE's fixed length marked."""
    fig, axis = plt.subplots(figsize=(9, 4), layout="constrained")
    colours = sns.color_palette("colorblind", max(3, len(seconds) + 2))
    top = max((float(np.max(v)) for v in seconds.values() if len(v)), default=1.0)
    bins = np.linspace(0, top * 1.02, 40).tolist()
    for colour, (key, values) in zip(colours, seconds.items(), strict=False):
        axis.hist(
            values, bins=bins, histtype="step", linewidth=1.8, color=colour, label=f"{key} ({len(values)})"
        )
    logmel_settings = config.features.logmel
    cut = logmel_settings.max_frames * logmel_settings.shift_s
    axis.axvline(cut, color="black", linestyle="--", label=f"ACNN input: cut/padded to {cut:.2f} s")
    fixed = config.features.spectrogram.fixed_length_s
    if fixed is not None:
        axis.axvline(
            fixed, color="grey", linestyle=":", linewidth=2, label=f"AE input: fixed length {fixed:.2f} s"
        )
    axis.set_xlabel("Utterance duration (s)")
    axis.set_ylabel("Utterances")
    axis.set_title("Utterance durations per corpus")
    axis.legend(frameon=False, fontsize=8)
    return fig


def examples(manifest: pd.DataFrame, per_class: int = 1) -> pd.DataFrame:
    """The first ``per_class`` utterances of each emotion (for listening and pictures)."""
    picked = [manifest[manifest["emotion"] == e].head(per_class) for e in EMOTIONS]
    return pd.concat(picked, ignore_index=True)


def load_utterance(row: Any) -> tuple[np.ndarray, int]:
    """The audio of one manifest row (a dict or named tuple), its segment only where times are given."""
    get = row.get if isinstance(row, dict) else lambda name: getattr(row, name)
    start, end = get("start_s"), get("end_s")
    return audio.load(
        str(get("path")),
        None if start is None or pd.isna(start) else float(start),
        None if end is None or pd.isna(end) else float(end),
    )


def feature_plan(config: Any) -> pd.DataFrame:
    """Which (corpus, extractor) stores the protocol reads: the ACNN's input (log-Mel, or
    ``features.acnn_input``) for the labeled corpora, audeep_image spectrograms for every AE's training
    corpus and for the labeled corpora it encodes."""
    plan: dict[tuple[str, str], None] = {}
    labeled = [key for setting in settings_of(config) for key in corpora_of(config, setting)]
    for key in labeled:
        plan[(key, config.features.acnn_input)] = None
    ae_corpora = [key for key, _epochs in autoencoder_jobs(config)]
    for key in ae_corpora:
        plan[(key, "spectrogram")] = None
    if ae_corpora:
        for key in labeled:
            plan[(key, "spectrogram")] = None
    return pd.DataFrame(list(plan), columns=["corpus", "extractor"])


def plot_features(
    signal: np.ndarray,
    sample_rate: int,
    config: Any,
    title: str = "",
    clip_below_db: Any = "config",
    source: Any = None,
) -> Any:
    """One utterance three ways: the waveform, the ACNN's 26 log-Mel bands, the AE's audeep_image spectrogram.

    ``clip_below_db`` overrides the configured clipping threshold of the audeep_image spectrogram (try -30).
    ``source`` (the file the signal came from) is named in the error when the signal cannot be drawn,
    e.g. a digitally silent file, whose auDeep dB reference is undefined.
    """
    try:
        return _plot_features(signal, sample_rate, config, title, clip_below_db)
    except audio.AudioError as error:
        if source is None:
            raise
        raise audio.AudioError(
            f"{source}: {error}; draw another utterance (e.g. data_overview.examples(within).iloc[1]) "
            "or remove or replace this file in the corpus"
        ) from None


def _plot_features(signal: np.ndarray, sample_rate: int, config: Any, title: str, clip_below_db: Any) -> Any:
    logmel_settings = config.features.logmel
    bands = logmel.logmel(
        signal,
        sample_rate,
        logmel_settings.bands,
        logmel_settings.low_hz,
        logmel_settings.high_hz,
        logmel_settings.frame_s,
        logmel_settings.shift_s,
        logmel_settings.engine,
    )
    spectrogram_settings = config.features.spectrogram.model_dump(exclude={"store_decimals"})  # storage only
    if clip_below_db != "config":
        spectrogram_settings["clip_below_db"] = clip_below_db
    audeep_image = np.asarray(spectrogram.audeep_spectrogram(signal, sample_rate, **spectrogram_settings))
    if audeep_image.ndim == 3:  # chunked: show the chunks one after another
        audeep_image = audeep_image.reshape(-1, audeep_image.shape[-1])
    fig, axes = plt.subplots(3, 1, figsize=(10, 8.5), layout="constrained")
    time_axis = np.arange(len(signal)) / sample_rate
    axes[0].plot(time_axis, signal, linewidth=0.5, color="#0173b2")
    axes[0].set_xlim(0, time_axis[-1])
    axes[0].set_xlabel("Time (s)")
    axes[0].set_ylabel("Amplitude")
    axes[0].set_title(f"Waveform {title}".strip())
    shift = logmel_settings.shift_s
    image = axes[1].imshow(
        bands.T,
        origin="lower",
        aspect="auto",
        cmap="magma",
        extent=(0, len(bands) * shift, 0, bands.shape[1]),
    )
    fig.colorbar(image, ax=axes[1], label="ln energy")
    axes[1].set_xlabel("Time (s)")
    axes[1].set_ylabel("Mel band (0-6.5 kHz)")
    axes[1].set_title(
        f"ACNN input: {bands.shape[1]} log-Mel bands, {bands.shape[0]} frames of 10 ms (openSMILE)"
    )
    hop = config.features.spectrogram.window_s - config.features.spectrogram.overlap_s
    image = axes[2].imshow(
        audeep_image.T,
        origin="lower",
        aspect="auto",
        cmap="magma",
        vmin=-1,
        vmax=1,
        extent=(0, len(audeep_image) * hop, 0, audeep_image.shape[1]),
    )
    fig.colorbar(image, ax=axes[2], label="normalised dB")
    clip = spectrogram_settings["clip_below_db"]
    axes[2].set_xlabel("Time (s)")
    axes[2].set_ylabel("Mel band")
    axes[2].set_title(
        f"AE input: audeep_image spectrogram, {audeep_image.shape[1]} mel bands, {audeep_image.shape[0]} frames of "
        f"{hop * 1000:.0f} ms, clipped below {clip} dB"
    )
    return fig

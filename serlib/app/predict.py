"""Predict the emotion of audio files with a trained ACNN (and the autoencoder whose vectors it uses).

A *model folder* holds ``model.keras`` (the ACNN), ``model.json`` (class names, the log-Mel and
spectrogram parameters it was trained with, the AE parameters) and, for an AE condition,
``autoencoder.keras``. ``export_models`` copies the cross-corpus models of a finished protocol into
``<output_dir>/models/<condition>/`` with an index ``models.json`` naming the default model, so
``serlib predict --model runs/demo/models FILE`` works. ``--model`` may also name one condition's
folder, a run's results folder (``results/cross/<condition>/seed<k>/fold0``) or an output folder.

Features are computed by the same code as training (``serlib.features.extraction.extract_task``). Files of any
length: a file up to one training window (``max_frames`` x shift = 7.5 s in the paper preset, plus
0.1 s) is one input, cut/padded exactly like a training utterance; a longer file is read in windows
of that length with 50 % overlap (the last window ends at the file end), each window read from disk
on its own (memory does not grow with the file), and the class probabilities are averaged over the
windows. Models load with Keras' safe mode only; no pickle is read.
"""

from __future__ import annotations

import logging
import math
import os
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from serlib.app.model_folder import (  # noqa: F401 - PredictError and the file names are part of this API
    AUTOENCODER_FILE,
    INDEX_FILE,
    METADATA_FILE,
    METADATA_FORMAT,
    MODEL_FILE,
    PredictError,
    export_models,
    normalisation_mode,
    read_checked,
    read_json,
    sha256,
)
from serlib.base import run_schemas, runtime
from serlib.base.progress import bar as progress_bar
from serlib.data import audio
from serlib.features import extraction
from serlib.models import autoencoder
from serlib.models.acnn import model as acnn_layers  # noqa: F401 - registers the ACNN's layers for safe loading

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".sph", ".ogg")
WINDOW_MARGIN_S = 0.1  # read beyond max_frames x shift, so the last frame is a real one (as the store does)
ROWS_PER_BLOCK = 64  # windows extracted and classified together


# -- safe model loading -----------------------------------------------------------------------------
def safe_load_model(path: str | os.PathLike[str]) -> Any:
    """Load a ``.keras`` model with Keras' safe mode (no Lambda layers, no code); clear error otherwise."""
    path = Path(path)
    if path.suffix != ".keras":
        raise PredictError(
            f"{path}: serlib loads only .keras models (the safe Keras format), not {path.suffix!r}"
        )
    if not path.is_file():
        raise PredictError(
            f"{path} does not exist; train and export models first (serlib.app.model_folder.export_models)"
        )
    if not zipfile.is_zipfile(path):
        raise PredictError(
            f"{path} is not a .keras (zip) file: it is damaged or not a model; copy or train it again"
        )
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except (
        Exception
    ) as error:  # anything raised while deserialising an untrusted file becomes one clear error
        text = " ".join(str(error).split())
        if "safe_mode" in text or "Lambda" in text or "arbitrary code" in text:
            reason = "it contains Python code (e.g. a Lambda layer), which serlib never loads"
        else:
            reason = f"Keras cannot rebuild it in safe mode ({text[:200]})"
        raise PredictError(f"{path}: refused: {reason}; use a model trained and saved by serlib") from None


# -- the model folder --------------------------------------------------------------------------------
def resolve_model_dir(path: str | os.PathLike[str]) -> Path:
    """The model folder meant by ``path``: itself, the default of a ``models.json`` index, or of
    ``<path>/models``; for an output folder of a finished protocol without exported models (or its
    absent ``models`` folder) the models are exported first (``export_models``)."""
    path = Path(path)
    if (path / METADATA_FILE).is_file():
        return path
    for folder in (path, path / "models"):
        index_path = folder / INDEX_FILE
        if index_path.is_file():
            index, chosen = read_checked(run_schemas.read_model_index, index_path)  # the default stays inside
            if not (chosen / METADATA_FILE).is_file():
                raise PredictError(
                    f"{index_path}: its default model {index['default']!r} is not a folder with {METADATA_FILE}"
                )
            return chosen
    for output in (path, path.parent) if path.name == "models" else (path,):
        if (output / "results" / "protocol.json").is_file():
            log.info("exporting the models of %s to %s (first use)", output, output / "models")
            return resolve_model_dir(export_models(output))
    raise PredictError(
        f"{path} is not a model folder: expected {METADATA_FILE} + {MODEL_FILE} in it, an index {INDEX_FILE} "
        "(written by serlib.app.model_folder.export_models, e.g. runs/demo/models), or a finished run's output folder"
    )


@dataclass
class Predictor:
    """A loaded model folder: the ACNN, the AE's encoder (or None) and the feature parameters of ``model.json``."""

    folder: Path
    metadata: dict[str, Any]
    acnn: Any
    autoencoder: Any | None
    logmel_parameters: dict[str, Any]
    spectrogram_parameters: dict[str, Any] | None
    window_s: float

    @property
    def name(self) -> str:
        return str(self.metadata.get("condition") or self.folder.name)


def load_predictor(model_dir: str | os.PathLike[str]) -> Predictor:
    """Load and cross-check a model folder; a model/feature-parameter mismatch is a PredictError."""
    folder = resolve_model_dir(model_dir)
    metadata_path = folder / METADATA_FILE
    metadata = read_checked(run_schemas.read_model_metadata, metadata_path)  # types, ranges, unique classes
    if metadata.get("format") != METADATA_FORMAT:
        raise PredictError(f"{metadata_path}: format {metadata.get('format')!r} is not {METADATA_FORMAT!r}")
    try:
        sample_rate = int(metadata["audio"]["sample_rate"])
        logmel = dict(metadata["logmel"])
        expected_inputs = [int(n) for n in metadata["inputs"]["logmel"]]
        classes = metadata["classes"]
        _ = [classes[head] for head in ("emotion", "arousal", "valence")]
    except (KeyError, TypeError, ValueError) as error:
        raise PredictError(
            f"{metadata_path}: missing or invalid entry {error}; export the models again"
        ) from None
    acnn_input = metadata.get("acnn_input", "logmel")
    if acnn_input != "logmel":
        raise PredictError(
            f"{metadata_path}: the model reads {acnn_input!r} (features.acnn_input); predict extracts log-Mel "
            "and supports log-Mel models only"
        )
    mode = normalisation_mode(metadata)
    if mode not in ("train", "none"):  # none and train: any standardisation is inside the model
        raise PredictError(
            f"{metadata_path}: the model was trained with features.normalisation {mode!r}, which standardises "
            "each test corpus (or speaker) with its own statistics; predict reads single files and supports "
            "models trained with 'train' or 'none' normalisation only"
        )
    if expected_inputs != [int(logmel["max_frames"]), int(logmel["bands"])]:
        raise PredictError(
            f"{metadata_path}: mismatch: inputs.logmel {expected_inputs} but logmel.max_frames/bands give "
            f"[{logmel['max_frames']}, {logmel['bands']}]; the model and its parameters do not belong together"
        )
    runtime.configure()
    acnn = safe_load_model(folder / MODEL_FILE)
    inputs = {tensor.name.split(":")[0]: tuple(tensor.shape[1:]) for tensor in acnn.inputs}
    if inputs.get("logmel") != tuple(expected_inputs):
        raise PredictError(
            f"{folder / MODEL_FILE}: mismatch: the ACNN takes log-Mel {inputs.get('logmel')} but {metadata_path} "
            f"records max_frames x bands = {tuple(expected_inputs)}; the model and model.json do not belong together"
        )
    for head in ("emotion", "arousal", "valence"):
        units = acnn.get_layer(head).units if head in [layer.name for layer in acnn.layers] else None
        if units != len(classes[head]):
            raise PredictError(
                f"{folder / MODEL_FILE}: mismatch: output {head!r} has {units} classes but {metadata_path} names "
                f"{len(classes[head])} ({classes[head]})"
            )
    logmel_parameters = {"sample_rate": sample_rate, **logmel}
    ae_metadata = metadata.get("autoencoder")
    autoencoder_model = None
    spectrogram_parameters = None
    if ae_metadata:
        if "representation" not in inputs:
            raise PredictError(
                f"{metadata_path}: mismatch: it names an autoencoder but the ACNN has no representation input"
            )
        autoencoder_model, spectrogram_parameters = _load_autoencoder(
            folder, metadata_path, ae_metadata, sample_rate, inputs["representation"]
        )
    elif "representation" in inputs:
        raise PredictError(
            f"{metadata_path}: mismatch: the ACNN takes an autoencoder representation but model.json names no "
            "autoencoder; export the models again"
        )
    window_s = int(logmel["max_frames"]) * float(logmel["shift_s"])
    return Predictor(
        folder, metadata, acnn, autoencoder_model, logmel_parameters, spectrogram_parameters, window_s
    )


def _load_autoencoder(
    folder: Path, metadata_path: Path, ae: dict[str, Any], sample_rate: int, representation: tuple
) -> tuple[Any, dict[str, Any]]:
    """The AE the ACNN was trained with (``autoencoder.keras`` beside it, else the recorded path)."""
    recorded = str(ae.get("model") or "")
    candidates = [folder / AUTOENCODER_FILE]
    if recorded:
        candidates += [Path(recorded), folder / recorded]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise PredictError(
            f"{metadata_path}: the autoencoder it needs ({recorded or AUTOENCODER_FILE}) is missing; export the "
            "models with serlib.app.model_folder.export_models, which copies it beside model.keras"
        )
    if ae.get("sha256") and sha256(path) != ae["sha256"]:
        raise PredictError(
            f"{path}: mismatch: this is not the autoencoder the ACNN was trained with (sha256 differs from "
            f"{metadata_path}); export the models again"
        )
    try:
        spectrogram = dict(ae["spectrogram"])
        bands = int(spectrogram["mel_bands"])
    except (KeyError, TypeError, ValueError) as error:
        raise PredictError(
            f"{metadata_path}: autoencoder entry lacks {error}; export the models again"
        ) from None
    model = safe_load_model(path)
    shape = tuple(model.inputs[0].shape[1:])
    if shape[-1] != bands:
        raise PredictError(
            f"{path}: mismatch: the autoencoder takes {shape[-1]} mel bands but {metadata_path} records "
            f"spectrogram.mel_bands = {bands}"
        )
    recorded_shape = ae.get("input_shape")
    if recorded_shape and shape[0] is not None and list(shape) != [int(n) for n in recorded_shape]:
        raise PredictError(
            f"{path}: mismatch: input [T, F] = {list(shape)}, {metadata_path} records {recorded_shape}"
        )
    encoder = autoencoder.representation_model(model)  # spectrograms -> representation, built once
    dimension = int(encoder.outputs[0].shape[-1])
    chunks = int(spectrogram.get("chunk_count") or 1)
    if representation != (dimension * chunks,):
        raise PredictError(
            f"{path}: mismatch: it gives {dimension * chunks}-dimensional representations but the ACNN takes "
            f"{representation[0]}; the ACNN and the autoencoder do not belong together"
        )
    return encoder, {"sample_rate": sample_rate, **spectrogram, "input_shape": recorded_shape}


# -- inputs and windows ------------------------------------------------------------------------------
def audio_files(inputs: Iterable[str | os.PathLike[str]]) -> list[tuple[Path, str | None]]:
    """Files to predict, with an error for inputs that are neither an audio file nor a folder holding some.

    Folders are searched recursively for ``AUDIO_SUFFIXES`` (any case), in sorted order.
    """
    found: list[tuple[Path, str | None]] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            named = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
            files = [p for p in named if p.is_file()]
            if not files:
                found.append((path, f"{path}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in this folder"))
            # an audio name that is no file (a FIFO, a device, a link loop) is listed as skipped, with what it is
            found.extend((p, None if p.is_file() else f"{p}: skipped: {audio.not_a_file(p)}") for p in named)
        elif path.is_file():
            found.append((path, None))
        else:
            found.append((path, f"{path}: {audio.not_a_file(path)}"))
    return found


def windows(duration_s: float, window_s: float) -> list[tuple[float | None, float | None]]:
    """[start, end) segments covering a file: the whole file when it fits one window, else windows of
    ``window_s + WINDOW_MARGIN_S`` starting every ``window_s / 2`` (the last one ends at the file end)."""
    length = window_s + WINDOW_MARGIN_S
    if duration_s <= length:
        return [(None, None)]
    hop = window_s / 2
    starts = [k * hop for k in range(int(math.floor((duration_s - length) / hop)) + 1)]
    last = duration_s - length
    if last - starts[-1] > 1e-6:
        starts.append(last)
    return [(round(start, 6), min(duration_s, round(start + length, 6))) for start in starts]


# -- prediction --------------------------------------------------------------------------------------
def predict_paths(
    model_dir: str | os.PathLike[str],
    inputs: Sequence[str | os.PathLike[str]],
    progress: bool = True,
    predictor: Predictor | None = None,
) -> list[dict[str, Any]]:
    """One result dict per audio file (folders searched recursively), in input order.

    Keys: ``file``, ``duration_s``, ``window_s`` (the model's window: max_frames x shift), ``windows``,
    ``emotion`` and ``probabilities`` (per emotion, sum 1), ``arousal``/``valence`` and their
    ``*_probabilities``, ``model``, and ``error`` (None, or why the file could not be used: the batch
    goes on).
    """
    predictor = predictor or load_predictor(model_dir)
    files = audio_files(inputs)
    results: list[dict[str, Any]] = [_empty_result(path, error, predictor) for path, error in files]
    segments: dict[int, list[tuple[float | None, float | None]]] = {}
    for index, (path, error) in enumerate(files):
        if error is not None:
            continue
        try:
            duration = audio.duration(path)  # header only: unreadable and truncated files fail here
        except ValueError as failure:
            results[index]["error"] = str(failure)
            continue
        segments[index] = windows(duration, predictor.window_s)
        results[index]["duration_s"] = round(duration, 3)
        results[index]["windows"] = len(segments[index])
    pending = {index: _Accumulator(len(parts)) for index, parts in segments.items()}
    # progress in windows (a long file is many of them), with the count of finished files
    # a terminal's bar is erased when done: what stays is the result table (``serlib predict``)
    bar = progress_bar(
        sum(map(len, segments.values())), "predict", unit="window", enabled=progress, leave=False
    )
    finished = len(files) - len(pending)
    for block in _blocks(files, segments):
        for index, output in _classify(block, predictor):
            if output.get("error") and results[index]["error"] is None:
                results[index]["error"] = output["error"]
            accumulator = pending[index]
            accumulator.add(output)
            if accumulator.done:
                _finish(results[index], accumulator, predictor)
                finished += 1
        bar.update(len(block))
        bar.set_postfix(files=f"{finished}/{len(files)}")
    bar.close()
    return results


def _empty_result(path: Path, error: str | None, predictor: Predictor) -> dict[str, Any]:
    return {
        "file": str(path),
        "duration_s": None,
        "window_s": round(predictor.window_s, 3),
        "windows": 0,
        "emotion": None,
        "probabilities": None,
        "arousal": None,
        "arousal_probabilities": None,
        "valence": None,
        "valence_probabilities": None,
        "model": predictor.name,
        "error": error,
    }


class _Accumulator:
    """Sums of the window probabilities of one file until all its windows are classified."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.sums: dict[str, np.ndarray] = {}

    def add(self, output: dict[str, Any]) -> None:
        self.count += 1
        for head, values in output.get("probabilities", {}).items():
            self.sums[head] = self.sums.get(head, 0.0) + np.asarray(values, dtype=np.float64)

    @property
    def done(self) -> bool:
        return self.count >= self.expected


def _blocks(
    files: list[tuple[Path, str | None]], segments: dict[int, list[tuple[float | None, float | None]]]
) -> Iterator[list[dict[str, Any]]]:
    """Rows (one per window) of all usable files, in blocks of ``ROWS_PER_BLOCK``."""
    block: list[dict[str, Any]] = []
    for index, parts in segments.items():
        for start, end in parts:
            block.append(
                {
                    "index": index,
                    "utterance_id": f"{index}:{start}",
                    "path": str(files[index][0]),
                    "start_s": start,
                    "end_s": end,
                }
            )
            if len(block) >= ROWS_PER_BLOCK:
                yield block
                block = []
    if block:
        yield block


def _classify(block: list[dict[str, Any]], predictor: Predictor) -> list[tuple[int, dict[str, Any]]]:
    """Features, AE vectors and class probabilities of a block of windows; errors stay per window."""
    rows = [{key: row[key] for key in ("utterance_id", "path", "start_s", "end_s")} for row in block]
    errors: dict[int, str] = {}
    logmel = extraction.extract_task("logmel", predictor.logmel_parameters, rows)
    for position, result in enumerate(logmel):
        if result["error"] is not None:
            errors[position] = f"{rows[position]['path']}: {result['error']}"
    vectors: dict[int, np.ndarray] = {}
    if predictor.autoencoder is not None:
        vectors = _representations(rows, predictor, errors)
    usable = [p for p in range(len(rows)) if p not in errors]
    outputs: dict[int, dict[str, Any]] = {p: {"error": message} for p, message in errors.items()}
    if usable:
        feeds = {"logmel": np.stack([logmel[p]["features"][0] for p in usable]).astype(np.float32)}
        if predictor.autoencoder is not None:
            feeds["representation"] = np.stack([vectors[p] for p in usable]).astype(np.float32)
        predicted = predictor.acnn.predict_on_batch(feeds)
        if not isinstance(predicted, dict):
            predicted = dict(zip(predictor.acnn.output_names, predicted, strict=True))
        for k, position in enumerate(usable):
            outputs[position] = {
                "probabilities": {head: np.asarray(predicted[head][k]) for head in predicted}
            }
    return [(block[p]["index"], outputs[p]) for p in range(len(rows))]


def _representations(
    rows: list[dict[str, Any]], predictor: Predictor, errors: dict[int, str]
) -> dict[int, np.ndarray]:
    """The AE vector of each window (chunks concatenated in order, as ``encode_configured`` fuses them)."""
    encoder = predictor.autoencoder
    if encoder is None:
        return {}
    parameters = {k: v for k, v in (predictor.spectrogram_parameters or {}).items() if k != "input_shape"}
    results = extraction.extract_task("spectrogram", parameters, rows)
    stacks, owners = [], []
    for position, result in enumerate(results):
        if result["error"] is not None:
            errors.setdefault(position, f"{rows[position]['path']}: {result['error']}")
        elif position not in errors:
            stacks.append(np.asarray(result["features"], dtype=np.float32))
            owners.append(position)
    if not stacks:
        return {}
    shapes = {stack.shape[1:] for stack in stacks}
    recorded = (predictor.spectrogram_parameters or {}).get("input_shape")
    if len(shapes) > 1 or (recorded and list(next(iter(shapes))) != [int(n) for n in recorded]):
        raise PredictError(
            f"{predictor.folder}: mismatch: spectrograms of shape {sorted(shapes)} but the autoencoder was trained "
            f"on {recorded}; model.json's spectrogram parameters do not fit this autoencoder"
        )
    chunks = np.concatenate(stacks)
    encoded = np.asarray(encoder.predict_on_batch(chunks), dtype=np.float32)  # no dropout
    vectors: dict[int, np.ndarray] = {}
    offset = 0
    for position, stack in zip(owners, stacks, strict=True):
        vectors[position] = encoded[offset : offset + len(stack)].reshape(-1)
        offset += len(stack)
    return vectors


def _finish(result: dict[str, Any], accumulator: _Accumulator, predictor: Predictor) -> None:
    if result["error"] is not None:
        return
    classes = predictor.metadata["classes"]
    means = {head: accumulator.sums[head] / accumulator.count for head in accumulator.sums}
    for head, key in (
        ("emotion", "probabilities"),
        ("arousal", "arousal_probabilities"),
        ("valence", "valence_probabilities"),
    ):
        values = means[head] / means[head].sum()
        result[key] = {name: round(float(v), 6) for name, v in zip(classes[head], values, strict=True)}
        result[head] = classes[head][int(np.argmax(values))]


def format_table(results: Sequence[dict[str, Any]]) -> str:
    """A plain-text table: file, emotion with its probability, the four emotion probabilities, A/V classes."""
    if not results:
        return "no files"
    emotions = next((list(r["probabilities"]) for r in results if r.get("probabilities")), [])
    header = ["file", "emotion", *emotions, "arousal", "valence", "seconds"]
    lines = [header]
    for result in results:
        if result.get("error"):
            lines.append([result["file"], f"ERROR: {result['error']}"])
            continue
        probabilities = result["probabilities"]
        lines.append(
            [
                result["file"],
                result["emotion"],
                *(f"{probabilities[name]:.3f}" for name in emotions),
                result["arousal"],
                result["valence"],
                f"{result['duration_s']:.2f}",
            ]
        )
    widths = [max(len(row[i]) for row in lines if len(row) > 2 or i == 0) for i in range(len(header))]
    text = []
    for row in lines:
        if len(row) == 2:  # an error line spans the table
            text.append(f"{row[0].ljust(widths[0])}  {row[1]}")
        else:
            text.append(
                "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            )
    failed = sum(1 for r in results if r.get("error"))
    text.append(f"{len(results) - failed} files predicted, {failed} failed")
    window = next((r["window_s"] for r in results if r.get("window_s")), None)
    if window:
        text.append(
            f"window {window:.2f} s (the model's max_frames x shift): longer files are read in windows of "
            f"that length every {window / 2:.2f} s and their probabilities averaged"
        )
    return "\n".join(text)

"""Schemas of the files serlib writes and reads back, and their readers: a damaged file is one clear error.

A run folder's ``metrics.json`` and ``predictions.csv``, the grid's ``results/protocol.json``, an output
folder's ``provenance.json`` and a model folder's ``model.json`` and ``models.json`` are read by
``table``, ``check``, ``report``, ``pool``, ``provenance`` and ``predict``. Each reader here validates on
read (pydantic models; numbers must be numbers, fractions lie in [0, 1], counts are non-negative
integers, names are unique) and raises ``RunFileError``: one line naming the file, the field, what was
expected and what it held. The CLI prints it with exit status 2. A file cut short (truncated JSON, a
``predictions.csv`` with fewer rows than its ``metrics.json`` counts) is named, never read as a
plausible smaller result. The layer is ``base`` so that the protocol, the report and ``predict`` share
one definition.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any, NoReturn

import numpy as np
import pandas as pd
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

RERUN = "re-run the command that wrote it (`serlib evaluate` for a run folder)"
EXPORT = "export the models again (serlib.app.model_folder.export_models)"


class RunFileError(ValueError):
    """A file serlib wrote is damaged or not serlib's; the message names the file, field and fix."""


def fail(path: str | Path, field: str, expected: str, fix: str = RERUN) -> NoReturn:
    """Raise the one-line error of a damaged file."""
    raise RunFileError(f"{path}: {field}: {expected}; {fix}")


def _finite_or_nan_fraction(value: float | None) -> float | None:
    """A fraction in [0, 1], or NaN/None where the quantity has no labels (arousal of an unrated test set)."""
    if value is not None and not math.isnan(value) and not 0.0 <= value <= 1.0:
        raise ValueError(f"expected a fraction in [0, 1] (NaN where undefined), got {value}")
    return value


def _unique(values: list[Any]) -> list[Any]:
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"expected distinct values, {repeated} repeated")
    return values


Count = Annotated[int, Field(ge=0, strict=True)]
Positive = Annotated[int, Field(gt=0, strict=True)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False, strict=True)]
MaybeFraction = Annotated[float | None, Field(strict=True), AfterValidator(_finite_or_nan_fraction)]
PositiveSeconds = Annotated[float, Field(gt=0.0, allow_inf_nan=False, strict=True)]
Hertz = Annotated[float, Field(ge=0.0, allow_inf_nan=False, strict=True)]
Names = Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1), AfterValidator(_unique)]


class _Open(BaseModel):
    """Keys beyond the schema are kept (files gain fields over versions); the listed ones are checked."""

    model_config = ConfigDict(extra="allow")


# -- run folders --------------------------------------------------------------------------------------
class Metrics(_Open):
    """A finished run's ``metrics.json`` (``serlib.protocol.run_files.write_run``, the SVM's runs)."""

    setting: str
    condition: str
    seed: Count
    fold: Count
    uar: Fraction
    accuracy: Fraction | None = None
    arousal_uar: MaybeFraction = None
    valence_uar: MaybeFraction = None
    n_train: Count | None = None
    n_test: Count | None = None
    classes: Names | None = None
    fingerprint: str | None = None


class ProtocolCondition(_Open):
    name: Annotated[str, Field(min_length=1)]
    autoencoder_corpus: str


class ProtocolSetting(_Open):
    folds: Annotated[list[Count], Field(min_length=1), AfterValidator(_unique)]


class Protocol(_Open):
    """The grid of ``results/protocol.json`` (``serlib.protocol.grid``): what runs a complete folder has."""

    conditions: Annotated[list[ProtocolCondition], Field(min_length=1)]
    settings: dict[str, ProtocolSetting]
    seeds: Annotated[list[Count], Field(min_length=1), AfterValidator(_unique)]
    fingerprints: dict[str, str]
    baseline: str | None = None
    config: dict[str, Any] | None = None

    def expected_runs(self) -> int:
        """Runs of the complete grid: conditions x seeds x folds of every setting."""
        folds = sum(len(setting.folds) for setting in self.settings.values())
        return len(self.conditions) * len(self.seeds) * folds


class ReportedSetting(_Open):
    train_corpus: str
    test_corpus: str


class ReportedProtocol(_Open):
    """What the report reads of ``protocol.json``: the corpora of each setting."""

    settings: dict[str, ReportedSetting]


class ProtocolGrid(_Open):
    """What the model export reads of ``protocol.json``: its conditions, seeds and settings."""

    conditions: Annotated[list[ProtocolCondition], Field(min_length=1)]
    seeds: Annotated[list[Count], Field(min_length=1), AfterValidator(_unique)]
    settings: dict[str, dict[str, Any]]


class RunUar(_Open):
    uar: Fraction


class ProvenanceSerlib(_Open):
    commit: str | None = None
    dirty: bool | None = None


class ProvenanceFreeze(_Open):
    packages: dict[str, str] = Field(default_factory=dict)


class Provenance(_Open):
    """``provenance.json`` (``serlib.base.provenance``): the parts other commands read."""

    freeze: ProvenanceFreeze
    serlib: ProvenanceSerlib = Field(default_factory=ProvenanceSerlib)
    earlier: list[dict[str, Any]] = Field(default_factory=list)


# -- model folders ------------------------------------------------------------------------------------
class ModelClasses(_Open):
    emotion: Names
    arousal: Names
    valence: Names


class ModelInputs(_Open):
    logmel: Annotated[list[Positive], Field(min_length=2, max_length=2)]
    representation: Positive | None = None


class ModelAudio(_Open):
    sample_rate: Positive


class ModelLogMel(_Open):
    bands: Positive
    max_frames: Positive
    frame_s: PositiveSeconds
    shift_s: PositiveSeconds
    low_hz: Hertz = 0.0
    high_hz: Hertz | None = None


class ModelSpectrogram(_Open):
    mel_bands: Positive
    window_s: PositiveSeconds | None = None


class ModelAutoencoder(_Open):
    spectrogram: ModelSpectrogram
    model: str | None = None
    sha256: str | None = None
    input_shape: list[Positive] | None = None


class ModelMetadata(_Open):
    """A model folder's ``model.json`` (``serlib.protocol.runs._model_metadata``, ``export_models``)."""

    format: str
    classes: ModelClasses
    inputs: ModelInputs
    audio: ModelAudio
    logmel: ModelLogMel
    autoencoder: ModelAutoencoder | None = None


class ModelIndex(_Open):
    """``models.json``: the model folders of an export, by name, and the default one."""

    format: str | None = None
    default: Annotated[str, Field(min_length=1)]
    models: dict[str, dict[str, Any]] = Field(default_factory=dict)


# -- reading ------------------------------------------------------------------------------------------
def read_json(path: str | Path, fix: str = RERUN) -> Any:
    """The JSON value of ``path``; absent, unreadable or malformed (truncated) is a RunFileError naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        fail(path, "file", "does not exist", fix)
    except json.JSONDecodeError as error:
        fail(path, "file", f"not valid JSON ({error.msg} at line {error.lineno} column {error.colno})", fix)
    except (OSError, UnicodeDecodeError) as error:
        fail(path, "file", f"cannot be read as UTF-8 JSON ({error})", fix)


def read_object(path: str | Path, fix: str = RERUN) -> dict[str, Any]:
    """A JSON object of any keys (a record shown as it is, e.g. by the report); else a RunFileError."""
    data = read_json(path, fix)
    if not isinstance(data, dict):
        fail(path, "(top level)", f"expected a JSON object, got {type(data).__name__}", fix)
    return data


def validate(model: type[BaseModel], data: Any, path: str | Path, fix: str = RERUN) -> Any:
    """``data`` checked against ``model``; the first violation (dotted field, expectation, value) is the error."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        items = error.errors()
        item = items[0]
        field = ".".join(str(part) for part in item["loc"]) or "(top level)"
        got = repr(item.get("input"))
        got = got if len(got) <= 60 else got[:57] + "..."
        more = f" (and {len(items) - 1} more problems)" if len(items) > 1 else ""
        fail(path, field, f"{item['msg']} (got {got}){more}", fix)


def _read(model: type[BaseModel], path: str | Path, fix: str = RERUN) -> dict[str, Any]:
    data = read_json(path, fix)
    validate(model, data, path, fix)
    return dict(data)


def read_metrics(path: str | Path) -> dict[str, Any]:
    """A run's ``metrics.json`` as stored, after validation against ``Metrics``."""
    return _read(Metrics, path)


def read_protocol(path: str | Path) -> dict[str, Any]:
    """``results/protocol.json`` as stored, after validation against ``Protocol``."""
    return _read(Protocol, path)


def read_report_settings(path: str | Path) -> dict[str, Any]:
    """``protocol.json``'s ``settings`` (train and test corpus of each), validated against ``ReportedProtocol``."""
    return dict(_read(ReportedProtocol, path)["settings"])


def read_protocol_grid(path: str | Path) -> dict[str, Any]:
    """``protocol.json``'s conditions, seeds and settings, validated against ``ProtocolGrid``."""
    return _read(ProtocolGrid, path)


def read_uar(path: str | Path) -> float:
    """The ``uar`` of a ``metrics.json`` (a fraction in [0, 1])."""
    return float(_read(RunUar, path)["uar"])


def read_provenance(path: str | Path) -> dict[str, Any]:
    """``provenance.json`` as stored, after validation against ``Provenance``."""
    return _read(Provenance, path, "delete it and re-run")


def read_model_metadata(path: str | Path) -> dict[str, Any]:
    """A model folder's ``model.json`` as stored, after validation against ``ModelMetadata``."""
    return _read(ModelMetadata, path, EXPORT)


def read_model_index(path: str | Path) -> tuple[dict[str, Any], Path]:
    """``models.json`` and the folder of its default model, which must lie inside the index's folder
    (``default: ../elsewhere`` or an absolute path would load a model from outside it)."""
    path = Path(path)
    index = _read(ModelIndex, path, EXPORT)
    base = path.parent.resolve()
    for field, name in [
        ("default", index["default"]),
        *((f"models.{n}", n) for n in index.get("models", {})),
    ]:
        target = (base / name).resolve()
        if target == base or not target.is_relative_to(base):
            fail(
                path, field, f"{name!r} must name a folder inside {base} (no '..', no absolute path)", EXPORT
            )
    return index, base / index["default"]


PREDICTION_TEXT = ("utterance_id", "true", "predicted", "speaker", "subset")
REQUIRED_PREDICTIONS = ("utterance_id", "true", "predicted")


def read_predictions(
    path: str | Path, rows: int | None = None, classes: list[str] | None = None
) -> pd.DataFrame:
    """A run's ``predictions.csv``: ``utterance_id``, ``true`` and ``predicted`` present and filled in every
    row, ``p_*`` probabilities in [0, 1], at least one row and, with ``rows`` (``metrics.json``'s
    ``n_test``), exactly that many; every label one of ``classes`` (default: the classes of the ``p_*``
    columns, where the file has them)."""
    path = Path(path)
    frame = _read_csv(path, PREDICTION_TEXT, REQUIRED_PREDICTIONS)
    if frame.empty:
        fail(path, "rows", "expected one row per test utterance, the file holds only its header")
    for name in REQUIRED_PREDICTIONS:
        empty = frame[name].isna().to_numpy()
        if empty.any():
            line = int(np.argmax(empty)) + 2
            fail(path, f"{name} (line {line})", "empty: the row is short or cut")
    _check_probabilities(path, frame)
    classes = classes or [str(c)[2:] for c in frame.columns if str(c).startswith("p_")] or None
    if classes is not None:
        for name in ("true", "predicted"):
            unknown = sorted(set(frame[name]) - set(classes))
            if unknown:
                fail(path, name, f"labels {unknown[:3]} are not among the run's classes {classes}")
    if rows is not None and len(frame) != rows:
        fail(
            path,
            "rows",
            f"holds {len(frame)} predictions, its metrics.json counts n_test = {rows} (cut short?)",
        )
    return frame


def _read_csv(path: Path, text: tuple[str, ...], required: tuple[str, ...]) -> pd.DataFrame:
    """A CSV with the ``text`` columns as text and the ``required`` ones present; else a RunFileError."""
    try:
        frame = pd.read_csv(path, dtype={name: str for name in text})
    except FileNotFoundError:
        fail(path, "file", "does not exist")
    except pd.errors.EmptyDataError:
        fail(path, "file", "is empty (no header, no rows)")
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as error:
        fail(path, "file", f"not a readable CSV ({' '.join(str(error).split())[:120]})")
    missing = [name for name in required if name not in frame.columns]
    if missing:
        fail(path, f"column {missing[0]!r}", f"missing (expected columns {', '.join(required)})")
    return frame


def read_table1(path: str | Path) -> pd.DataFrame:
    """``table1.csv`` (``serlib table``): ``condition`` and ``autoencoder_corpus`` present, every
    ``within_*`` / ``cross_*`` cell a number or empty, means, minima and maxima UAR percentages in [0, 100]."""
    path = Path(path)
    frame = _read_csv(path, ("condition", "autoencoder_corpus"), ("condition", "autoencoder_corpus"))
    for name in [c for c in frame.columns if str(c).startswith(("within_", "cross_"))]:
        values = pd.to_numeric(frame[name], errors="coerce")
        percent = str(name).endswith(("_mean", "_min", "_max"))
        bad = (values.isna() & frame[name].notna()) | (percent & ((values < 0) | (values > 100)))
        if bad.any():
            line = int(np.argmax(bad.to_numpy())) + 2
            expected = "a UAR in % (0 to 100)" if percent else "a number"
            fail(
                path,
                f"{name} (line {line})",
                f"expected {expected}, got {frame[name].iloc[line - 2]!r}",
                "re-run `serlib table`",
            )
    return frame


def _check_probabilities(path: Path, frame: pd.DataFrame) -> None:
    for name in [c for c in frame.columns if str(c).startswith("p_")]:
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)
        bad = ~(np.isfinite(values) & (values >= 0.0) & (values <= 1.0))
        if bad.any():
            line = int(np.argmax(bad)) + 2
            fail(
                path,
                f"{name} (line {line})",
                f"expected a probability in [0, 1], got {frame[name].iloc[line - 2]!r}",
            )

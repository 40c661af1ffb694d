"""The paper's experimental protocol (Sec. 4.1): ACNN runs per setting, condition, seed and fold.

Settings: ``within`` = leave-one-session-out cross-validation on ``protocol.within_corpus`` (fold f tests
on session f and trains on all others; no development split is held out because the paper names no
model selection: the fixed number of epochs is trained and the last epoch evaluated); ``cross`` = train
on all of ``protocol.cross_corpus_train``, test on all of ``protocol.cross_corpus_test`` (fold 0, with
``acnn.dropout_keep_probability_cross``).

Conditions: ``autoencoder_corpus`` 'none' (BL: no AE vector), 'target' (C: AE trained on the corpus being
tested) or a corpus key; the AE vectors are concatenated raw (they are tanh outputs in (-1, 1), as the
paper feeds them), not standardised.

Every run is independent and writes ``<output_dir>/results/<setting>/<condition>/seed<k>/fold<f>/``:
``predictions.csv``, ``hidden.h5`` (datasets ``ids``, ``hidden`` = last hidden layer [N, H], ``attention``
= attention weights [N, steps]) and, last and atomically, ``metrics.json``, whose presence (with the same
parameter fingerprint) marks the run finished so a re-run skips it. Cross-corpus runs also keep
``model.keras`` and ``model.json`` (feature and AE parameters, for ``serlib predict``).

Summary (``run_protocol``/``render_table``): a seed's within-corpus UAR is the mean of its fold UARs (as
the paper; the UAR of the seed's pooled predictions is kept as ``*_pooled_mean``); per condition the mean,
min and max over seeds, a 95 % t confidence interval over seeds and a paired test against BL over
seeds; ``table1.csv``/``table1.md`` (UAR in %), ``runs.csv`` and Figure 2 (mean row-normalised confusion
matrices over seeds, BL vs the best or the configured AE condition).

Determinism: a run seeds Python, NumPy and TensorFlow with its seed (``keras.utils.set_random_seed``);
on one machine with the same number of threads its predictions are bit-identical across processes.
Parallel workers use fewer threads per process than a serial run, which changes floating-point
summation order: probabilities then differ in about the sixth decimal (predicted classes agreed in
every demo run checked). TensorFlow's op-determinism switch is not set (CPU kernels are deterministic
for a fixed thread count; on GPUs set ``TF_DETERMINISTIC_OPS=1`` if bit-identity is needed).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from serlib import metrics, provenance
from serlib.config import CONDITION_SOURCE_TARGET, CONDITION_SOURCES_NONE, ConditionConfig, Config
from serlib.corpora import EMOTIONS, LEVELS
from serlib.progress import bar as progress_bar
from serlib.progress import interactive

log = logging.getLogger(__name__)

SETTINGS = ("within", "cross")
CROSS_FOLD = 0
PREDICTION_COLUMNS = (
    "utterance_id",
    "fold",
    "seed",
    "condition",
    "true",
    "predicted",
    *(f"p_{emotion}" for emotion in EMOTIONS),
    "arousal_true",
    "arousal_predicted",
    "valence_true",
    "valence_predicted",
)
RUN_COLUMNS = (
    "setting",
    "condition",
    "seed",
    "fold",
    "uar",
    "accuracy",
    "arousal_uar",
    "valence_uar",
    "n_train",
    "n_test",
    "epochs",
    "final_loss",
    "train_seconds",
)
FIGURE2_STEM = "figure2_confusion"
_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")


class ProtocolError(ValueError):
    """The protocol cannot run as configured; the message names the key, file or corpus and the fix."""


# -- labeled data as arrays -------------------------------------------------------------------------
@dataclass(frozen=True)
class LabeledData:
    """Aligned arrays of one labeled corpus: log-Mel inputs, labels, groups and an optional AE vector."""

    ids: np.ndarray  # [N] str
    logmel: np.ndarray  # [N, frames, bands] float32, zero-padded
    lengths: np.ndarray  # [N] true frames
    emotion: np.ndarray  # [N] int index into EMOTIONS
    arousal: np.ndarray  # [N] int index into LEVELS, -1 where unrated
    valence: np.ndarray  # [N] int index into LEVELS, -1 where unrated
    session: np.ndarray  # [N] str
    speaker: np.ndarray  # [N] str
    external: np.ndarray | None = None  # [N, D] float32 AE representation

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, index: np.ndarray) -> LabeledData:
        return LabeledData(
            self.ids[index],
            self.logmel[index],
            self.lengths[index],
            self.emotion[index],
            self.arousal[index],
            self.valence[index],
            self.session[index],
            self.speaker[index],
            None if self.external is None else self.external[index],
        )

    def inputs(self) -> dict[str, np.ndarray]:
        from serlib.acnn import LOGMEL_INPUT, REPRESENTATION_INPUT

        feeds = {LOGMEL_INPUT: self.logmel}
        if self.external is not None:
            feeds[REPRESENTATION_INPUT] = self.external
        return feeds

    def targets(self) -> dict[str, np.ndarray]:
        return {"emotion": self.emotion, "arousal": self.arousal, "valence": self.valence}


def _class_index(values: Iterable[str], classes: tuple[str, ...], missing: int | None) -> np.ndarray:
    lookup = {name: i for i, name in enumerate(classes)}
    out = []
    for value in values:
        if value in lookup:
            out.append(lookup[value])
        elif missing is not None and value in ("", "nan"):
            out.append(missing)
        else:
            raise ProtocolError(f"label {value!r} is not one of {classes}")
    return np.asarray(out, dtype=np.int32)


def labeled_data(
    manifest: pd.DataFrame,
    ids: Iterable[str],
    features: np.ndarray,
    lengths: np.ndarray,
    source: str = "corpus",
    skipped: Iterable[str] = (),
) -> LabeledData:
    """Align a manifest's 4-class utterances with their log-Mel features by utterance id.

    Utterances without an emotion of ``EMOTIONS`` are left out; an utterance whose features are missing
    is an error unless the feature store reported it as skipped.
    """
    labeled = manifest[manifest["emotion"].isin(EMOTIONS)]
    if labeled.empty:
        raise ProtocolError(f"{source}: no utterance with an emotion of {EMOTIONS}; is it a labeled corpus?")
    position = {utterance: i for i, utterance in enumerate(ids)}
    skipped = set(skipped)
    present = labeled["utterance_id"].isin(position)
    absent = labeled.loc[~present, "utterance_id"].tolist()
    unexplained = [u for u in absent if u not in skipped]
    if unexplained:
        raise ProtocolError(
            f"{source}: {len(unexplained)} labeled utterances have no log-Mel features (e.g. {unexplained[:3]}); "
            "re-run `serlib extract` for this corpus"
        )
    if absent:
        log.warning("%s: %d labeled utterances were skipped by feature extraction", source, len(absent))
    labeled = labeled[present]
    rows = np.asarray([position[u] for u in labeled["utterance_id"]], dtype=np.int64)
    return LabeledData(
        ids=labeled["utterance_id"].astype(str).to_numpy(),
        logmel=np.asarray(features[rows], dtype=np.float32),
        lengths=np.asarray(lengths, dtype=np.int32)[rows],
        emotion=_class_index(labeled["emotion"], EMOTIONS, None),
        arousal=_class_index(labeled["arousal_class"].astype(str), LEVELS, -1),
        valence=_class_index(labeled["valence_class"].astype(str), LEVELS, -1),
        session=labeled["session"].astype(str).to_numpy(),
        speaker=labeled["speaker"].astype(str).to_numpy(),
    )


def with_representations(
    data: LabeledData, ids: Iterable[str], vectors: np.ndarray, source: str
) -> LabeledData:
    """``data`` with the AE vector of each utterance attached (aligned by utterance id)."""
    position = {str(utterance): i for i, utterance in enumerate(ids)}
    missing = [u for u in data.ids if u not in position]
    if missing:
        raise ProtocolError(
            f"{source}: {len(missing)} utterances have no autoencoder representation (e.g. {missing[:3]}); "
            "re-run `serlib encode` for this corpus"
        )
    rows = np.asarray([position[u] for u in data.ids], dtype=np.int64)
    return replace(data, external=np.asarray(vectors, dtype=np.float32)[rows])


# -- folds --------------------------------------------------------------------------------------------
def session_folds(sessions: Iterable[str]) -> np.ndarray:
    """The fold number of each utterance: its session number when every session is an integer (IEMOCAP
    1-5), else the 1-based position of its session in sorted order."""
    sessions = np.asarray([str(s) for s in sessions])
    unique = sorted(set(sessions.tolist()))
    if all(re.fullmatch(r"\d+", s) for s in unique):
        numbers = {s: int(s) for s in unique}
        if len(set(numbers.values())) != len(unique):  # "1" and "01"
            numbers = {s: i + 1 for i, s in enumerate(sorted(unique, key=int))}
    else:
        numbers = {s: i + 1 for i, s in enumerate(unique)}
    return np.asarray([numbers[s] for s in sessions], dtype=np.int64)


def fold_indices(folds_of_items: np.ndarray, fold: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices of leave-one-session-out fold ``fold`` (scikit-learn's LeaveOneGroupOut)."""
    from sklearn.model_selection import LeaveOneGroupOut

    groups = np.asarray(folds_of_items)
    if fold not in set(groups.tolist()):
        raise ProtocolError(
            f"fold {fold} does not exist; the sessions give folds {sorted(set(groups.tolist()))}"
        )
    if len(set(groups.tolist())) < 2:
        raise ProtocolError("leave-one-session-out needs at least 2 sessions in the within corpus")
    for train, test in LeaveOneGroupOut().split(groups, groups=groups):
        if groups[test[0]] == fold:
            return train, test
    raise AssertionError("unreachable")  # pragma: no cover


# -- one run ------------------------------------------------------------------------------------------
@dataclass
class TrainedRun:
    model: Any
    probabilities: dict[str, np.ndarray]
    hidden: np.ndarray
    attention: np.ndarray
    history: dict[str, list[float]]
    seconds: float
    normalisation: tuple[np.ndarray, np.ndarray] | None
    tensorflow: dict[str, Any] | None = None  # serlib.runtime.settings() while training
    selected_epoch: int | None = None  # with acnn.model_selection: the epoch whose weights were kept


def fit_predict(
    config: Config,
    train: LabeledData,
    test: LabeledData,
    seed: int,
    keep_probability: float | None = None,
    progress: Any = None,
    development: LabeledData | None = None,
) -> TrainedRun:
    """Train a fresh ACNN on ``train`` for ``acnn.epochs`` epochs (seeded) and predict ``test``.

    With ``development`` data, the weights of the epoch with the best development UAR are kept and
    training stops after ``acnn.patience`` epochs without a better one (``acnn.model_selection``).
    """
    import keras

    from serlib import acnn, normalisation, runtime

    if (train.external is None) != (test.external is None):
        raise ProtocolError("train and test data must both have or both lack the AE representation")
    tensorflow_settings = runtime.configure()
    keras.utils.set_random_seed(int(seed))
    statistics = None
    if config.acnn.normalisation == "standardise":
        statistics = normalisation.band_statistics(train.logmel, train.lengths)
    external_dim = 0 if train.external is None else int(train.external.shape[1])
    model = acnn.build_acnn(
        config, external_dim=external_dim, keep_probability=keep_probability, normalisation=statistics
    )
    callbacks = [progress] if progress is not None else []
    selection = None
    if development is not None:
        selection = _DevelopmentSelection(development, config.acnn.patience)
        callbacks.insert(0, selection.callback())
    start = time.perf_counter()
    history = model.fit(
        train.inputs(),
        train.targets(),
        batch_size=config.acnn.batch_size,
        epochs=config.acnn.epochs,
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
    )
    seconds = time.perf_counter() - start
    history_values = {k: [float(x) for x in v] for k, v in history.history.items()}
    if selection is not None:
        model.set_weights(selection.best_weights)
        history_values["development_uar"] = selection.scores
    outputs = acnn.predict_all(model, test.inputs())
    probabilities = {name: outputs[name] for name in acnn.HEADS}
    hidden, attention = outputs[acnn.HIDDEN_LAYER], outputs["attention"]
    return TrainedRun(
        model=model,
        probabilities=probabilities,
        hidden=np.asarray(hidden, dtype=np.float32),
        attention=np.asarray(attention, dtype=np.float32),
        history=history_values,
        seconds=seconds,
        normalisation=statistics,
        tensorflow=tensorflow_settings,
        selected_epoch=None if selection is None else selection.best_epoch,
    )


class _DevelopmentSelection:
    """Development UAR after every epoch; the best epoch's weights; early stop after ``patience``."""

    def __init__(self, development: LabeledData, patience: int) -> None:
        self.development, self.patience = development, patience
        self.scores: list[float] = []
        self.best_epoch = 0
        self.best_weights: list[np.ndarray] = []

    def callback(self) -> Any:
        import keras

        from serlib import acnn

        selection = self

        class DevelopmentUAR(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                outputs = acnn.predict_all(self.model, selection.development.inputs())
                score = metrics.uar(selection.development.emotion, outputs["emotion"].argmax(axis=1))
                selection.scores.append(score)
                if not selection.best_weights or score > max(selection.scores[:-1]):
                    selection.best_epoch, selection.best_weights = epoch + 1, self.model.get_weights()
                elif epoch + 1 - selection.best_epoch >= selection.patience:
                    self.model.stop_training = True

        return DevelopmentUAR()


def development_split(train: LabeledData, test: LabeledData | None = None) -> tuple[LabeledData, LabeledData]:
    """(training, development) data: one training session held out as development set. Within a
    corpus (``test`` = the fold's test data), the session following the test session in the corpus'
    fold order, cyclically; across corpora (no ``test``), the training corpus' last session."""
    sessions = train.session if test is None else np.concatenate([train.session, test.session])
    folds = session_folds(sessions)[: len(train)]  # fold numbers of the whole corpus
    training = sorted(set(folds.tolist()))
    if len(training) < 2:
        raise ProtocolError(
            "acnn.model_selection: held_out_session needs at least 2 training sessions; use 'none'"
        )
    if test is None:
        chosen = training[-1]
    else:
        tested = int(session_folds(sessions)[len(train)])
        chosen = next((s for s in training if s > tested), training[0])
    return train.subset(np.flatnonzero(folds != chosen)), train.subset(np.flatnonzero(folds == chosen))


def run_folder(output_dir: str | Path, setting: str, condition: str, seed: int, fold: int) -> Path:
    return Path(output_dir) / "results" / setting / condition / f"seed{seed}" / f"fold{fold}"


def _labels_uar(true: np.ndarray, predicted: np.ndarray) -> float:
    rated = true >= 0
    return metrics.uar(true[rated], predicted[rated]) if rated.any() else math.nan


def write_run(
    folder: Path,
    trained: TrainedRun,
    test: LabeledData,
    *,
    setting: str,
    condition: str,
    seed: int,
    fold: int,
    n_train: int,
    extra: dict[str, Any] | None = None,
    model_metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write predictions.csv, hidden.h5, (model.keras, model.json) and, last, metrics.json of one run."""
    folder.mkdir(parents=True, exist_ok=True)
    emotion_p = trained.probabilities["emotion"]
    predicted = emotion_p.argmax(axis=1)
    arousal_predicted = trained.probabilities["arousal"].argmax(axis=1)
    valence_predicted = trained.probabilities["valence"].argmax(axis=1)
    frame = pd.DataFrame(
        {
            "utterance_id": test.ids,
            "fold": fold,
            "seed": seed,
            "condition": condition,
            "true": [EMOTIONS[i] for i in test.emotion],
            "predicted": [EMOTIONS[i] for i in predicted],
            **{f"p_{name}": emotion_p[:, i] for i, name in enumerate(EMOTIONS)},
            "arousal_true": [LEVELS[i] if i >= 0 else "" for i in test.arousal],
            "arousal_predicted": [LEVELS[i] for i in arousal_predicted],
            "valence_true": [LEVELS[i] if i >= 0 else "" for i in test.valence],
            "valence_predicted": [LEVELS[i] for i in valence_predicted],
        }
    )
    _write_csv(frame.loc[:, list(PREDICTION_COLUMNS)], folder / "predictions.csv", float_format="%.6f")
    _write_hidden(
        folder / "hidden.h5", test.ids, trained.hidden, trained.attention, setting, condition, seed, fold
    )
    if model_metadata is not None:
        tmp = folder / f".model.tmp{os.getpid()}.keras"
        trained.model.save(tmp)
        os.replace(tmp, folder / "model.keras")
        _write_json(model_metadata, folder / "model.json")
    result = {
        "setting": setting,
        "condition": condition,
        "seed": int(seed),
        "fold": int(fold),
        "uar": metrics.uar(test.emotion, predicted),
        "accuracy": float(np.mean(test.emotion == predicted)),
        "arousal_uar": _labels_uar(test.arousal, arousal_predicted),
        "valence_uar": _labels_uar(test.valence, valence_predicted),
        "confusion": metrics.confusion(test.emotion, predicted, range(len(EMOTIONS))).tolist(),
        "classes": list(EMOTIONS),
        "n_train": int(n_train),
        "n_test": len(test),
        "epochs": len(trained.history.get("loss", [])),
        "final_loss": trained.history["loss"][-1] if trained.history.get("loss") else math.nan,
        "loss_history": trained.history.get("loss", []),
        "train_seconds": round(trained.seconds, 3),
        "tensorflow": trained.tensorflow,
        **(extra or {}),
    }
    _write_json(result, folder / "metrics.json")  # last: marks the run finished
    return result


def _write_hidden(
    path: Path,
    ids: np.ndarray,
    hidden: np.ndarray,
    attention: np.ndarray,
    setting: str,
    condition: str,
    seed: int,
    fold: int,
) -> None:
    import h5py

    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with h5py.File(tmp, "w") as handle:
        handle.create_dataset("ids", data=np.asarray(ids, dtype=object), dtype=h5py.string_dtype("utf-8"))
        handle.create_dataset("hidden", data=hidden.astype(np.float32))
        handle.create_dataset("attention", data=attention.astype(np.float32))
        handle.attrs.update(
            {
                "setting": setting,
                "condition": condition,
                "seed": seed,
                "fold": fold,
                "layer": "ACNN last hidden layer: attention output (+ AE vector), before dropout and softmax",
            }
        )
    os.replace(tmp, path)


def read_hidden(path: str | Path) -> tuple[list[str], np.ndarray]:
    """The utterance ids and last-hidden-layer vectors stored by a run (``hidden.h5``)."""
    import h5py

    with h5py.File(path, "r") as handle:
        return [str(x) for x in handle["ids"].asstr()[...]], np.asarray(
            handle["hidden"][...], dtype=np.float32
        )


def _write_json(data: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, default=_json_default, allow_nan=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _write_csv(frame: pd.DataFrame, path: Path, **options: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    frame.to_csv(tmp, index=False, **options)
    os.replace(tmp, path)


def _write_text(text: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# -- sources: which corpora and AE vectors a run uses -------------------------------------------------
def corpora_of(config: Config, setting: str) -> tuple[str, str]:
    """(training corpus, test corpus) of a setting."""
    protocol = config.protocol
    if setting == "within":
        if protocol.within_corpus is None:
            raise ProtocolError("protocol.within_corpus is not set, so the within setting cannot run")
        return protocol.within_corpus, protocol.within_corpus
    if setting == "cross":
        if protocol.cross_corpus_train is None or protocol.cross_corpus_test is None:
            raise ProtocolError(
                "protocol.cross_corpus_train and cross_corpus_test must be set for the cross setting"
            )
        return protocol.cross_corpus_train, protocol.cross_corpus_test
    raise ProtocolError(f"unknown setting {setting!r}; use one of {SETTINGS}")


def autoencoder_corpus(config: Config, setting: str, condition: ConditionConfig) -> str | None:
    """The corpus the condition's AE is trained on (None for BL); 'target' = the corpus being tested."""
    source = condition.autoencoder_corpus
    if source == CONDITION_SOURCES_NONE:
        return None
    if source == CONDITION_SOURCE_TARGET:
        return corpora_of(config, setting)[1]
    return source


def prepare_sources(config: Config, setting: str, condition: ConditionConfig) -> dict[str, Any]:
    """Train (or reuse) the condition's AE and encode the training and test corpora; returns the paths.

    Called once per (setting, condition) in the main process before any ACNN run, so parallel workers
    only read finished files.
    """
    train_key, test_key = corpora_of(config, setting)
    ae_key = autoencoder_corpus(config, setting, condition)
    sources: dict[str, Any] = {
        "train_corpus": train_key,
        "test_corpus": test_key,
        "autoencoder_corpus": ae_key,
    }
    if ae_key is None:
        return sources
    from serlib import autoencoder

    model_path = autoencoder.train_configured(config, ae_key, epochs=condition.autoencoder_epochs)
    sources["autoencoder_model"] = str(model_path)
    sources["autoencoder_epochs"] = condition.autoencoder_epochs or config.autoencoder.epochs
    for role, key in (("train", train_key), ("test", test_key)):
        if role == "test" and key == train_key:
            sources["test_representations"] = sources["train_representations"]
            continue
        representations = autoencoder.encode_configured(config, model_path, key)
        sources[f"{role}_representations"] = str(representations.path)
    return sources


def read_representations(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Utterance ids and vectors of a representation HDF5 file (datasets ``ids`` and ``vectors``)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise ProtocolError(f"representation file {path} does not exist; re-run `serlib encode`")
    with h5py.File(path, "r") as handle:
        if "ids" not in handle or "vectors" not in handle:
            raise ProtocolError(f"{path} lacks the datasets 'ids' and 'vectors' of a representation store")
        return [str(x) for x in handle["ids"].asstr()[...]], np.asarray(
            handle["vectors"][...], dtype=np.float32
        )


# corpus key -> (store file, its mtime, arrays); at most two corpora (a cross pair) stay in memory
_DATA_CACHE: dict[str, tuple[Path, int, LabeledData]] = {}


def extract_features(config: Config, key: str, extractor: str = "logmel") -> Any:
    """The FeatureSet of corpus ``key`` (``store.extract_configured``; cached on disk, loaded lazily)."""
    from serlib import store

    return store.extract_configured(config, key, extractor)


def labeled_manifest(config: Config, key: str) -> pd.DataFrame:
    """The manifest of corpus ``key`` restricted to the four emotion classes."""
    from serlib import corpora

    manifest = corpora.load_configured(config, key)
    return manifest[manifest["emotion"].isin(EMOTIONS)]


def _stamp(path: Path) -> int:
    return path.stat().st_mtime_ns if path.exists() else 0


def load_labeled(config: Config, key: str, store_name: str | None = None) -> LabeledData:
    """The 4-class labeled utterances of corpus ``key`` with their log-Mel features (feature store).

    With ``features.normalisation`` ``corpus`` or ``speaker``, the features are first standardised with
    the statistics of every utterance of the corpus (or of the speaker) in the store, whatever its label
    (``serlib.normalisation``). Kept in memory per process; with ``store_name`` (the store file of
    ``data_identity``) a kept copy of that unchanged file is returned without asking the store again.
    """
    mode = config.features.normalisation
    cache_key = f"{key}/{mode}"
    cached = _DATA_CACHE.get(cache_key)
    if cached is not None and store_name == cached[0].name and _stamp(cached[0]) == cached[1]:
        return cached[2]
    features = extract_features(config, key, "logmel")
    path = Path(features.path)
    if cached is not None and cached[0] == path and cached[1] == _stamp(path):
        return cached[2]
    manifest = labeled_manifest(config, key)
    expected = (config.features.logmel.max_frames, config.features.logmel.bands)
    if tuple(features.features.shape[1:]) != expected:
        raise ProtocolError(
            f"log-Mel store {features.path} holds [frames, bands] = {tuple(features.features.shape[1:])}, "
            f"the configuration asks for {expected}; re-run `serlib extract`"
        )
    values = features.features
    if mode != "train":
        from serlib import corpora, normalisation

        speakers = corpora.load_configured(config, key).set_index("utterance_id")["speaker"]
        groups = normalisation.groups_for(mode, speakers.reindex(features.ids).fillna("").to_numpy(), key)
        values = normalisation.standardise_frames(values, features.lengths, groups)
    data = labeled_data(
        manifest,
        features.ids,
        values,
        features.lengths,
        source=f"corpora.{key}",
        skipped=[item[0] for item in getattr(features, "skipped", [])],
    )
    _DATA_CACHE.pop(cache_key, None)
    while len(_DATA_CACHE) >= 2:
        _DATA_CACHE.pop(next(iter(_DATA_CACHE)))
    _DATA_CACHE[cache_key] = (path, _stamp(path), data)
    return data


def run_data(
    config: Config, setting: str, fold: int, sources: dict[str, Any]
) -> tuple[LabeledData, LabeledData]:
    """The training and test arrays of one run (with AE vectors when the condition has them)."""
    train_key, test_key = sources["train_corpus"], sources["test_corpus"]
    identity = sources.get("identity", {})
    train = load_labeled(config, train_key, identity.get(f"{train_key}/logmel"))
    test = (
        train if test_key == train_key else load_labeled(config, test_key, identity.get(f"{test_key}/logmel"))
    )
    if sources.get("autoencoder_corpus"):
        ids, vectors = read_representations(sources["train_representations"])
        train = with_representations(train, ids, vectors, f"corpora.{train_key}")
        if test_key == train_key:
            test = train
        else:
            ids, vectors = read_representations(sources["test_representations"])
            test = with_representations(test, ids, vectors, f"corpora.{test_key}")
    if setting == "within":
        train_index, test_index = fold_indices(session_folds(train.session), fold)
        return train.subset(train_index), train.subset(test_index)
    return train, test


# -- fingerprints and run enumeration -----------------------------------------------------------------
def data_identity(
    config: Config, setting: str, condition: ConditionConfig, memo: dict[tuple[str, str], str] | None = None
) -> dict[str, str]:
    """The feature-store files a run reads (their names hash the audio files' identity and the feature
    parameters): log-Mel of the labeled corpora and, for AE conditions, the spectrograms of the AE's
    and the labeled corpora. Extracts what is not in the store yet (needed by the run anyway)."""
    memo = {} if memo is None else memo

    def name(key: str, extractor: str) -> str:
        if (key, extractor) not in memo:
            memo[(key, extractor)] = Path(extract_features(config, key, extractor).path).name
        return memo[(key, extractor)]

    train_key, test_key = corpora_of(config, setting)
    identity = {f"{key}/logmel": name(key, "logmel") for key in sorted({train_key, test_key})}
    ae_key = autoencoder_corpus(config, setting, condition)
    if ae_key is not None:
        for key in sorted({ae_key, train_key, test_key}):
            identity[f"{key}/spectrogram"] = name(key, "spectrogram")
    return identity


def fingerprint(
    config: Config, setting: str, condition: ConditionConfig, identity: dict[str, str] | None = None
) -> str:
    """Hash of every parameter and input file a run's result depends on (``data_identity``; not
    n_jobs, output paths or jit), so a changed parameter or corpus repeats the run."""
    identity = data_identity(config, setting, condition) if identity is None else identity
    train_key, test_key = corpora_of(config, setting)
    ae_key = autoencoder_corpus(config, setting, condition)
    keys = sorted({train_key, test_key, *([ae_key] if ae_key else [])})
    acnn = config.acnn.model_dump(mode="json")
    acnn.pop("jit_compile", None)
    parts: dict[str, Any] = {
        "setting": setting,
        "acnn": acnn,
        "logmel": config.features.logmel.model_dump(mode="json"),
        "normalisation": config.features.normalisation,
        "audio": config.audio.model_dump(mode="json"),
        "corpora": {k: config.corpora[k].model_dump(mode="json") for k in keys},
        "autoencoder_corpus": ae_key,
        "data": identity,
    }
    if ae_key is not None:
        autoencoder = config.autoencoder.model_dump(mode="json")
        for key in ("jit_compile", "mixed_precision", "distribution", "encode_batch_size"):
            autoencoder.pop(key, None)
        autoencoder["epochs"] = condition.autoencoder_epochs or config.autoencoder.epochs
        parts["autoencoder"] = autoencoder
        parts["spectrogram"] = config.features.spectrogram.model_dump(mode="json")
        parts["autoencoder_seed"] = config.seed
    if any(config.corpora[k].type == "demo" for k in keys):
        parts["demo_corpus"] = config.demo_corpus
    text = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _settings(config: Config) -> list[str]:
    protocol = config.protocol
    settings = []
    if protocol.within_corpus is not None:
        settings.append("within")
    if protocol.cross_corpus_train is not None and protocol.cross_corpus_test is not None:
        settings.append("cross")
    return settings


def within_folds(config: Config) -> list[int]:
    """The within-corpus folds to run: ``protocol.folds`` or every session of the within corpus."""
    key = config.protocol.within_corpus
    if key is None:
        raise ProtocolError("protocol.within_corpus is not set, so there are no within-corpus folds")
    labeled = labeled_manifest(config, key)
    available = sorted(set(session_folds(labeled["session"]).tolist()))
    if config.protocol.folds is None:
        return available
    unknown = [f for f in config.protocol.folds if f not in available]
    if unknown:
        raise ProtocolError(
            f"protocol.folds {unknown} are not sessions of corpora.{key} (folds: {available})"
        )
    return list(config.protocol.folds)


@dataclass(frozen=True)
class RunKey:
    setting: str
    condition: str
    seed: int
    fold: int


def grid(config: Config, folds: list[int] | None = None) -> list[RunKey]:
    """Every (setting, condition, seed, fold) of the configured protocol, in a stable order."""
    runs = []
    for setting in _settings(config):
        setting_folds = (
            [CROSS_FOLD] if setting == "cross" else (folds if folds is not None else within_folds(config))
        )
        for condition in config.protocol.conditions:
            for seed in config.protocol.seeds:
                for fold in setting_folds:
                    runs.append(RunKey(setting, condition.name, int(seed), int(fold)))
    return runs


def finished(config: Config, key: RunKey, expected: str | None = None) -> dict[str, Any] | None:
    """The stored metrics of a finished run with the current parameters (fingerprint ``expected``,
    computed when not given), else None."""
    path = run_folder(config.output_dir, key.setting, key.condition, key.seed, key.fold) / "metrics.json"
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        log.warning("%s is unreadable; the run is repeated", path)
        return None
    if expected is None:
        expected = fingerprint(config, key.setting, config.condition(key.condition))
    if stored.get("fingerprint") != expected:
        log.warning("%s was computed with other parameters; the run is repeated", path)
        return None
    return stored


# -- run_one ------------------------------------------------------------------------------------------
def _epoch_bar(total: int, description: str) -> Any:
    """A Keras callback showing progress over a run's epochs (a bar, or a line per tenth in a log)."""
    import keras

    class EpochBar(keras.callbacks.Callback):
        def on_train_begin(self, logs: Any = None) -> None:
            self.bar = progress_bar(total, description, unit="epoch", leave=False)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.bar.update(1)
            if logs and "loss" in logs:
                self.bar.set_postfix(loss=f"{float(logs['loss']):.3f}")

        def on_train_end(self, logs: Any = None) -> None:
            self.bar.close()

    return EpochBar()


def run_one(
    config: Config,
    setting: str,
    condition: str,
    seed: int,
    fold: int,
    sources: dict[str, Any] | None = None,
    epoch_progress: bool = False,
) -> dict[str, Any]:
    """Train and evaluate one ACNN (setting, condition, seed, fold); skipped when already finished.

    ``sources`` are the AE/representation paths from ``prepare_sources`` plus the run's ``fingerprint``
    (computed here when omitted). Returns the run's metrics (the content of its ``metrics.json``).
    """
    if setting not in SETTINGS:
        raise ProtocolError(f"unknown setting {setting!r}; use one of {SETTINGS}")
    key = RunKey(setting, condition, int(seed), int(fold))
    condition_config = config.condition(condition)
    expected = (sources or {}).get("fingerprint") or fingerprint(config, setting, condition_config)
    done = finished(config, key, expected)
    if done is not None:
        return done
    if sources is None:
        sources = prepare_sources(config, setting, condition_config)
    train, test = run_data(config, setting, key.fold, sources)
    keep = (
        config.acnn.dropout_keep_probability_cross
        if setting == "cross"
        else config.acnn.dropout_keep_probability
    )
    label = f"{setting} {condition} seed {seed} fold {fold}"
    development = None
    if config.acnn.model_selection == "held_out_session":
        train, development = development_split(train, test if setting == "within" else None)
    # epochs as a bar in terminals and notebooks; a log gets one line per finished run instead
    bar = _epoch_bar(config.acnn.epochs, label) if epoch_progress and interactive() else None
    trained = fit_predict(
        config, train, test, key.seed, keep_probability=keep, progress=bar, development=development
    )
    extra = {
        "fingerprint": expected,
        "keep_probability": keep,
        "external_dim": 0 if train.external is None else int(train.external.shape[1]),
        "train_corpus": sources["train_corpus"],
        "test_corpus": sources["test_corpus"],
        "autoencoder_corpus": sources.get("autoencoder_corpus"),
        "autoencoder_model": sources.get("autoencoder_model"),
    }
    if development is not None:
        extra["development_session"] = str(development.session[0])
        extra["selected_epoch"] = trained.selected_epoch
        extra["development_uar"] = trained.history.get("development_uar", [])
    model_metadata = None
    if setting == "cross":
        model_metadata = _model_metadata(config, sources, trained, keep, condition, key.seed)
    folder = run_folder(config.output_dir, setting, condition, key.seed, key.fold)
    result = write_run(
        folder,
        trained,
        test,
        setting=setting,
        condition=condition,
        seed=key.seed,
        fold=key.fold,
        n_train=len(train),
        extra=extra,
        model_metadata=model_metadata,
    )
    log.info("%s: UAR %.4f (%d test utterances, %.1f s)", label, result["uar"], len(test), trained.seconds)
    return result


def _model_metadata(
    config: Config, sources: dict[str, Any], trained: TrainedRun, keep: float, condition: str, seed: int
) -> dict[str, Any]:
    """What ``serlib predict`` needs besides model.keras: feature and AE parameters and the class names."""
    ae = None
    if sources.get("autoencoder_corpus"):
        ae = {
            "corpus": sources["autoencoder_corpus"],
            "model": sources.get("autoencoder_model"),
            "epochs": sources.get("autoencoder_epochs"),
            "parameters": config.autoencoder.model_dump(mode="json"),
            "spectrogram": config.features.spectrogram.model_dump(mode="json"),
        }
    return {
        "format": "serlib-acnn-1",
        "condition": condition,
        "seed": seed,
        "train_corpus": sources["train_corpus"],
        "classes": {"emotion": list(EMOTIONS), "arousal": list(LEVELS), "valence": list(LEVELS)},
        "inputs": {"logmel": [config.features.logmel.max_frames, config.features.logmel.bands]}
        | ({"representation": int(trained.hidden.shape[1] - config.acnn.filters)} if ae else {}),
        "audio": config.audio.model_dump(mode="json"),
        "logmel": config.features.logmel.model_dump(mode="json"),
        "acnn": config.acnn.model_dump(mode="json"),
        "keep_probability": keep,
        "feature_normalisation": config.features.normalisation,
        "normalisation": None
        if trained.normalisation is None
        else {
            "mean": trained.normalisation[0].tolist(),
            "std": trained.normalisation[1].tolist(),
            "in_model": True,
        },
        "autoencoder": ae,
    }


# -- the whole protocol -------------------------------------------------------------------------------
def run_protocol(
    config: Config,
    n_jobs: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Run every unfinished (setting, condition, seed, fold), then write runs.csv, Table 1 and Figure 2.

    AE training and encoding happen once per condition in this process before any ACNN run; with
    ``n_jobs`` (default ``protocol.n_jobs``; 0 = all cores) > 1 or ``protocol.scheduler_address`` set,
    the ACNN runs are Dask tasks (``serlib.cluster.run_grid``), else they run here one after another.
    Returns Table 1 as a DataFrame.
    """
    for condition in config.protocol.conditions:
        if not _NAME.match(condition.name):
            raise ProtocolError(
                f"protocol.conditions name {condition.name!r} must be letters, digits, '_', '-', '.' or '+' "
                "(it names a results folder)"
            )
    if config.protocol.figure2_condition is not None:
        config.condition(config.protocol.figure2_condition)  # raises ConfigError when unknown
    from serlib import cluster

    jobs = cluster.worker_count(config.protocol.n_jobs if n_jobs is None else n_jobs)
    folds = within_folds(config) if "within" in _settings(config) else []
    runs = grid(config, folds)
    memo: dict[tuple[str, str], str] = {}
    identities = {
        (setting, c.name): data_identity(config, setting, c, memo)
        for setting in _settings(config)
        for c in config.protocol.conditions
    }
    fingerprints = {
        (setting, name): fingerprint(config, setting, config.condition(name), identity)
        for (setting, name), identity in identities.items()
    }
    _write_protocol(config, folds, fingerprints)
    pending = [
        key for key in runs if finished(config, key, fingerprints[(key.setting, key.condition)]) is None
    ]
    log.info(
        "%d runs configured, %d already finished, %d to do", len(runs), len(runs) - len(pending), len(pending)
    )
    if pending:
        sources: dict[tuple[str, str], dict[str, Any]] = {}
        for setting, name in dict.fromkeys((key.setting, key.condition) for key in pending):
            prepared = prepare_sources(config, setting, config.condition(name))
            sources[(setting, name)] = prepared | {
                "fingerprint": fingerprints[(setting, name)],
                "identity": identities[(setting, name)],
            }
        bar = progress_bar(len(pending), "ACNN runs", unit="run", enabled=progress, every=True)
        if jobs <= 1 and config.protocol.scheduler_address is None:
            for key in pending:
                result = run_one(
                    config,
                    key.setting,
                    key.condition,
                    key.seed,
                    key.fold,
                    sources=sources[(key.setting, key.condition)],
                    epoch_progress=progress,
                )
                bar.set_postfix(last=f"{key.condition} {key.setting} UAR {result['uar']:.3f}")
                bar.update(1)
        else:  # Dask: protocol.scheduler_address, else a LocalCluster of `jobs` processes (serlib.cluster)

            def report(key: RunKey, result: dict[str, Any]) -> None:
                bar.set_postfix(last=f"{key.condition} {key.setting} UAR {result['uar']:.3f}")
                bar.update(1)

            cluster.run_grid(config, pending, sources, n_workers=jobs, on_result=report)
        bar.close()
    return summarise(config.output_dir, write_figures=True, figure_folders=_figure_folders(config))


def _figure_folders(config: Config) -> list[Path]:
    from serlib import plots

    return plots.figure_folders(config)


def _write_protocol(config: Config, folds: list[int], fingerprints: dict[tuple[str, str], str]) -> None:
    """results/protocol.json: the configured grid, so Table 1 can be re-rendered without the config."""
    baseline = next(
        (c.name for c in config.protocol.conditions if c.autoencoder_corpus == CONDITION_SOURCES_NONE), None
    )
    settings = {}
    for setting in _settings(config):
        train_key, test_key = corpora_of(config, setting)
        settings[setting] = {
            "train_corpus": train_key,
            "test_corpus": test_key,
            "folds": [CROSS_FOLD] if setting == "cross" else folds,
        }
    protocol = {
        "name": config.name,
        "conditions": [c.model_dump(mode="json") for c in config.protocol.conditions],
        "baseline": baseline,
        "seeds": list(config.protocol.seeds),
        "settings": settings,
        "figure2_condition": config.protocol.figure2_condition,
        "fingerprints": {f"{setting}/{name}": value for (setting, name), value in fingerprints.items()},
        "provenance": provenance.table_stamp(config),  # commit and config hash for Table 1's header line
    }
    _write_json(protocol, Path(config.output_dir) / "results" / "protocol.json")


# -- summary: runs.csv, Table 1, Figure 2 -------------------------------------------------------------
def _results_root(path: str | Path) -> Path:
    path = Path(path)
    if (path / "results" / "protocol.json").is_file():
        return path
    if (path / "protocol.json").is_file() and path.name == "results":
        return path.parent
    raise ProtocolError(
        f"{path} holds no protocol results (expected {path}/results/protocol.json); "
        "give the output folder of `serlib evaluate`"
    )


def collect_runs(output_dir: str | Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """The protocol description and one row per finished run of the configured grid."""
    root = _results_root(output_dir)
    protocol = json.loads((root / "results" / "protocol.json").read_text(encoding="utf-8"))
    rows = []
    names = [c["name"] for c in protocol["conditions"]]
    for setting, description in protocol["settings"].items():
        for condition in names:
            expected = protocol["fingerprints"].get(f"{setting}/{condition}")
            for seed in protocol["seeds"]:
                for fold in description["folds"]:
                    path = run_folder(root, setting, condition, seed, fold) / "metrics.json"
                    if not path.is_file():
                        continue
                    stored = json.loads(path.read_text(encoding="utf-8"))
                    if expected is not None and stored.get("fingerprint") != expected:
                        continue  # computed with other parameters: not part of this protocol's results
                    rows.append(
                        {column: stored.get(column) for column in RUN_COLUMNS} | {"folder": str(path.parent)}
                    )
    frame = pd.DataFrame(rows, columns=[*RUN_COLUMNS, "folder"])
    return protocol, frame


def _seed_scores(runs: pd.DataFrame) -> pd.DataFrame:
    """Per seed: mean fold UAR (the paper's), pooled UAR over the seed's folds, and the fold count."""
    rows = []
    for seed, group in runs.groupby("seed", sort=True):
        predictions = pd.concat(
            [pd.read_csv(Path(f) / "predictions.csv", dtype={"utterance_id": str}) for f in group["folder"]]
        )
        rows.append(
            {
                "seed": int(seed),
                "uar": float(group["uar"].mean()),
                "pooled_uar": metrics.uar(predictions["true"], predictions["predicted"]),
                "folds": len(group),
            }
        )
    return pd.DataFrame(rows, columns=["seed", "uar", "pooled_uar", "folds"])


def table1(protocol: dict[str, Any], runs: pd.DataFrame) -> pd.DataFrame:
    """Table 1 (UAR in %): one row per configured condition; per setting mean/min/max over seeds, the
    pooled alternative, std, 95 % CI, seed and fold counts, and the paired test against BL."""
    baseline = protocol.get("baseline")
    names = [c["name"] for c in protocol["conditions"]]
    sources = {c["name"]: c["autoencoder_corpus"] for c in protocol["conditions"]}
    scores = {
        (setting, name): _seed_scores(runs[(runs["setting"] == setting) & (runs["condition"] == name)])
        for setting in protocol["settings"]
        for name in names
    }
    rows = []
    for name in names:
        row: dict[str, Any] = {"condition": name, "autoencoder_corpus": sources[name]}
        for setting in SETTINGS:
            per_seed = scores.get((setting, name))
            prefix = f"{setting}_"
            if per_seed is None or per_seed.empty:
                row.update({prefix + k: math.nan for k in ("mean", "min", "max", "std", "ci_low", "ci_high")})
                row.update({prefix + "pooled_mean": math.nan, prefix + "seeds": 0, prefix + "folds": 0})
                row.update({prefix + k: math.nan for k in ("delta_vs_bl", "t_p", "wilcoxon_p")})
                continue
            summary = metrics.summarise(per_seed["uar"])
            for k in ("mean", "min", "max", "std", "ci_low", "ci_high"):
                row[prefix + k] = 100.0 * summary[k]
            row[prefix + "pooled_mean"] = 100.0 * float(per_seed["pooled_uar"].mean())
            row[prefix + "seeds"] = int(len(per_seed))
            row[prefix + "folds"] = int(per_seed["folds"].min())
            row.update(_against_baseline(per_seed, scores.get((setting, baseline)), name == baseline, prefix))
        rows.append(row)
    return pd.DataFrame(rows)


def _against_baseline(
    per_seed: pd.DataFrame, base: pd.DataFrame | None, is_baseline: bool, prefix: str
) -> dict[str, float]:
    empty = {prefix + "delta_vs_bl": math.nan, prefix + "t_p": math.nan, prefix + "wilcoxon_p": math.nan}
    if is_baseline or base is None or base.empty:
        return empty
    paired = per_seed.merge(base, on="seed", suffixes=("", "_bl"))
    if paired.empty:
        return empty
    test = metrics.paired_test(paired["uar"], paired["uar_bl"])
    return {
        prefix + "delta_vs_bl": 100.0 * test["mean_difference"],
        prefix + "t_p": test["t_p"],
        prefix + "wilcoxon_p": test["wilcoxon_p"],
    }


def _number(value: Any, digits: int = 2) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _p_value(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def table_markdown(protocol: dict[str, Any], table: pd.DataFrame) -> str:
    """Table 1 in the paper's layout (Markdown), followed by the confidence intervals and paired tests."""
    settings = protocol["settings"]
    heads = []
    for setting in SETTINGS:
        if setting in settings:
            corpus = settings[setting]["test_corpus"]
            heads.append(
                f"{corpus} (within, LOSO)"
                if setting == "within"
                else f"{corpus} (cross, from {settings[setting]['train_corpus']})"
            )
        else:
            heads.append(f"{setting} (not run)")
    stamp = provenance.stamp_text(protocol.get("provenance"))
    lines = [
        f"Table 1: UAR (%) of protocol '{protocol.get('name', '')}', mean/min/max over seeds "
        f"(a seed's within-corpus UAR is the mean over its folds){'; ' + stamp if stamp else ''}.",
        "",
        f"| Condition | {heads[0]} μ | min | max | {heads[1]} μ | min | max |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in table.to_dict("records"):
        cells = [row["condition"]]
        for setting in SETTINGS:
            cells += [_number(row[f"{setting}_{k}"]) for k in ("mean", "min", "max")]
        lines.append("| " + " | ".join(cells) + " |")
    baseline = protocol.get("baseline") or "BL"
    lines += [
        "",
        f"Beyond the paper: 95 % t confidence interval of the mean over seeds, difference to {baseline} and "
        f"paired tests against {baseline} over seeds (t-test; Wilcoxon signed-rank), pooled-prediction UAR.",
        "",
        "| Condition | Setting | seeds | folds | 95 % CI | Δ vs BL | t-test p | Wilcoxon p | pooled UAR |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for row in table.to_dict("records"):
        for setting in SETTINGS:
            if setting not in settings:
                continue
            interval = metrics.interval_text(
                row[f"{setting}_ci_low"], row[f"{setting}_ci_high"], int(row[f"{setting}_seeds"] or 0)
            )
            delta = row[f"{setting}_delta_vs_bl"]
            lines.append(
                f"| {row['condition']} | {setting} | {row[f'{setting}_seeds']} | {row[f'{setting}_folds']} | {interval} | "
                f"{'–' if isinstance(delta, float) and math.isnan(delta) else f'{delta:+.2f}'} | "
                f"{_p_value(row[f'{setting}_t_p'])} | {_p_value(row[f'{setting}_wilcoxon_p'])} | "
                f"{_number(row[f'{setting}_pooled_mean'])} |"
            )
    return "\n".join(lines) + "\n"


def confusion_by_condition(
    protocol: dict[str, Any], runs: pd.DataFrame, setting: str
) -> dict[str, np.ndarray]:
    """Per condition the mean over seeds of the row-normalised confusion matrix of each seed's pooled
    test predictions (all folds of the seed) - the paper's Figure 2."""
    result = {}
    for condition in [c["name"] for c in protocol["conditions"]]:
        selected = runs[(runs["setting"] == setting) & (runs["condition"] == condition)]
        if selected.empty:
            continue
        matrices = []
        for _, group in selected.groupby("seed"):
            counts = np.zeros((len(EMOTIONS), len(EMOTIONS)), dtype=np.int64)
            for folder in group["folder"]:
                stored = json.loads((Path(folder) / "metrics.json").read_text(encoding="utf-8"))
                counts += np.asarray(stored["confusion"], dtype=np.int64)
            matrices.append(counts)
        result[condition] = metrics.mean_confusion(matrices)
    return result


def figure2(
    protocol: dict[str, Any], runs: pd.DataFrame, table: pd.DataFrame, folders: Iterable[str | Path]
) -> list[Path]:
    """Figure 2: BL vs the configured (else best) AE condition, mean confusion matrices over seeds."""
    from serlib import plots

    setting = (
        "within" if "within" in protocol["settings"] and (runs["setting"] == "within").any() else "cross"
    )
    matrices = confusion_by_condition(protocol, runs, setting)
    if not matrices:
        return []
    baseline = protocol.get("baseline")
    chosen = protocol.get("figure2_condition")
    if chosen is None or chosen not in matrices:
        # the best condition whose AE saw additional unlabeled speech (not C = the target corpus itself),
        # else the best of any AE condition
        candidates = table[(table["condition"] != baseline) & table["condition"].isin(list(matrices))]
        candidates = candidates.dropna(subset=[f"{setting}_mean"])
        external = candidates[candidates["autoencoder_corpus"] != CONDITION_SOURCE_TARGET]
        candidates = external if not external.empty else candidates
        chosen = (
            None
            if candidates.empty
            else str(candidates.loc[candidates[f"{setting}_mean"].idxmax(), "condition"])
        )
    panels = []
    corpus = protocol["settings"][setting]["test_corpus"]
    for name, title in ((baseline, f"{baseline}: ACNN"), (chosen, f"{chosen}: ACNN + AE")):
        if name is not None and name in matrices:
            panels.append((title, matrices[name]))
    frame = pd.DataFrame(
        [
            {
                "condition": name,
                "true": EMOTIONS[i],
                **{EMOTIONS[j]: matrix[i, j] for j in range(len(EMOTIONS))},
            }
            for name, matrix in matrices.items()
            for i in range(len(EMOTIONS))
        ]
    )
    targets = [Path(f) for f in folders]
    for folder in targets:
        _write_csv(frame, folder / f"{FIGURE2_STEM}.csv", float_format="%.4f")
    fig = plots.confusion_pair(
        panels,
        EMOTIONS,
        title=f"Figure 2: mean confusion over seeds, {corpus} ({'leave-one-session-out' if setting == 'within' else 'cross-corpus'})",
    )
    written = plots.save_figure(fig, FIGURE2_STEM, targets)
    plots.close(fig)
    return written


def summarise(
    output_dir: str | Path, write_figures: bool = True, figure_folders: Iterable[str | Path] | None = None
) -> pd.DataFrame:
    """Write runs.csv, table1.csv, table1.md (and Figure 2) from the stored runs; returns Table 1."""
    root = _results_root(output_dir)
    protocol, runs = collect_runs(root)
    _write_csv(runs.drop(columns=["folder"]), root / "runs.csv", float_format="%.6f")
    table = table1(protocol, runs)
    _write_csv(table, root / "table1.csv", float_format="%.4f")
    _write_text(table_markdown(protocol, table), root / "table1.md")
    if write_figures and not runs.empty:
        figure2(protocol, runs, table, figure_folders or [root / "figures"])
    return table


def render_table(results_dir: str | Path) -> str:
    """Re-render Table 1 (Markdown) from the stored runs of an output folder, without training; also
    rewrites runs.csv, table1.csv and table1.md there."""
    root = _results_root(results_dir)
    summarise(root, write_figures=False)
    return (root / "table1.md").read_text(encoding="utf-8")

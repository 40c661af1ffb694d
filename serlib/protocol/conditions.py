"""Where a run's data come from: its training and test corpora, the condition's autoencoder and vectors,
and the fingerprint of everything its result depends on.

Conditions (paper, Table 1): ``autoencoder_corpus`` 'none' (BL: no AE vector), 'target' (C: the AE of
the corpus being tested) or a corpus key; the AE vectors are concatenated raw (tanh outputs in
(-1, 1), as the paper feeds them). ``prepare_sources`` trains (or finds) the AE and encodes the corpora
once per (setting, condition), before any run, so parallel runs only read finished files. The AE
package (TensorFlow) is imported only inside the functions that train or encode, so that reading
folds, fingerprints and data does not start TensorFlow.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from serlib.base import cluster, logs
from serlib.base.config import (
    CONDITION_SOURCE_TARGET,
    CONDITION_SOURCES_NONE,
    ConditionConfig,
    Config,
    from_dict,
)
from serlib.base.progress import bar as progress_bar
from serlib.features import store
from serlib.protocol import implementation, labeled
from serlib.protocol.folds import SETTINGS, fold_indices, session_folds
from serlib.protocol.labeled import (
    LabeledData,
    ProtocolError,
    load_labeled,
    read_representations,
    with_representations,
)

log = logging.getLogger(__name__)


def settings_of(config: Config) -> list[str]:
    protocol = config.protocol
    settings = []
    if protocol.within_corpus is not None:
        settings.append("within")
    if protocol.cross_corpus_train is not None and protocol.cross_corpus_test is not None:
        settings.append("cross")
    return settings


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


def autoencoder_jobs(config: Config) -> dict[tuple[str, int], list[str]]:
    """Each distinct (corpus key, epochs) autoencoder the configured conditions need, in protocol order,
    with the "condition (setting)" labels that use it."""
    jobs: dict[tuple[str, int], list[str]] = {}
    for setting in settings_of(config):
        for condition in config.protocol.conditions:
            key = autoencoder_corpus(config, setting, condition)
            if key is not None:
                epochs = int(condition.autoencoder_epochs or config.autoencoder.epochs)
                jobs.setdefault((key, epochs), []).append(f"{condition.name} ({setting})")
    return jobs


def train_autoencoders(
    config: Config,
    jobs: Sequence[tuple[str, int]] | None = None,
    n_jobs: int | None = None,
    client: Any = None,
    progress: bool = True,
) -> list[Path]:
    """Train (or find) the autoencoders ``jobs`` (default ``autoencoder_jobs``); returns their model paths.

    The AEs are independent, so with more than one worker (``n_jobs``, default ``protocol.n_jobs``, or a
    ``client``) each trains in a Dask worker process; otherwise they train here one after another.
    Workers run TensorFlow with this process's threads, so both give the same files (docs/reliability.md).
    """
    jobs = list(autoencoder_jobs(config)) if jobs is None else [(str(k), int(e)) for k, e in jobs]
    started = time.perf_counter()
    paths = _train_autoencoders(config, jobs, n_jobs, client, progress)
    logs.step(
        log,
        "autoencoders: %d ready in %s (trained, or found in the cache) (%.1f s)",
        len(paths),
        config.cache_path / "autoencoders",
        time.perf_counter() - started,
    )
    return paths


def _train_autoencoders(
    config: Config, jobs: list[tuple[str, int]], n_jobs: int | None, client: Any, progress: bool
) -> list[Path]:
    from serlib.models import autoencoder  # noqa: PLC0415 - see the module docstring

    for key in dict.fromkeys(key for key, _ in jobs):  # each store once, here, before any worker reads it
        store.extract_configured(config, key, "spectrogram", progress=progress)
    workers = cluster.worker_count(config.protocol.n_jobs if n_jobs is None else n_jobs)
    address = config.protocol.scheduler_address
    if client is None and not (len(jobs) > 1 and cluster.uses_dask(address, workers)):
        return [
            autoencoder.train_configured(config, key, epochs=epochs, progress=progress)
            for key, epochs in jobs
        ]
    bar = progress_bar(len(jobs), "autoencoders", unit="AE", enabled=progress, every=True)
    with contextlib.ExitStack() as stack:
        if client is None:
            client = stack.enter_context(cluster.dask_client(address, workers))
        paths = cluster.run_tasks(
            client,
            train_task,
            [(config.model_dump(mode="json"), key, epochs) for key, epochs in jobs],
            [f"autoencoder-{key}-{epochs}" for key, epochs in jobs],
            on_result=lambda index, path: bar.update(1),
        )
    bar.close()
    return [Path(path) for path in paths]


def train_task(config_data: dict[str, Any], corpus_key: str, epochs: int) -> str:
    """One autoencoder as a Dask task: the configuration arrives as plain data (``Config.model_dump``)."""
    from serlib.models import autoencoder  # noqa: PLC0415 - see the module docstring

    config = from_dict(config_data, "dask worker")
    return str(autoencoder.train_configured(config, corpus_key, epochs=epochs, progress=False))


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
    from serlib.models import autoencoder  # noqa: PLC0415 - see the module docstring

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


def run_data(
    config: Config, setting: str, fold: int, sources: dict[str, Any]
) -> tuple[LabeledData, LabeledData]:
    """The training and test arrays of one run (with AE vectors when the condition has them)."""
    train_key, test_key = sources["train_corpus"], sources["test_corpus"]
    identity = sources.get("identity", {})
    acnn_input = config.features.acnn_input
    train = load_labeled(config, train_key, identity.get(f"{train_key}/{acnn_input}"))
    test = (
        train
        if test_key == train_key
        else load_labeled(config, test_key, identity.get(f"{test_key}/{acnn_input}"))
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


def data_identity(
    config: Config, setting: str, condition: ConditionConfig, memo: dict[tuple[str, str], str] | None = None
) -> dict[str, str]:
    """The feature-store files a run reads (their names hash the audio files' identity and the feature
    parameters): the ACNN's input (log-Mel, or ``features.acnn_input``) of the labeled corpora and, for
    AE conditions, the spectrograms of the AE's and the labeled corpora. Extracts what is not in the store
    yet (needed by the run anyway)."""
    memo = {} if memo is None else memo

    def name(key: str, extractor: str) -> str:
        if (key, extractor) not in memo:
            memo[(key, extractor)] = Path(labeled.extract_features(config, key, extractor).path).name
        return memo[(key, extractor)]

    return {label: name(*label.split("/")) for label in identity_keys(config, setting, condition)}


def identity_keys(config: Config, setting: str, condition: ConditionConfig) -> list[str]:
    """The ``"<corpus key>/<extractor>"`` labels of ``data_identity``: the ACNN's input of the labeled
    corpora and, for AE conditions, the spectrograms of the AE's and the labeled corpora."""
    train_key, test_key = corpora_of(config, setting)
    acnn_input = config.features.acnn_input
    labels = [f"{key}/{acnn_input}" for key in sorted({train_key, test_key})]
    ae_key = autoencoder_corpus(config, setting, condition)
    if ae_key is not None:
        labels += [f"{key}/spectrogram" for key in sorted({ae_key, train_key, test_key})]
    return labels


def fingerprint(
    config: Config, setting: str, condition: ConditionConfig, identity: dict[str, str] | None = None
) -> str:
    """Hash of every parameter and input file a run's result depends on (``data_identity``; not
    n_jobs, output paths or jit), so a changed parameter or corpus repeats the run. The configuration is
    hashed as it is written (current key names; runs stored before issue 43: ``serlib migrate``)."""
    if config.acnn.implementation == "auto":  # the path this output folder's runs use (implementation.py)
        config = resolve_implementation(config)[0]
    identity = data_identity(config, setting, condition) if identity is None else identity
    return hash_parts(fingerprint_parts(config, setting, condition, identity))


def acnn_parameters(acnn: dict[str, Any]) -> dict[str, Any]:
    """The ACNN settings a run's fingerprint hashes: all but ``jit_compile`` (same numbers), and
    ``shuffle`` only where it is not ``once`` (the order of every earlier run: it keeps its fingerprint)."""
    parameters = dict(acnn)
    parameters.pop("jit_compile", None)
    if parameters.get("shuffle") == "once":
        parameters.pop("shuffle")
    return parameters


def fingerprint_parts(
    config: Config, setting: str, condition: ConditionConfig, identity: dict[str, str]
) -> dict[str, Any]:
    """What ``fingerprint`` hashes, for a configuration whose ACNN path is resolved (not auto)."""
    train_key, test_key = corpora_of(config, setting)
    ae_key = autoencoder_corpus(config, setting, condition)
    keys = sorted({train_key, test_key, *([ae_key] if ae_key else [])})
    parts: dict[str, Any] = {
        "setting": setting,
        "acnn": acnn_parameters(config.acnn.model_dump(mode="json")),
        "logmel": config.features.logmel.model_dump(mode="json"),
        "normalisation": config.features.normalisation,
        "audio": config.audio.model_dump(mode="json"),
        "corpora": {k: config.corpora[k].model_dump(mode="json") for k in keys},
        "autoencoder_corpus": ae_key,
        "data": identity,
    }
    if config.features.acnn_input != "logmel":  # only then, so that every earlier run keeps its fingerprint
        parts["acnn_input"] = config.features.acnn_input
    if ae_key is not None:
        autoencoder_parameters = config.autoencoder.model_dump(mode="json")
        for key in ("jit_compile", "mixed_precision", "distribution", "encode_batch_size"):
            autoencoder_parameters.pop(key, None)
        autoencoder_parameters["epochs"] = condition.autoencoder_epochs or config.autoencoder.epochs
        parts["autoencoder"] = autoencoder_parameters
        parts["spectrogram"] = config.features.spectrogram.model_dump(mode="json")
        parts["autoencoder_seed"] = config.seed
    if any(config.corpora[k].type == "demo" for k in keys):
        parts["demo_corpus"] = config.demo_corpus
    return parts


def hash_parts(parts: dict[str, Any]) -> str:
    """The 16 hex digits of a fingerprint: sha256 of the parts as sorted JSON."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def resolve_implementation(config: Config, write: bool = False) -> tuple[Config, Any]:
    """The configuration with ``acnn.implementation: auto`` resolved for its output folder, and the
    ``acnn_choice.Choice`` (``serlib.protocol.implementation``); other values pass through unchanged."""

    def fingerprints_of(candidate: Config) -> dict[tuple[str, str], str]:
        return {
            (setting, c.name): fingerprint(candidate, setting, c)
            for setting in settings_of(candidate)
            for c in candidate.protocol.conditions
        }

    def lengths_of(candidate: Config) -> Any:
        keys = sorted({corpora_of(candidate, setting)[0] for setting in settings_of(candidate)})
        acnn_input = candidate.features.acnn_input
        return np.concatenate([labeled.extract_features(candidate, key, acnn_input).lengths for key in keys])

    return implementation.resolve(config, fingerprints_of, lengths_of, write=write)

"""The paper's whole protocol (Sec. 4.1): every (setting, condition, seed, fold) run, then the caller's summary.

Settings: ``within`` = leave-one-session-out cross-validation on ``protocol.within_corpus`` (no
development split: the paper names no model selection, so the fixed number of epochs is trained and
the last epoch evaluated, unless ``acnn.model_selection`` says otherwise); ``cross`` = train on all of
``protocol.cross_corpus_train``, test on all of ``protocol.cross_corpus_test`` (fold 0, with
``acnn.dropout_cross``). Runs go one after another in this process, or to Dask
workers: on a client passed in, on ``protocol.scheduler_address``, or on a local cluster when
``protocol.n_jobs`` allows more than one worker (``serlib.base.cluster``). The tables made from the
finished runs (Table 1, Figure 2, the comparisons) belong to the layer above, which reads runs: its
summary is passed in (``serlib.evidence.summaries.evaluate`` passes ``write_summaries``), as scale-out is.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from serlib.base import cluster, logs, provenance
from serlib.base.config import CONDITION_SOURCES_NONE, Config
from serlib.base.files import exclusive_lock, write_json
from serlib.base.progress import bar as progress_bar
from serlib.protocol import conditions
from serlib.protocol.conditions import corpora_of, data_identity, fingerprint, settings_of
from serlib.protocol.folds import CROSS_FOLD, within_folds
from serlib.protocol.run_files import RunKey, finished, protocol_lock
from serlib.protocol.runs import run_one, run_task

log = logging.getLogger(__name__)

T = TypeVar("T")


def grid(config: Config, folds: list[int] | None = None) -> list[RunKey]:
    """Every (setting, condition, seed, fold) of the configured protocol, in a stable order."""
    runs = []
    for setting in settings_of(config):
        setting_folds = (
            [CROSS_FOLD] if setting == "cross" else (folds if folds is not None else within_folds(config))
        )
        for condition in config.protocol.conditions:
            for seed in config.protocol.seeds:
                for fold in setting_folds:
                    runs.append(RunKey(setting, condition.name, int(seed), int(fold)))
    return runs


def run_protocol(
    config: Config,
    n_jobs: int | None = None,
    progress: bool = True,
    client: Any = None,
    *,
    summarise: Callable[[Config], T],
) -> T:
    """Run every unfinished (setting, condition, seed, fold), then call ``summarise(config)`` under the
    folder's protocol lock, beside the protocol.json it describes, and return what it returns.

    AE training and encoding happen once per condition in this process before any ACNN run. The runs
    are Dask tasks on ``client`` when one is given; else on ``protocol.scheduler_address``, or on a
    local cluster when ``n_jobs`` (default ``protocol.n_jobs``; 0 = as many workers as the cores hold
    at ``SERLIB_TF_THREADS`` threads each) allows more than one worker; otherwise they run here one
    after another. ``serlib.evidence.summaries.evaluate`` passes the writer of runs.csv, Table 1, Figure 2
    and the comparisons, and returns Table 1.
    """
    # condition names are valid folder names: the configuration model checks them (ConditionConfig)
    if config.protocol.figure2_condition is not None:
        config.condition(config.protocol.figure2_condition)  # raises ConfigError when unknown
    # acnn.implementation auto: one path for the whole folder, kept from its first runs (implementation.py)
    with exclusive_lock(protocol_lock(config.output_dir)):
        config, choice = conditions.resolve_implementation(config, write=True)
    provenance.add_entry(config.output_path, "acnn_implementation", choice.record())
    jobs = cluster.worker_count(config.protocol.n_jobs if n_jobs is None else n_jobs)
    folds = within_folds(config) if "within" in settings_of(config) else []
    runs = grid(config, folds)
    identities, fingerprints = _cell_fingerprints(config)
    with exclusive_lock(protocol_lock(config.output_dir)):
        _write_protocol(config, folds, fingerprints)
    started = time.perf_counter()
    pending = [
        key for key in runs if finished(config, key, fingerprints[(key.setting, key.condition)]) is None
    ]
    log.info(
        "%d runs configured, %d already finished, %d to do", len(runs), len(runs) - len(pending), len(pending)
    )
    if pending:
        sources: dict[tuple[str, str], dict[str, Any]] = {}
        for setting, name in dict.fromkeys((key.setting, key.condition) for key in pending):
            prepared = conditions.prepare_sources(config, setting, config.condition(name))
            sources[(setting, name)] = prepared | {
                "fingerprint": fingerprints[(setting, name)],
                "identity": identities[(setting, name)],
                "acnn_implementation": choice.record(),
            }
        bar = progress_bar(len(pending), "ACNN runs", unit="run", enabled=progress, every=True)
        _train_runs(config, pending, sources, jobs=jobs, client=client, progress=progress, bar=bar)
        bar.close()
    # Another sitting (other seeds or conditions) in the same folder may have replaced protocol.json while
    # these runs trained: this sitting's grid is written again and summarised under the folder's lock, so
    # the tables always describe the protocol.json beside them.
    with exclusive_lock(protocol_lock(config.output_dir)):
        _write_protocol(config, folds, fingerprints)
        summary = summarise(config)
    logs.step(
        log,
        "ACNN protocol: %d runs trained, %d reused from %s, summarised (%.1f s)",
        len(pending),
        len(runs) - len(pending),
        config.output_path / "results",
        time.perf_counter() - started,
    )
    return summary


def _cell_fingerprints(
    config: Config,
) -> tuple[dict[tuple[str, str], dict[str, str]], dict[tuple[str, str], str]]:
    """The data identity and the run fingerprint of every (setting, condition) of the grid."""
    memo: dict[tuple[str, str], str] = {}
    identities = {
        (setting, c.name): data_identity(config, setting, c, memo)
        for setting in settings_of(config)
        for c in config.protocol.conditions
    }
    fingerprints = {
        (setting, name): fingerprint(config, setting, config.condition(name), identity)
        for (setting, name), identity in identities.items()
    }
    return identities, fingerprints


def _train_runs(
    config: Config,
    pending: list[RunKey],
    sources: dict[tuple[str, str], dict[str, Any]],
    *,
    jobs: int,
    client: Any,
    progress: bool,
    bar: Any,
) -> None:
    """Train the ``pending`` runs, here one after another or as Dask tasks (on ``client``, on
    ``protocol.scheduler_address`` or on a local cluster of ``jobs`` workers), advancing ``bar``."""

    def report(key: RunKey, result: dict[str, Any]) -> None:
        bar.set_postfix(last=f"{key.condition} {key.setting} UAR {result['uar']:.3f}")
        bar.update(1)

    with contextlib.ExitStack() as stack:
        address = config.protocol.scheduler_address
        if client is None and cluster.uses_dask(address, jobs):
            client = stack.enter_context(cluster.dask_client(address, jobs))
        if client is None:
            for key in pending:
                cell = sources[(key.setting, key.condition)]
                result = run_one(
                    config,
                    key.setting,
                    key.condition,
                    key.seed,
                    key.fold,
                    sources=cell,
                    epoch_progress=progress,
                )
                report(key, result)
            return
        # every run a Dask task carrying plain data: the configuration, its key and sources
        data = config.model_dump(mode="json")
        arguments = [
            (data, (k.setting, k.condition, k.seed, k.fold), sources[(k.setting, k.condition)])
            for k in pending
        ]
        names = ["run-" + "-".join(map(str, (k.setting, k.condition, k.seed, k.fold))) for k in pending]
        # one ACNN architecture per (setting: dropout rate, AE vector or not): a worker traces each of its
        # architectures once (models.acnn.reuse), so runs of one architecture prefer the same worker
        architectures = [
            (k.setting, config.condition(k.condition).autoencoder_corpus != CONDITION_SOURCES_NONE)
            for k in pending
        ]
        cluster.run_tasks(
            client,
            run_task,
            arguments,
            names,
            on_result=lambda i, r: report(pending[i], r),
            groups=architectures,
        )


def _write_protocol(config: Config, folds: list[int], fingerprints: dict[tuple[str, str], str]) -> None:
    """results/protocol.json: the configured grid, so Table 1 can be re-rendered without the config."""
    baseline = next(
        (c.name for c in config.protocol.conditions if c.autoencoder_corpus == CONDITION_SOURCES_NONE), None
    )
    settings = {}
    for setting in settings_of(config):
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
        "config": config.model_dump(mode="json"),  # what `serlib check` compares with a reference
    }
    write_json(protocol, Path(config.output_dir) / "results" / "protocol.json")

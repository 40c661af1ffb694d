"""Scale-out on existing engines: Dask for independent runs and extraction chunks, tf.distribute for the AE.

**Dask** (``dask.distributed``). The protocol's (setting, condition, seed, fold) runs are independent,
and so are the file chunks of a feature extraction: each becomes one Dask task. With
``protocol.scheduler_address`` set (e.g. ``tcp://10.0.0.5:8786``, a scheduler started with
``dask scheduler`` and workers with ``dask worker <address> --nthreads 1``) the tasks go to that real
cluster; every worker must then see the audio, the cache and the output folder at the same paths (a
shared file system) and have serlib installed. Without an address a ``LocalCluster`` of worker
processes with one thread each runs on this machine. Tasks carry only plain data (the configuration as
a JSON-compatible dict, run keys, file paths) and return the run's metrics; every product is written
by the worker exactly as in the serial path, so a run gives the same files either way.

Rules (documented in docs/performance.md): ``experiments.run_protocol`` uses Dask when a scheduler
address is set or ``protocol.n_jobs`` (0 = all cores) is above 1, and runs in-process otherwise;
``store.extract`` uses Dask only with a scheduler address (locally its own process pool is faster to
start than a LocalCluster).

**tf.distribute**: ``distribution_strategy(config)`` returns the strategy named by
``autoencoder.distribution``: ``default`` (the current one, i.e. no distribution), ``mirrored``
(synchronous data parallelism over this machine's GPUs, or its CPU when there is none) and
``multi_worker`` (``MultiWorkerMirroredStrategy`` over the machines described by ``TF_CONFIG``).
The autoencoder builds its model inside the strategy's scope and Keras' ``fit`` splits each global
batch of ``autoencoder.batch_size`` between the replicas.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

log = logging.getLogger(__name__)

SUBMIT_WINDOW_PER_WORKER = 3  # extraction tasks in flight per worker: keeps workers busy, memory bounded
CONNECT_TIMEOUT_S = 30
_STRATEGIES: dict[tuple[str, str], Any] = {}
_PRIVATE_RANDOM: list[Any] = []


class ClusterError(ValueError):
    """A distribution setting cannot be used; the message names the key or variable and the fix."""


# -- tf.distribute ------------------------------------------------------------------------------------
def distribution_strategy(config: Any) -> Any:
    """The ``tf.distribute.Strategy`` named by ``config.autoencoder.distribution``.

    ``mirrored`` and ``multi_worker`` strategies are created once per process and reused (TensorFlow
    allows one multi-worker strategy per process). ``multi_worker`` needs ``TF_CONFIG``.
    """
    choice = config.autoencoder.distribution
    if choice not in ("default", "mirrored", "multi_worker"):
        raise ClusterError(
            f"autoencoder.distribution = {choice!r} is unknown; use 'default', 'mirrored' or 'multi_worker'"
        )
    key = (choice, _tf_config() if choice == "multi_worker" else "")  # checked before TF starts
    import tensorflow as tf

    if choice == "default":
        return tf.distribute.get_strategy()
    if key not in _STRATEGIES:
        create = (
            tf.distribute.MirroredStrategy
            if choice == "mirrored"
            else tf.distribute.MultiWorkerMirroredStrategy
        )
        _STRATEGIES[key] = create()
    return _STRATEGIES[key]


def _tf_config() -> str:
    """TF_CONFIG's text after checking it names a cluster and this process's task."""
    text = os.environ.get("TF_CONFIG", "").strip()
    help_text = (
        "set it on every worker to JSON like "
        '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}} '
        "(index = this worker's position), or use autoencoder.distribution: mirrored for the GPUs of one machine"
    )
    if not text:
        raise ClusterError(
            f"autoencoder.distribution = 'multi_worker' needs the TF_CONFIG environment variable: {help_text}"
        )
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as error:
        raise ClusterError(f"TF_CONFIG is not valid JSON ({error}): {help_text}") from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("cluster"), dict) or "task" not in parsed:
        raise ClusterError(f"TF_CONFIG must have the keys 'cluster' and 'task': {help_text}")
    return text


# -- Dask: clients ------------------------------------------------------------------------------------
def worker_count(n_jobs: int) -> int:
    """Worker processes for ``n_jobs``; 0 = as many as the cores hold at ``SERLIB_TF_THREADS`` threads
    each (every worker runs TensorFlow with the submitting process's thread count)."""
    if n_jobs > 0:
        return int(n_jobs)
    from serlib import runtime

    return max(1, runtime.available_cores() // runtime.requested_threads())


def grid_uses_dask(config: Any, n_jobs: int | None = None) -> bool:
    """Whether the protocol's runs go to Dask: a scheduler address is set, or more than one job."""
    jobs = config.protocol.n_jobs if n_jobs is None else n_jobs
    return config.protocol.scheduler_address is not None or worker_count(jobs) > 1


@contextlib.contextmanager
def dask_client(config: Any, n_workers: int | None = None) -> Iterator[Any]:
    """A ``distributed.Client``: to ``protocol.scheduler_address``, else to a new LocalCluster.

    The LocalCluster has ``n_workers`` (default ``protocol.n_jobs``, 0 = all cores) processes of one
    thread each and is closed on exit; a remote cluster is left running.
    """
    from distributed import Client, LocalCluster

    address = config.protocol.scheduler_address
    if address:
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as error:
            raise ClusterError(
                f"protocol.scheduler_address = {address!r}: cannot reach the Dask scheduler ({error}); "
                "start it with `dask scheduler` (and workers with `dask worker <address>`) or remove the "
                "key to run on this machine"
            ) from None
        try:
            yield client
        finally:
            client.close()
        return
    workers = worker_count(config.protocol.n_jobs if n_workers is None else n_workers)
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.WARNING,
        ) as local,
        Client(local) as client,
    ):
        yield client


def _threads_for(client: Any, config: Any) -> int:
    """TensorFlow intra-op threads for every task: the submitting process's own count, so a run on a
    worker (local or remote) computes exactly what the serial path computes (``serlib.runtime``)."""
    from serlib import runtime

    configured = runtime.settings()["intra_op_threads"]
    return configured or runtime.requested_threads()


def _private_keras_random() -> None:
    """Give Keras its own ``random.Random`` for the seeds it draws from Python's ``random`` module.

    A Dask worker's event loop draws from the global ``random`` while a task runs, so the default
    seeds Keras draws for initialisers and dropout after ``keras.utils.set_random_seed`` would depend
    on timing. Keras seeds and reads the private instance exactly as it would the module, so a run
    gives the same numbers as in the serial path. Done once per worker process.
    """
    if _PRIVATE_RANDOM:
        return
    import random

    from keras.src.random import seed_generator
    from keras.src.utils import rng_utils

    private = random.Random()
    for module, name in ((seed_generator, "python_random"), (rng_utils, "random")):
        if getattr(module, name, None) is random:
            setattr(module, name, private)
        else:  # pragma: no cover - another Keras version
            log.warning(
                "cannot isolate %s.%s: Dask runs may not repeat serial results", module.__name__, name
            )
    _PRIVATE_RANDOM.append(private)


# -- Dask: the experiment grid ------------------------------------------------------------------------
def _grid_task(
    config_data: dict[str, Any], key: tuple[str, str, int, int], sources: dict[str, Any], threads: int | None
) -> dict[str, Any]:
    """Worker side of one protocol run: ``experiments.run_one`` with the run's prepared sources."""
    from serlib import runtime

    runtime.configure(threads)
    _private_keras_random()
    from serlib import experiments
    from serlib.config import from_dict

    config = from_dict(config_data, "dask worker")
    setting, condition, seed, fold = key
    return experiments.run_one(config, setting, condition, seed, fold, sources=sources)


def run_grid(
    config: Any,
    keys: Sequence[Any],
    sources: dict[tuple[str, str], dict[str, Any]],
    n_workers: int | None = None,
    client: Any = None,
    on_result: Callable[[Any, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run protocol runs (``experiments.RunKey``s) as Dask tasks; returns their metrics in ``keys`` order.

    ``sources[(setting, condition)]`` are the prepared AE/representation paths (``prepare_sources``,
    computed beforehand in this process). ``on_result(key, metrics)`` is called as runs finish. The
    first failing run's error is raised after the other submitted runs are cancelled.
    """
    from distributed import as_completed

    if not keys:
        return []
    with contextlib.ExitStack() as stack:
        if client is None:
            client = stack.enter_context(dask_client(config, n_workers))
        threads = _threads_for(client, config)
        data = config.model_dump(mode="json")
        futures = {}
        for index, key in enumerate(keys):
            fields = (key.setting, key.condition, int(key.seed), int(key.fold))
            future = client.submit(
                _grid_task,
                data,
                fields,
                sources[(key.setting, key.condition)],
                threads,
                key=f"serlib-run-{'-'.join(map(str, fields))}-{os.getpid()}-{id(keys)}",
                pure=False,
            )
            futures[future] = index
        results: list[dict[str, Any] | None] = [None] * len(keys)
        try:
            for future in as_completed(futures):
                index = futures[future]
                result: dict[str, Any] = future.result()
                results[index] = result
                if on_result is not None:
                    on_result(keys[index], result)
        finally:
            pending = [f for f in futures if not f.done()]
            if pending:
                client.cancel(pending)
    return [r for r in results if r is not None]


# -- Dask: feature extraction ----------------------------------------------------------------------------
def map_in_order(
    function: Callable[..., Any],
    arguments: Sequence[tuple[Any, ...]],
    config: Any,
    client: Any = None,
    n_workers: int | None = None,
) -> Iterator[Any]:
    """``function(*a)`` for each tuple of ``arguments`` as Dask tasks, yielded in order.

    At most ``SUBMIT_WINDOW_PER_WORKER`` tasks per worker are in flight, so results waiting to be
    written never pile up in memory (the caller writes each one as it arrives).
    """
    with contextlib.ExitStack() as stack:
        if client is None:
            client = stack.enter_context(dask_client(config, n_workers))
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        window = SUBMIT_WINDOW_PER_WORKER * workers
        pending: dict[int, Any] = {}
        tag = f"{os.getpid()}-{id(arguments)}"
        try:
            for index in range(len(arguments)):
                for ahead in range(index, min(index + window, len(arguments))):
                    if ahead not in pending:
                        pending[ahead] = client.submit(
                            function, *arguments[ahead], key=f"serlib-task-{tag}-{ahead}", pure=False
                        )
                yield pending.pop(index).result()
        finally:
            if pending:
                client.cancel(list(pending.values()))


def extract_tasks(
    extractor: str,
    parameters: dict[str, Any],
    tasks: Sequence[list[dict[str, Any]]],
    config: Any,
    client: Any = None,
) -> Iterator[list[dict[str, Any]]]:
    """``store.extract_task`` of every file chunk on Dask, yielded in manifest order (for ``store``)."""
    from serlib import store

    return map_in_order(
        store.extract_task, [(extractor, parameters, task) for task in tasks], config, client=client
    )

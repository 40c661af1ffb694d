"""Scale-out on existing engines: Dask for independent tasks, tf.distribute for the autoencoder.

Nothing here knows what a task computes: the caller passes the function (one protocol run, one chunk
of feature extraction) and its plain-data arguments, and an executor decided at the top.

**Dask** (``dask.distributed``). With a scheduler address (``protocol.scheduler_address``, e.g.
``tcp://10.0.0.5:8786``, a scheduler started with ``dask scheduler`` and workers with ``dask worker
<address> --nthreads 1``) tasks go to that real cluster; every worker must then see the audio, the
cache and the output folder at the same paths (a shared file system) and have serlib installed.
Without an address a ``LocalCluster`` of worker processes runs on this machine. Each task runs
TensorFlow with the submitting process's thread count (``serlib.base.runtime``), so a worker computes
exactly what the serial path computes (docs/reliability.md, section 3).

**tf.distribute**: ``distribution_strategy(choice)`` returns the strategy named by
``autoencoder.distribution``: ``default`` (the current one, i.e. no distribution), ``mirrored``
(synchronous data parallelism over this machine's GPUs, or its CPU when there is none) and
``multi_worker`` (``MultiWorkerMirroredStrategy`` over the machines described by ``TF_CONFIG``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any

from serlib.base import logs, runtime

log = logging.getLogger(__name__)

SUBMIT_WINDOW_PER_WORKER = 3  # ordered tasks in flight per worker: keeps workers busy, memory bounded
CONNECT_TIMEOUT_S = 30
# The address of a LocalCluster that a parent process keeps for its children (``shared_workers``).
SHARED_VARIABLE = "SERLIB_DASK_SHARED_SCHEDULER"
_STRATEGIES: dict[tuple[str, str], Any] = {}
_PRIVATE_RANDOM: list[Any] = []


class ClusterError(ValueError):
    """A distribution setting cannot be used; the message names the key or variable and the fix."""


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


def worker_count(n_jobs: int) -> int:
    """Worker processes for ``n_jobs``; 0 = as many as the cores hold at ``SERLIB_TF_THREADS`` threads
    each (every worker runs TensorFlow with the submitting process's thread count)."""
    if n_jobs > 0:
        return int(n_jobs)
    return max(1, runtime.available_cores() // runtime.requested_threads())


def _threads_for(client: Any) -> int:
    """TensorFlow intra-op threads for every task: the submitting process's own count, so a run on a
    worker (local or remote) computes exactly what the serial path computes (``serlib.base.runtime``)."""
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
    import random  # noqa: PLC0415 - only in Dask workers

    from keras.src.random import seed_generator  # noqa: PLC0415 - Keras internals, workers only
    from keras.src.utils import rng_utils  # noqa: PLC0415

    private = random.Random()
    for module, name in ((seed_generator, "python_random"), (rng_utils, "random")):
        if getattr(module, name, None) is random:
            setattr(module, name, private)
        else:  # pragma: no cover - another Keras version
            log.warning(
                "cannot isolate %s.%s: Dask runs may not repeat serial results", module.__name__, name
            )
    _PRIVATE_RANDOM.append(private)


# -- tf.distribute ------------------------------------------------------------------------------------
def distribution_strategy(choice: str) -> Any:
    """The ``tf.distribute.Strategy`` named ``choice`` (``autoencoder.distribution``).

    ``mirrored`` and ``multi_worker`` strategies are created once per process and reused (TensorFlow
    allows one multi-worker strategy per process). ``multi_worker`` needs ``TF_CONFIG``.
    """
    if choice not in ("default", "mirrored", "multi_worker"):
        raise ClusterError(
            f"autoencoder.distribution = {choice!r} is unknown; use 'default', 'mirrored' or 'multi_worker'"
        )
    key = (choice, _tf_config() if choice == "multi_worker" else "")  # checked before TF starts
    import tensorflow as tf  # noqa: PLC0415 - TensorFlow only where a strategy is asked for

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


# -- Dask: clients ------------------------------------------------------------------------------------
def uses_dask(scheduler_address: str | None, n_jobs: int) -> bool:
    """Whether independent tasks go to Dask: a scheduler address is set, or more than one worker."""
    return scheduler_address is not None or worker_count(n_jobs) > 1


class _WithoutKillAtClose(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Worker process still alive after")


@contextlib.contextmanager
def dask_client(scheduler_address: str | None, n_workers: int = 0) -> Iterator[Any]:
    """A ``distributed.Client``: to ``scheduler_address``, else to the shared workers a parent process
    keeps (``SHARED_VARIABLE``, when they are as many as asked), else to a new LocalCluster.

    The LocalCluster has ``worker_count(n_workers)`` processes of one Dask thread each and is closed on
    exit; a remote cluster and the shared workers are left running.
    """
    from distributed import Client  # noqa: PLC0415 - Dask only when scaling out

    if scheduler_address:
        try:
            client = Client(scheduler_address, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as error:
            raise ClusterError(
                f"protocol.scheduler_address = {scheduler_address!r}: cannot reach the Dask scheduler "
                f"({error}); start it with `dask scheduler` (and workers with `dask worker <address>`) or "
                "remove the key to run on this machine"
            ) from None
        try:
            yield client
        finally:
            client.close()
        return
    shared = _shared_client(worker_count(n_workers))
    if shared is not None:
        try:
            yield shared
        finally:
            shared.close()
        return
    with _local_client(worker_count(n_workers)) as client:
        yield client


def _shared_client(workers: int) -> Any:
    """A client of the shared workers named by ``SHARED_VARIABLE`` if they are ``workers`` many, else None
    (a LocalCluster of this process's own is then started; a scheduler that is gone is logged)."""
    address = os.environ.get(SHARED_VARIABLE, "").strip()
    if not address:
        return None
    from distributed import Client  # noqa: PLC0415 - Dask only when scaling out

    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as error:
        log.warning("%s=%s: cannot reach it (%s); starting a local cluster", SHARED_VARIABLE, address, error)
        return None
    found = len(client.scheduler_info().get("workers", {}))
    if found != workers:
        log.info("%s has %d workers, %d wanted: starting a local cluster", SHARED_VARIABLE, found, workers)
        client.close()
        return None
    return client


@contextlib.contextmanager
def _local_client(workers: int) -> Iterator[Any]:
    """A client of a new LocalCluster of ``workers`` processes with one Dask thread each, closed on exit."""
    from distributed import Client, LocalCluster  # noqa: PLC0415 - Dask only when scaling out

    # The scheduler runs in this process: keep its start/stop INFO lines out of notebooks and logs, and
    # the nanny's note that a worker which finished its work was killed at close after 4 s on a busy
    # machine (a worker that dies while working is still reported).
    logging.getLogger("distributed").setLevel(logging.WARNING)
    nanny = logging.getLogger("distributed.nanny")
    if not any(isinstance(f, _WithoutKillAtClose) for f in nanny.filters):
        nanny.addFilter(_WithoutKillAtClose())
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            # no dashboard; the scheduler's own HTTP server on a free port, not 8787 (a second cluster on
            # the machine made it warn "Port 8787 is already in use" into the notebook)
            scheduler_kwargs={"dashboard_address": ":0"},
            silence_logs=logging.WARNING,
        ) as local,
        Client(local) as client,
    ):
        yield client


@contextlib.contextmanager
def shared_workers(n_jobs: int, warm: Callable[[], Any] | None = None) -> Iterator[Any]:
    """Worker processes that this process's children use instead of starting their own (a client, or None).

    ``serlib reproduce`` runs each notebook in a new kernel; each kernel that trains (02 the AEs, 04
    the ACNN runs) started a LocalCluster of its own, and every worker paid the imports of TensorFlow and
    serlib (~5 CPU-s each, docs/performance.md). Here one LocalCluster of ``worker_count(n_jobs)``
    processes lives as long as the ``with`` block and its scheduler's address is in ``SHARED_VARIABLE``,
    which the kernels inherit: ``dask_client`` connects to it. ``warm`` (a module-level function, e.g.
    one that imports the training modules) runs once on every worker at once, with the threads and the
    random generator of a task (``_task``), so the imports overlap the notebooks that need no worker.
    A worker computes the same as before: a task sets its own seeds and threads, whichever process ran
    what before it. No cluster (None) for a single worker, inside another shared cluster, or when it
    cannot start (logged).
    """
    workers = worker_count(n_jobs)
    if workers <= 1 or os.environ.get(SHARED_VARIABLE):
        yield None
        return
    stack = contextlib.ExitStack()
    try:
        client = stack.enter_context(_local_client(workers))
    except Exception as error:  # the notebooks then start their own clusters, as without this
        log.warning("shared Dask workers not started (%s): each notebook starts its own", error)
        client = None
    with stack:
        if client is not None:
            os.environ[SHARED_VARIABLE] = client.scheduler.address
            warming = _warm(client, warm)
        try:
            yield client
        finally:
            os.environ.pop(SHARED_VARIABLE, None)
            if client is not None:
                client.cancel(warming)


def _warm(client: Any, function: Callable[[], Any] | None) -> list[Any]:
    """``function`` as one task pinned to each worker (not awaited): the futures."""
    if function is None:
        return []
    threads = (
        runtime.requested_threads()
    )  # what the kernels' tasks pass (runtime.configure_when_tensorflow_loads)
    log_file = logs.current_file()
    return [
        client.submit(
            _task,
            function,
            threads,
            log_file,
            key=f"serlib-warm-{index}-{os.getpid()}",
            pure=False,
            workers=[address],
            allow_other_workers=False,
        )
        for index, address in enumerate(client.scheduler_info().get("workers", {}))
    ]


def pool_cpu_seconds(client: Any) -> float:
    """CPU seconds used so far by ``client``'s workers (each its own process) and by this process (the
    scheduler of a LocalCluster runs here): for logs next to the wall time."""
    import resource  # noqa: PLC0415 - Unix only, as the rest of serlib's run logs
    import time  # noqa: PLC0415

    own = resource.getrusage(resource.RUSAGE_SELF)
    try:
        workers = sum(client.run(time.process_time).values())
    except Exception as error:  # a log line must not stop the work: the workers' share is then left out
        log.warning("CPU seconds of the Dask workers not read (%s): the log counts this process only", error)
        workers = 0.0
    return own.ru_utime + own.ru_stime + workers


# -- Dask: tasks --------------------------------------------------------------------------------------
def _task(function: Callable[..., Any], threads: int, log_file: str | None, *arguments: Any) -> Any:
    """Worker side: the submitter's log file (INFO lines; warnings on the worker's stderr), TensorFlow
    with the submitter's threads, Keras' own random generator, then the task."""
    logs.configure_worker(log_file)
    runtime.configure(threads)
    _private_keras_random()
    return function(*arguments)


def run_tasks(
    client: Any,
    function: Callable[..., Any],
    arguments: Sequence[tuple[Any, ...]],
    names: Sequence[str],
    on_result: Callable[[int, Any], None] | None = None,
    groups: Sequence[Hashable] | None = None,
) -> list[Any]:
    """``function(*a)`` for each tuple of ``arguments`` as Dask tasks; results in ``arguments`` order.

    ``function`` must be importable by workers (a module-level function); ``names`` label the tasks.
    ``on_result(index, result)`` is called as tasks finish. The first failing task's error is raised
    after the other submitted tasks are cancelled. ``groups``: one key per task; tasks of a group prefer
    the same workers (``affine_workers``), so that a worker traces each ACNN architecture once rather
    than every worker every architecture; Dask may still move a task to an idle worker.
    """
    from distributed import as_completed  # noqa: PLC0415 - Dask only when scaling out

    if not arguments:
        return []
    threads = _threads_for(client)
    log_file = logs.current_file()
    order: list[int] = list(range(len(arguments)))
    preferred: list[str | None] = [None] * len(arguments)
    if groups is not None:
        addresses = list(client.scheduler_info().get("workers", {}))
        order, preferred = affine_workers(groups, addresses)

    def placement(index: int) -> dict[str, Any]:  # a preference, not a restriction: any worker may run it
        worker = preferred[index]
        return {} if worker is None else {"workers": [worker], "allow_other_workers": True}

    futures = {
        client.submit(
            _task,
            function,
            threads,
            log_file,
            *arguments[index],
            key=f"serlib-{names[index]}-{os.getpid()}",
            pure=False,
            **placement(index),
        ): index
        for index in order
    }
    results: list[Any] = [None] * len(arguments)
    try:
        for future in as_completed(futures):
            index = futures[future]
            results[index] = future.result()
            if on_result is not None:
                on_result(index, results[index])
    finally:
        pending = [f for f in futures if not f.done()]
        if pending:
            client.cancel(pending)
    return results


def affine_workers(
    groups: Sequence[Hashable], addresses: Sequence[str]
) -> tuple[list[int], list[str | None]]:
    """A submission order and a preferred worker per task: the tasks sorted by group (groups in order
    of first appearance, tasks in their own order within one), cut into one contiguous share of equal
    size per worker. Each worker then gets whole groups but for the cuts: at most ``groups + workers - 1``
    (group, worker) pairs instead of up to ``groups x workers`` (the demo: 5 ACNN traces instead of 8)."""
    first_seen: dict[Hashable, int] = {}
    for group in groups:
        first_seen.setdefault(group, len(first_seen))
    order = sorted(range(len(groups)), key=lambda index: (first_seen[groups[index]], index))
    preferred: list[str | None] = [None] * len(groups)
    if not addresses:
        return order, preferred
    for position, index in enumerate(order):
        preferred[index] = addresses[position * len(addresses) // len(order)]
    return order, preferred


def map_in_order(
    client: Any, function: Callable[..., Any], arguments: Sequence[tuple[Any, ...]]
) -> Iterator[Any]:
    """``function(*a)`` for each tuple of ``arguments`` as Dask tasks, yielded in order.

    At most ``SUBMIT_WINDOW_PER_WORKER`` tasks per worker are in flight, so results waiting to be
    written never pile up in memory (the caller writes each one as it arrives).
    """
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

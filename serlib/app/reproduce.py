"""Batch reproduction: execute the five notebooks in order with papermill, headlessly.

``serlib reproduce --preset demo --out runs/demo`` resolves the configuration once, writes it to
``<out>/config.yaml`` and hands that file to every notebook through its ``parameters`` cell, so all
notebooks see exactly the same settings; what produced the run (commit, package versions, machine,
threads) goes to ``<out>/provenance.json`` first (``serlib.base.provenance``). Executed copies land in
``<out>/notebooks/`` and a run log in ``<out>/reproduce.log``. The first failing notebook stops the run,
named with its failing cell.
Re-running is quick because the library's stores and finished runs skip work that is up to date; the
notebooks themselves always execute.

Every notebook kernel imports this module for ``setup_notebook``; papermill and jupyter_client (3-4 s
of imports, most of it nbformat's JSON-schema checkers) are therefore imported only by the functions
that drive kernels, not at the top.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import resource
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from IPython import get_ipython

from serlib.app.notebooks import NOTEBOOKS, notebooks_dir
from serlib.base import cluster, config_yaml, logs, progress, provenance, runtime
from serlib.base import config as config_module

log = logging.getLogger(__name__)

KERNEL_NAME = "serlib"
FALLBACK_KERNEL = "python3"


class ReproduceError(ValueError):
    """The reproduction cannot start (no notebooks, bad selection); the message says what to do."""


def project_root() -> Path:
    return notebooks_dir().parent


def kernel_name() -> str:
    """The ``serlib`` kernel registered by ``make install``, else this interpreter's ``python3`` kernel."""
    from jupyter_client.kernelspec import KernelSpecManager  # noqa: PLC0415  (light for kernels: see the module docstring)

    available = KernelSpecManager().find_kernel_specs()
    if KERNEL_NAME in available:
        return KERNEL_NAME
    log.warning(
        "Jupyter kernel %r is not installed (make install registers it); using %r of %s",
        KERNEL_NAME,
        FALLBACK_KERNEL,
        sys.executable,
    )
    return FALLBACK_KERNEL


def select(names: Sequence[str] | None) -> list[str]:
    """The notebooks to run, in the method's order; ``names`` may be file names, stems or prefixes ("03")."""
    if not names:
        return list(NOTEBOOKS)
    chosen = set()
    for name in names:
        matches = [
            nb for nb in NOTEBOOKS if nb == name or nb.removesuffix(".ipynb") == name or nb.startswith(name)
        ]
        if len(matches) != 1:
            raise ReproduceError(f"notebook {name!r} does not name exactly one of {', '.join(NOTEBOOKS)}")
        chosen.add(matches[0])
    return [nb for nb in NOTEBOOKS if nb in chosen]


def setup_notebook(
    preset: str | None = "demo",
    config_path: str | os.PathLike[str] | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
    log_level: str | None = None,
) -> config_module.Config:
    """The configuration of a notebook's ``parameters`` cell, with the working folder set to the project.

    Opened in JupyterLab, a notebook runs inside ``notebooks/``; it moves to the project root so that
    relative paths (``runs/demo``, ``figures``) mean the same as on the command line. The notebook shows
    warnings and step summaries; INFO lines go to ``<output_dir>/logs/serlib.log`` unless ``log_level``
    (or ``SERLIB_LOG_LEVEL``) is INFO or DEBUG (``serlib.base.logs``).
    """
    here = Path.cwd()
    moved = here.name == "notebooks" and (here.parent / "pyproject.toml").is_file()
    if moved:
        os.chdir(here.parent)
    config = config_module.resolve(preset, config_path)
    if output_dir is not None:
        config = config_module.override(config, output_dir=str(output_dir))
    if overrides:
        config = config_module.override(config, **overrides)
    if log_level:
        os.environ[logs.LEVEL_VARIABLE] = str(log_level)  # also for TensorFlow's C++ lines, Dask workers
    logs.configure(log_level, config.output_path)
    if moved:
        log.info("working folder: %s", here.parent)
    # The TensorFlow threads every serlib process uses (docs/reliability.md), set when a cell first
    # imports TensorFlow: notebook 01 reads data only and never pays its import.
    runtime.configure_when_tensorflow_loads()
    # Without ipywidgets tqdm.auto warns and draws text bars; serlib's environment has it.
    warnings.filterwarnings("ignore", message="IProgress not found")
    _inline_figures()
    _close_at_exit()
    return config


def _close_at_exit() -> None:
    """Inside a Jupyter kernel: before the kernel's own shutdown, close what serlib's cells started.

    At a shutdown request ipykernel first runs ``do_shutdown``, then signals every child process of
    its process group with SIGTERM and waits for them, up to 14 s, before SIGKILL. A kernel that ran a
    Dask LocalCluster or a process pool still has multiprocessing's resource tracker as a child, and
    the tracker ignores SIGTERM by design; so the kernel was still waiting when jupyter_client
    (papermill) terminated it 2.5 s later, and its control task (``Kernel.dispatch_control``) was
    destroyed while pending ("Task was destroyed but it is pending!", printed through a logging handler
    whose notebook stream was already closed: "Logging error ... I/O operation on closed file").
    Closing Dask clients and stopping the forkserver and the resource tracker in ``do_shutdown`` lets
    the kernel find no children and exit at once.
    """
    shell = get_ipython()
    kernel = getattr(shell, "kernel", None)
    if kernel is None or getattr(kernel, "_serlib_orderly_shutdown", False):
        return
    original = kernel.do_shutdown

    async def do_shutdown(restart: bool) -> Any:
        stop_helper_processes()
        reply = original(restart)
        return await reply if inspect.isawaitable(reply) else reply

    kernel.do_shutdown = do_shutdown
    kernel._serlib_orderly_shutdown = True


def stop_helper_processes() -> None:
    """Close an open Dask client, then stop multiprocessing's forkserver and resource tracker (they are
    started again when needed); errors are logged, never raised, since this runs at shutdown."""
    distributed = sys.modules.get("distributed")
    if distributed is not None:
        try:
            distributed.get_client().close()
        except ValueError:  # no client open
            pass
        except Exception as error:  # pragma: no cover - shutdown goes on
            log.warning("closing the Dask client at kernel shutdown: %s", error)
    from multiprocessing import forkserver, resource_tracker  # noqa: PLC0415 - at shutdown only

    for name, helper in (
        ("forkserver", forkserver._forkserver),
        ("resource tracker", resource_tracker._resource_tracker),
    ):
        stop = getattr(helper, "_stop", None)
        if stop is None:  # pragma: no cover - another Python
            continue
        try:
            stop()
        except Exception as error:  # pragma: no cover - shutdown goes on
            log.warning("stopping multiprocessing's %s at kernel shutdown: %s", name, error)


def _inline_figures() -> None:
    """Inside a Jupyter kernel: draw figures inline, and tell library code (which picks a headless
    backend when MPLBACKEND is unset) to keep that backend."""
    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        return
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    shell.run_line_magic("matplotlib", "inline")


def ipc_kernel_manager(folder: Path) -> type:
    """A Jupyter kernel manager that talks to its kernel over local IPC sockets in ``folder``.

    jupyter_client's default is TCP on localhost, for which ipykernel prints "Kernel is running over
    TCP without encryption" at every start; IPC sockets are files only this user can reach.

    A graceful shutdown does not interrupt the kernel first. jupyter_client's ``shutdown_kernel`` sends
    SIGINT to the kernel's process group before its shutdown request; papermill shuts a kernel down only
    after its last cell, and when that SIGINT lands while ipykernel is still inside a shell-message
    handler (a race, seen under load after notebook 05's figure cells), ipykernel logs
    "[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel." although the notebook finished. The
    shutdown request alone stops it (``_close_at_exit`` closes serlib's helpers first); interrupting a
    running cell (``interrupt_kernel``, papermill's timeouts) is unchanged.
    """
    from jupyter_client import AsyncKernelManager  # noqa: PLC0415  (light for kernels: see the module docstring)
    from traitlets import default  # noqa: PLC0415  (light for kernels: see the module docstring)

    class IPCKernelManager(AsyncKernelManager):
        @default("transport")
        def _default_transport(self) -> str:
            return "ipc"

        @default("ip")
        def _default_ip(self) -> str:
            return str(folder / "kernel")

        async def _async_interrupt_kernel(self) -> None:
            if self.shutting_down:  # the interrupt that shutdown_kernel sends first: see above
                return
            await super()._async_interrupt_kernel()

    return IPCKernelManager


def _children_cpu_seconds() -> float:
    """CPU seconds of finished child processes (the notebook kernels), to log next to wall time."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _log_line(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text + "\n")


def run(
    preset: str | None = None,
    config_path: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    notebooks: Sequence[str] | None = None,
    timeout: float | None = None,
) -> int:
    """Execute the notebooks in order; 0 when all succeeded, 1 at the first failure (named on stderr).

    ``preset``/``config_path`` choose the configuration (a file wins), ``out`` overrides its output
    folder, ``notebooks`` restricts the run (e.g. ``["04", "05"]``), ``timeout`` limits each cell (s).
    """
    logging.getLogger("papermill").setLevel(logging.WARNING)  # one line per notebook is ours to print
    config = config_module.resolve(preset, config_path)
    if out is not None:
        config = config_module.override(config, output_dir=str(out))
    selected = select(notebooks)
    source_dir = notebooks_dir()
    absent = [nb for nb in selected if not (source_dir / nb).is_file()]
    if absent:
        raise ReproduceError(
            f"notebooks {absent} are missing from {source_dir}: is this a complete serlib checkout?"
        )

    out_dir = config.output_path
    executed_dir = out_dir / "notebooks"
    executed_dir.mkdir(parents=True, exist_ok=True)
    resolved = config_yaml.save(config, out_dir / "config.yaml")
    provenance.record(out_dir, config)  # <out>/provenance.json; one warning line if the environment changed
    log_path = out_dir / "reproduce.log"
    own_log = logs.current_file() is None
    if own_log:
        logs.log_to_file(out_dir)  # the kernels append theirs (setup_notebook) to the same file
    kernel = kernel_name()
    # The kernels inherit this environment: TensorFlow's C++ logging level (read when TensorFlow is
    # imported, so it must be there before the kernel starts) and plain progress lines on standard
    # output instead of widgets that no one would see (serlib.base.progress).
    runtime.quiet_tensorflow_environment()
    saved_progress = os.environ.get(progress.PROGRESS_VARIABLE)
    os.environ[progress.PROGRESS_VARIABLE] = "lines"
    try:
        with _shared_workers(config, selected) as pool:
            return _execute(config, resolved, selected, kernel, log_path, timeout, pool)
    finally:
        if own_log:
            logs.stop_file()
        if saved_progress is None:
            os.environ.pop(progress.PROGRESS_VARIABLE, None)
        else:
            os.environ[progress.PROGRESS_VARIABLE] = saved_progress


def _shared_workers(config: config_module.Config, selected: list[str]) -> Any:
    """One set of Dask workers for all notebooks of this reproduction (``cluster.shared_workers``): the
    kernels of 02 (AEs) and 04 (ACNN runs) used to start two workers each, and each worker paid
    TensorFlow's import. None with a scheduler address (the notebooks use that cluster), with one worker
    (``protocol.n_jobs``), or when only notebook 01 runs (it trains nothing). The workers import the
    training code while notebook 01 runs, unless the output folder already has Table 1 (a re-run finds
    its work cached and may need no worker)."""
    if config.protocol.scheduler_address or selected == [NOTEBOOKS[0]]:
        return contextlib.nullcontext()
    fresh = not (config.output_path / "table1.md").is_file()
    return cluster.shared_workers(config.protocol.n_jobs, warm=warm_worker if fresh else None)


def warm_worker() -> None:
    """What the first training task of a worker imports (a shared worker's warm-up; see above)."""
    from serlib.models import autoencoder  # noqa: F401, PLC0415 - the import is the point
    from serlib.protocol import runs  # noqa: F401, PLC0415


def _notebook_cpu(pool: Any) -> float:
    """CPU seconds of finished kernels plus, with shared workers, the workers and this process."""
    return _children_cpu_seconds() + (cluster.pool_cpu_seconds(pool) if pool is not None else 0.0)


def _execute(
    config: config_module.Config,
    resolved: Path,
    selected: list[str],
    kernel: str,
    log_path: Path,
    timeout: float | None,
    pool: Any = None,
) -> int:
    """``run``'s loop: each notebook with papermill, logged to ``log_path``; 0, or 1 at the first failure."""
    out_dir = config.output_path
    parameters = {
        "preset": config.name,
        "config_path": str(resolved.resolve()),
        "output_dir": str(out_dir),
    }
    sockets = tempfile.TemporaryDirectory(prefix="serlib-kernel-")  # held until the loop ends
    options = {
        "parameters": parameters,
        "kernel_name": kernel,
        "progress_bar": False,
        "execution_timeout": timeout,
        "kernel_manager_class": ipc_kernel_manager(Path(sockets.name)),
    }
    started = time.perf_counter()
    _log_line(
        log_path,
        f"# {datetime.now().isoformat(timespec='seconds')} reproduce {config.name} -> {out_dir} "
        f"(config {resolved}, kernel {kernel})",
    )
    print(
        f"serlib reproduce: {len(selected)} notebooks, configuration {resolved}, kernel {kernel}", flush=True
    )
    for number, name in enumerate(selected, start=1):
        tag = f"[{number}/{len(selected)}] {name}"
        if not _execute_one(name, tag, out_dir / "notebooks" / name, options, log_path, pool, started):
            _report(out_dir)
            return 1
    total = time.perf_counter() - started
    _log_line(log_path, f"# all {len(selected)} notebooks ok in {total:.1f} s")
    print(f"serlib reproduce: all notebooks ran in {total:.1f} s; outputs in {out_dir}", flush=True)
    _print_table1(out_dir)
    _check(out_dir)
    _report(out_dir)  # the report's path is the last line printed
    return 0


def _execute_one(
    name: str,
    tag: str,
    output: Path,
    options: dict[str, Any],
    log_path: Path,
    pool: Any,
    started: float,
) -> bool:
    """One notebook with papermill, its log and console lines; False when it failed (named by ``_failed``)."""
    import papermill  # noqa: PLC0415  (light for kernels: see the module docstring)

    begin = time.perf_counter()
    cpu_begin = _notebook_cpu(pool)
    stamp = datetime.now().isoformat(timespec="seconds")
    print(f"{tag} running ...", flush=True)
    try:
        papermill.execute_notebook(str(notebooks_dir() / name), str(output), cwd=str(Path.cwd()), **options)
    except Exception as error:  # kernel died, timeout, unreadable notebook: still name the notebook
        _failed(error, name, tag, stamp, time.perf_counter() - begin, output, log_path)
        return False
    seconds = time.perf_counter() - begin
    cpu = _notebook_cpu(pool) - cpu_begin
    end = datetime.now().isoformat(timespec="seconds")
    _log_line(
        log_path,
        f"{name}\tstart {stamp}\tend {end}\tseconds {seconds:.1f}\tkernel_cpu_s {cpu:.1f}\tstatus ok",
    )
    print(f"{tag} done in {seconds:.1f} s (total {time.perf_counter() - started:.1f} s)", flush=True)
    return True


def _failed(
    error: Exception, name: str, tag: str, stamp: str, seconds: float, output: Path, log_path: Path
) -> None:
    """The log and console lines of a failed notebook: its failing cell where papermill names one (an error
    inside the notebook), else the error's type (kernel died, timeout, unreadable notebook)."""
    from papermill.exceptions import PapermillExecutionError  # noqa: PLC0415  (light for kernels: see the module docstring)

    if isinstance(error, PapermillExecutionError):
        status = f"failed in cell {error.cell_index}: {error.ename}"
        detail = (
            f"in cell {error.cell_index} ({error.ename}: {error.evalue}); "
            f"the executed copy with the traceback is {output}"
        )
    else:
        status = f"failed: {type(error).__name__}"
        detail = f"({type(error).__name__}: {error}); partial copy: {output}"
    _log_line(log_path, f"{name}\tstart {stamp}\tseconds {seconds:.1f}\tstatus {status}")
    print(f"{tag} FAILED after {seconds:.1f} s {detail}", file=sys.stderr, flush=True)


def _print_table1(out_dir: Path) -> None:
    """Table 1's rows (the first table of ``<out>/table1.md``), so that a terminal shows the result."""
    path = out_dir / "table1.md"
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    if start is None:
        return
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    print(f"\nTable 1 ({path}), UAR in %:", *lines[start:end], sep="\n", flush=True)


def _check(out_dir: Path) -> None:
    """Print ``serlib check``'s verdict for every Table 1 cell (information: the reproduction ran, so its
    exit status stays 0; ``serlib check DIR`` exits non-zero where a cell is outside)."""
    from serlib.evidence import check  # noqa: PLC0415  (scipy's statistics: not for every kernel)

    try:
        print(check.check_markdown(check.check_run(out_dir)), end="", flush=True)
    except (ValueError, OSError) as error:
        print(f"serlib reproduce: no check ({error}); retry with serlib check {out_dir}", file=sys.stderr)


def _report(out_dir: Path) -> None:
    """Write ``<out>/report/index.html`` (serlib.app.report); a report that cannot be written is named on
    stderr but does not fail a reproduction whose results are on disk (``serlib report`` rebuilds it)."""
    from serlib.app import report  # noqa: PLC0415  (nbconvert takes seconds to import)

    try:
        built = report.build(out_dir)
    except (ValueError, OSError) as error:
        print(
            f"serlib reproduce: report not written ({error}); retry with serlib report {out_dir}",
            file=sys.stderr,
        )
        return
    note = "" if built.complete else f" ({built.incomplete_message()})"
    print(f"serlib reproduce: report {built.index}{note}", flush=True)

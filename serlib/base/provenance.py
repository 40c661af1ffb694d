"""Provenance of a run folder: which code, packages, machine and settings produced it.

``serlib reproduce`` and ``serlib evaluate`` write ``<out>/provenance.json`` before they compute
anything (``record``): serlib's version and git commit (and whether the tree had uncommitted changes),
Python, the versions of the packages that decide the numbers (``DECISIVE``) and a sha256 of the whole
installed package list (the information of ``pip freeze``), the CPU model and instruction sets, cores,
GPUs, BLAS libraries and their threads, TensorFlow's thread and oneDNN settings, the seeds, the
configuration's hash, and whether the environment is exactly ``requirements.lock``.

A run folder is reused on purpose: feature stores, trained autoencoders and finished ACNN runs are
skipped when up to date. When the folder was produced under another environment (other package
versions, Python, CPU, thread or BLAS settings), ``record`` says so in one warning line that names what
changed, then records the new environment and keeps the earlier records under ``earlier`` with
``mixed_environments: true``, so a folder whose results come from two environments never looks as if it
came from one. ``serlib provenance DIR`` prints the record and its differences to the environment it is
run in (``report``).

The package list is read with ``importlib.metadata`` (what ``pip freeze`` lists, without a subprocess and
without pip): the installers pip and uv are left out, as ``pip freeze`` leaves out pip, and so is serlib
itself, whose editable entry names the checkout's path (two clones of one commit would differ); serlib
is recorded by version and commit instead.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import serlib
from serlib.base import lockfile, run_schemas, runtime

if TYPE_CHECKING:
    from serlib.base.config import Config

log = logging.getLogger(__name__)

FILE_NAME = "provenance.json"
FORMAT = 1
# The packages whose versions decide serlib's numbers: TensorFlow (kernels, oneDNN), Keras, the
# numerical libraries, openSMILE (features), libsndfile/soxr (audio reading and resampling), h5py.
DECISIVE = (
    "tensorflow",
    "tensorflow-cpu",
    "keras",
    "numpy",
    "scipy",
    "scikit-learn",
    "opensmile",
    "soundfile",
    "soxr",
    "h5py",
)
# Variables that change threads, kernels or hashing, recorded as set (absent ones are left out).
ENVIRONMENT_VARIABLES = (
    runtime.THREADS_VARIABLE,
    runtime.ONEDNN_VARIABLE,
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "TF_DETERMINISTIC_OPS",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "CUDA_VISIBLE_DEVICES",
    "PYTHONHASHSEED",
)
# Instruction sets that select other oneDNN/Eigen/OpenBLAS kernels (and so other rounding).
CPU_FEATURES = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
)
DRIFT_NAMES_SHOWN = 8
# Left out of the package list, as ``pip freeze`` leaves out pip: the installers, which compute nothing.
# (`make install` bootstraps uv with the venv's own pip; INSTALLER=pip upgrades pip instead.)
INSTALLERS = ("pip", "uv")


class ProvenanceError(ValueError):
    """A provenance record is absent or unreadable; the message names the file and what to do."""


# -- what is recorded -------------------------------------------------------------------------------
def config_hash(config: Config) -> str:
    """sha256 of the validated configuration (``model_dump(mode="json")``, the current key names; keys
    sorted). Hashes recorded before issue 43 (the old key form) are rewritten by ``serlib migrate``."""
    return hash_config_data(config.model_dump(mode="json"))


def hash_config_data(data: dict[str, Any]) -> str:
    """sha256 of a configuration mapping as sorted compact JSON (``config_hash``'s definition)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def source_root() -> Path:
    """The folder holding the ``serlib`` package: the checkout for an editable install."""
    return Path(serlib.__file__).resolve().parent.parent


def git_state(root: Path | None = None) -> dict[str, Any]:
    """``commit`` (full hash), ``dirty`` (uncommitted changes, untracked files included) and the first
    changed paths; ``commit`` is None outside a git checkout (a wheel install) or without git."""
    root = source_root() if root is None else root
    if not (root / ".git").exists() or shutil.which("git") is None:
        return {"commit": None, "dirty": None, "changed": [], "note": f"{root} is not a git checkout"}
    try:
        commit = _git(root, "rev-parse", "HEAD")
        status = _git(root, "status", "--porcelain=v1", "--untracked-files=normal")
    except (OSError, subprocess.SubprocessError) as error:
        return {"commit": None, "dirty": None, "changed": [], "note": f"git failed in {root}: {error}"}
    changed = [line[3:] for line in status.splitlines() if line.strip()]
    return {"commit": commit.strip(), "dirty": bool(changed), "changed": changed[:20]}


def _git(root: Path, *arguments: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *arguments], capture_output=True, text=True, check=True, timeout=30
    ).stdout


def installed_packages() -> dict[str, str]:
    """``{canonical name: version}`` of every distribution this interpreter imports from, serlib and the
    ``INSTALLERS`` excluded (the first on ``sys.path`` wins, as for imports), sorted by name."""
    packages: dict[str, str] = {}
    for distribution in importlib.metadata.distributions():
        name = distribution.metadata["Name"]
        if not name:
            continue
        name = lockfile.canonical(name)
        if name != "serlib" and name not in INSTALLERS and name not in packages:
            packages[name] = distribution.version
    return dict(sorted(packages.items()))


def freeze_digest(packages: dict[str, str]) -> str:
    """sha256 of the ``name==version`` lines of ``packages`` (sorted): equal digests, equal environments."""
    text = "".join(f"{name}=={version}\n" for name, version in sorted(packages.items()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cpu_info() -> dict[str, Any]:
    """CPU model, the instruction sets of ``CPU_FEATURES`` it has, and the cores (usable and total)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            model = value.strip()
        elif key.strip() == "flags":
            flags = set(value.split())
            break
    return {
        "model": model,
        "features": [feature for feature in CPU_FEATURES if feature in flags],
        "cores_available": runtime.available_cores(),
        "cores_total": os.cpu_count(),
    }


def gpu_names() -> list[str]:
    """The GPUs ``nvidia-smi -L`` lists (model names, without serial numbers); empty without one."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listing = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, check=True, timeout=20
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [re.sub(r"\s*\(UUID:.*\)$", "", line.strip()) for line in listing.splitlines() if line.strip()]


def blas_info() -> dict[str, Any]:
    """numpy's BLAS build and SIMD extensions, and the BLAS libraries numpy and scipy load (threadpoolctl:
    library, version, kernel architecture, threads), without file paths.

    OpenMP runtimes are left out: whether one is loaded depends on what the process imported before
    (scikit-learn, TensorFlow), not on the environment, and would make one environment look like two.
    """
    import numpy as np  # noqa: PLC0415 - the base layer stays light for `serlib --help`
    import scipy.linalg  # noqa: F401, PLC0415 - loads scipy's own OpenBLAS, so threadpoolctl sees it
    from threadpoolctl import threadpool_info  # noqa: PLC0415

    numpy_config: Any = np.show_config(mode="dicts")
    numpy_blas = numpy_config.get("Build Dependencies", {}).get("blas", {})
    simd = numpy_config.get("SIMD Extensions", {})
    keys = ("user_api", "internal_api", "prefix", "version", "architecture", "threading_layer", "num_threads")
    return {
        "numpy_blas": {key: numpy_blas.get(key) for key in ("name", "version")},
        "numpy_simd": {key: simd.get(key) for key in ("baseline", "found")},
        "libraries": sorted(
            (
                {key: pool.get(key) for key in keys}
                for pool in threadpool_info()
                if pool.get("user_api") == "blas"
            ),
            key=lambda pool: json.dumps(pool, sort_keys=True),
        ),
    }


def lock_state(packages: dict[str, str], root: Path | None = None) -> dict[str, Any] | None:
    """Whether ``packages`` are exactly the checkout's requirements.lock: the pins that differ and the
    packages the lock does not name; None when there is no lock (serlib installed from a wheel)."""
    path = (source_root() if root is None else root) / lockfile.LOCK_NAME
    if not path.is_file():
        return None
    try:
        pins = lockfile.read_pins(path)
    except lockfile.LockError as error:
        return {"file": lockfile.LOCK_NAME, "matches": False, "error": str(error)}
    differs = {
        name: {"locked": version, "installed": packages.get(name)}
        for name, version in pins.items()
        if packages.get(name) != version
    }
    extra = sorted(set(packages) - set(pins))
    return {
        "file": lockfile.LOCK_NAME,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "matches": not differs and not extra,
        "differs": differs,
        "not_in_lock": extra,
    }


def collect(config: Config | None = None, command: str | None = None) -> dict[str, Any]:
    """The provenance record of this process (``config`` adds its hash and seeds)."""
    packages = installed_packages()
    threads = runtime.requested_threads()
    record: dict[str, Any] = {
        "format": FORMAT,
        "written": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command if command is not None else shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "serlib": {"version": serlib.__version__, "source": str(source_root()), **git_state()},
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "packages": {name: packages[name] for name in DECISIVE if name in packages},
        "freeze": {"sha256": freeze_digest(packages), "count": len(packages), "packages": packages},
        "lock": lock_state(packages),
        "machine": {
            "platform": platform.platform(),
            "libc": " ".join(platform.libc_ver()).strip(),
            "cpu": cpu_info(),
            "gpus": gpu_names(),
        },
        "numerics": {
            "tensorflow_threads": {"intra_op": threads, "inter_op": threads},
            "onednn": runtime.onednn_setting(),
            "blas": blas_info(),
            "environment_variables": {
                name: os.environ[name] for name in ENVIRONMENT_VARIABLES if name in os.environ
            },
        },
    }
    if "tensorflow" in sys.modules:  # this process's own TensorFlow, as it stands (not imported for this)
        record["numerics"]["tensorflow_process"] = runtime.settings()
    if config is not None:
        record["config"] = {"name": config.name, "sha256": config_hash(config)}
        record["seeds"] = {
            "seed": config.seed,
            "protocol_seeds": list(config.protocol.seeds),
            "tsne_seed": config.tsne.seed,
        }
    return record


def table_stamp(config: Config) -> dict[str, Any]:
    """What Table 1's header line names: serlib's commit (and whether the tree was dirty) and the
    configuration hash (``experiments.table_markdown``)."""
    state = git_state()
    return {"commit": state["commit"], "dirty": state["dirty"], "config_sha256": config_hash(config)}


def stamp_text(stamp: dict[str, Any] | None) -> str:
    """``serlib 77570a6c1d2e (uncommitted changes), config sha256 3f2a...`` for a caption; '' for None."""
    if not stamp:
        return ""
    commit = stamp.get("commit")
    code = f"serlib {commit[:12]}" if commit else "serlib (commit unknown)"
    if stamp.get("dirty"):
        code += " with uncommitted changes"
    return f"{code}, config sha256 {str(stamp.get('config_sha256', ''))[:12]}"


# -- comparing environments -------------------------------------------------------------------------
def environment_items(record: dict[str, Any]) -> dict[str, str]:
    """The parts of a record that decide numbers, flattened to ``{label: value}``: every package version,
    Python, CPU model and instruction sets, GPUs, TensorFlow threads, oneDNN, BLAS libraries and the
    environment variables of ``ENVIRONMENT_VARIABLES``. Commit, paths and times are not environment."""
    items = {name: version for name, version in record.get("freeze", {}).get("packages", {}).items()}
    python = record.get("python", {})
    items["Python"] = f"{python.get('implementation', '')} {python.get('version', '')}".strip()
    machine = record.get("machine", {})
    cpu = machine.get("cpu", {})
    items["CPU"] = str(cpu.get("model"))
    items["CPU instruction sets"] = " ".join(cpu.get("features", [])) or "none of note"
    items["GPUs"] = ", ".join(machine.get("gpus", [])) or "none"
    numerics = record.get("numerics", {})
    threads = numerics.get("tensorflow_threads", {})
    items["TensorFlow threads"] = f"{threads.get('intra_op')} intra-op/{threads.get('inter_op')} inter-op"
    items["oneDNN"] = str(numerics.get("onednn"))
    items["BLAS"] = " + ".join(
        f"{pool.get('prefix')} {pool.get('version')} {pool.get('architecture')} x{pool.get('num_threads')} threads"
        for pool in numerics.get("blas", {}).get("libraries", [])  # numpy's and scipy's may share a prefix
        if pool.get("user_api") == "blas"
    )
    for name in ENVIRONMENT_VARIABLES:
        items[f"${name}"] = numerics.get("environment_variables", {}).get(name, "unset")
    return items


def differences(recorded: dict[str, Any], current: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """``{label: (recorded value, current value)}`` of the environment items that differ; a package
    present on one side only is ``absent`` on the other. Decisive packages come first."""
    before, after = environment_items(recorded), environment_items(current)
    changed = {
        label: (before.get(label, "absent"), after.get(label, "absent"))
        for label in sorted(set(before) | set(after))
        if before.get(label, "absent") != after.get(label, "absent")
    }
    decisive = [label for label in DECISIVE if label in changed]
    return {label: changed[label] for label in decisive + [k for k in changed if k not in decisive]}


def drift_line(folder: str | Path, changed: dict[str, tuple[str, str]]) -> str:
    """One line saying which environment produced ``folder`` and what differs now."""
    labels = list(changed)
    shown = labels[:DRIFT_NAMES_SHOWN]
    more = (
        f" and {len(labels) - len(shown)} more (serlib provenance {folder})"
        if len(labels) > len(shown)
        else ""
    )
    before = ", ".join(f"{label} {changed[label][0]}" for label in shown)
    after = ", ".join(f"{label} {changed[label][1]}" for label in shown)
    return (
        f"{folder} was produced with {before}; this environment has {after}{more}: cached stores and "
        "finished runs from the other environment are reused (delete the folder to recompute)"
    )


# -- reading and writing ----------------------------------------------------------------------------
def load(folder: str | Path) -> dict[str, Any]:
    """The record of ``folder/provenance.json``; ProvenanceError when it is absent or unreadable."""
    path = Path(folder) / FILE_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProvenanceError(
            f"{path} does not exist: `serlib reproduce` and `serlib evaluate` write it into their output "
            "folder; give such a folder"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProvenanceError(f"{path} cannot be read as JSON ({error}); delete it and re-run") from None
    if not isinstance(data, dict) or "freeze" not in data:
        raise ProvenanceError(f"{path} is not a serlib provenance record; delete it and re-run")
    try:
        run_schemas.validate(run_schemas.Provenance, data, path, "delete it and re-run")
    except run_schemas.RunFileError as error:
        raise ProvenanceError(str(error)) from None
    return data


def record(folder: str | Path, config: Config | None = None, command: str | None = None) -> dict[str, Any]:
    """Write ``folder/provenance.json`` for a run about to start; warn in one line when the folder was
    produced under another environment. Returns the record written.

    The new record describes this environment. The record it replaces is kept under ``earlier`` when the
    environment, the code (commit, uncommitted changes) or the configuration differ, with the
    environment items that changed (``changed_to_next``) instead of its full package list; and
    ``mixed_environments`` says whether any earlier record had another environment. An unreadable
    earlier record is kept as a note: what produced the folder's older files is then unknown.
    """
    folder = Path(folder)
    current = collect(config, command)
    earlier: list[dict[str, Any]] = []
    if (folder / FILE_NAME).exists():
        try:
            previous = load(folder)
        except ProvenanceError as error:
            log.warning("%s; the environment of the files already in %s is unknown", error, folder)
            earlier = [{"unreadable": str(error)}]
        else:
            changed = differences(previous, current)
            if changed:
                log.warning("%s", drift_line(folder, changed))
            earlier = list(previous.get("earlier", []))
            if changed or _code_and_config(previous) != _code_and_config(current):
                entry = {k: v for k, v in previous.items() if k not in ("earlier", "mixed_environments")}
                entry["freeze"] = {k: v for k, v in previous["freeze"].items() if k != "packages"}
                entry["changed_to_next"] = {label: list(pair) for label, pair in changed.items()}
                earlier.insert(0, entry)
    current["earlier"] = earlier
    current["mixed_environments"] = any("unreadable" in e or e.get("changed_to_next") for e in earlier)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{FILE_NAME}.tmp{os.getpid()}"
    tmp.write_text(json.dumps(current, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, folder / FILE_NAME)
    return current


def add_entry(folder: str | Path, name: str, value: Any) -> bool:
    """Set ``name`` in ``folder/provenance.json`` (atomically), e.g. the ACNN implementation a grid
    resolved; False (nothing written) when the folder has no readable record."""
    try:
        current = load(folder)
    except ProvenanceError:
        return False
    if current.get(name) == value:
        return True
    current[name] = value
    path = Path(folder) / FILE_NAME
    tmp = path.with_name(f".{FILE_NAME}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(current, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return True


def _code_and_config(entry: dict[str, Any]) -> tuple[Any, ...]:
    serlib_state = entry.get("serlib", {})
    return serlib_state.get("commit"), serlib_state.get("dirty"), entry.get("config", {}).get("sha256")


def report(folder: str | Path) -> tuple[str, bool]:
    """The text ``serlib provenance DIR`` prints (the record, earlier records, the differences to this
    environment) and whether this environment differs from the recorded one."""
    recorded = load(folder)
    current = collect(command="")
    lines = [f"{Path(folder) / FILE_NAME} (written {recorded.get('written')} by `{recorded.get('command')}`)"]
    lines += _summary(recorded)
    for number, entry in enumerate(recorded.get("earlier", []), start=1):
        if "unreadable" in entry:
            lines.append(f"earlier record {number}: unreadable ({entry['unreadable']})")
            continue
        changed = entry.get("changed_to_next", {})
        what = "; ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items()) or "same environment"
        lines.append(
            f"earlier record {number} (written {entry.get('written')}, serlib {_commit_text(entry)}, "
            f"config sha256 {str(entry.get('config', {}).get('sha256'))[:12]}): {what}"
        )
    if recorded.get("mixed_environments"):
        lines.append("this folder holds files computed under more than one environment (earlier records)")
    changed = differences(recorded, current)
    if changed:
        lines.append(f"this environment differs from the record in {len(changed)} item(s):")
        lines += [f"  {label}: {before} -> {after}" for label, (before, after) in changed.items()]
    else:
        lines.append("this environment matches the record")
    if _code_and_config(recorded)[:2] != _code_and_config(current)[:2]:
        lines.append(f"this checkout is serlib {_commit_text(current)}")
    return "\n".join(lines) + "\n", bool(changed)


def _commit_text(entry: dict[str, Any]) -> str:
    state = entry.get("serlib", {})
    commit = state.get("commit")
    text = commit[:12] if commit else "(commit unknown)"
    return text + (" with uncommitted changes" if state.get("dirty") else "")


def _summary(entry: dict[str, Any]) -> list[str]:
    python = entry.get("python", {})
    machine = entry.get("machine", {})
    cpu = machine.get("cpu", {})
    numerics = entry.get("numerics", {})
    threads = numerics.get("tensorflow_threads", {})
    lock = entry.get("lock")
    lock_text = "no lock file" if lock is None else ("matches" if lock.get("matches") else "differs")
    lines = [
        f"serlib {entry.get('serlib', {}).get('version')} {_commit_text(entry)}",
        f"Python {python.get('implementation')} {python.get('version')}; packages: "
        + ", ".join(f"{name} {version}" for name, version in entry.get("packages", {}).items()),
        f"all {entry.get('freeze', {}).get('count')} packages: sha256 {entry.get('freeze', {}).get('sha256')}"
        f" ({lockfile.LOCK_NAME}: {lock_text})",
        f"CPU {cpu.get('model')} ({' '.join(cpu.get('features', []))}), {cpu.get('cores_available')} of "
        f"{cpu.get('cores_total')} cores; GPUs: {', '.join(machine.get('gpus', [])) or 'none'}",
        f"TensorFlow threads {threads.get('intra_op')}/{threads.get('inter_op')}, oneDNN {numerics.get('onednn')};"
        " BLAS: "
        + ", ".join(
            f"{pool.get('prefix')} {pool.get('version')} {pool.get('architecture')} x{pool.get('num_threads')}"
            for pool in numerics.get("blas", {}).get("libraries", [])
        ),
    ]
    if "config" in entry:
        seeds = entry.get("seeds", {})
        lines.append(
            f"config {entry['config'].get('name')} sha256 {entry['config'].get('sha256')}; seed "
            f"{seeds.get('seed')}, protocol seeds {seeds.get('protocol_seeds')}, t-SNE seed {seeds.get('tsne_seed')}"
        )
    return lines

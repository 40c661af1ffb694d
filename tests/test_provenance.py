"""Provenance: every run folder says which code, packages, machine and settings produced it, and a
reused folder under another environment says so in one line (serlib.base.provenance)."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import serlib
from serlib.app import cli, reproduce
from serlib.base import config as config_module
from serlib.base import provenance, runtime
from serlib.evidence import summaries, table1
from serlib.protocol import grid

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_config() -> config_module.Config:
    return config_module.resolve("demo", None)


def _head() -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def _edit(folder: Path, **versions: str) -> None:
    """Pretend the folder was produced with other package versions."""
    path = folder / provenance.FILE_NAME
    data = json.loads(path.read_text(encoding="utf-8"))
    for name, version in versions.items():
        data["freeze"]["packages"][name] = version
        if name in data["packages"]:
            data["packages"][name] = version
    path.write_text(json.dumps(data), encoding="utf-8")


def test_record_names_commit_versions_machine_settings_and_config(tmp_path, demo_config) -> None:
    written = provenance.record(tmp_path, demo_config, command="serlib evaluate --preset demo")
    stored = json.loads((tmp_path / provenance.FILE_NAME).read_text(encoding="utf-8"))
    assert stored == written
    assert stored["serlib"]["version"] == serlib.__version__
    assert stored["serlib"]["commit"] == _head() and isinstance(stored["serlib"]["dirty"], bool)
    for name in ("keras", "numpy", "scipy", "scikit-learn", "opensmile", "soundfile", "soxr", "h5py"):
        assert stored["packages"][name] == importlib.metadata.version(name)
    tensorflow = "tensorflow-cpu" if "tensorflow-cpu" in stored["packages"] else "tensorflow"
    assert stored["packages"][tensorflow] == importlib.metadata.version(tensorflow)
    freeze = stored["freeze"]
    assert freeze["count"] == len(freeze["packages"]) > 50 and "pip" not in freeze["packages"]
    assert freeze["sha256"] == provenance.freeze_digest(provenance.installed_packages())
    cpu = stored["machine"]["cpu"]
    assert cpu["model"] and cpu["cores_available"] == runtime.available_cores()
    assert isinstance(stored["machine"]["gpus"], list)
    threads = runtime.requested_threads()
    assert stored["numerics"]["tensorflow_threads"] == {"intra_op": threads, "inter_op": threads}
    assert stored["numerics"]["onednn"] == runtime.onednn_setting()
    assert any(pool["internal_api"] == "openblas" for pool in stored["numerics"]["blas"]["libraries"])
    assert stored["seeds"] == {"seed": 0, "protocol_seeds": list(demo_config.protocol.seeds), "tsne_seed": 0}
    assert stored["config"]["sha256"] == provenance.config_hash(demo_config)
    assert stored["earlier"] == [] and stored["mixed_environments"] is False
    assert stored["command"] == "serlib evaluate --preset demo"


def test_config_hash_follows_the_configuration(demo_config) -> None:
    same = config_module.resolve("demo", None)
    assert provenance.config_hash(same) == provenance.config_hash(demo_config)
    other = config_module.override(demo_config, **{"acnn.epochs": demo_config.acnn.epochs + 1})
    assert provenance.config_hash(other) != provenance.config_hash(demo_config)


def test_changed_version_is_one_warning_line_naming_the_packages(tmp_path, demo_config, caplog) -> None:
    provenance.record(tmp_path, demo_config)
    numpy = importlib.metadata.version("numpy")
    _edit(tmp_path, numpy="2.4.0rc1", keras="3.15.0rc1")
    with caplog.at_level(logging.WARNING, logger="serlib.base.provenance"):
        provenance.record(tmp_path, demo_config)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    line = warnings[0]
    assert line.startswith(f"{tmp_path} was produced with keras 3.15.0rc1, numpy 2.4.0rc1; ")
    assert f"this environment has keras {importlib.metadata.version('keras')}, numpy {numpy}:" in line
    assert "delete the folder to recompute" in line
    stored = provenance.load(tmp_path)
    assert stored["packages"]["numpy"] == numpy  # the record now describes this environment ...
    assert stored["mixed_environments"] is True  # ... and says that the folder mixes two
    assert stored["earlier"][0]["changed_to_next"]["numpy"] == ["2.4.0rc1", numpy]
    assert "packages" not in stored["earlier"][0]["freeze"]  # only what changed is kept


def test_unchanged_environment_reruns_silently_and_keeps_no_history(tmp_path, demo_config, caplog) -> None:
    provenance.record(tmp_path, demo_config)
    with caplog.at_level(logging.WARNING, logger="serlib.base.provenance"):
        second = provenance.record(tmp_path, demo_config)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert second["earlier"] == [] and second["mixed_environments"] is False


def test_other_configuration_in_the_same_folder_is_kept_as_history(tmp_path, demo_config) -> None:
    provenance.record(tmp_path, demo_config)
    other = config_module.override(demo_config, **{"acnn.epochs": demo_config.acnn.epochs + 1})
    stored = provenance.record(tmp_path, other)
    assert stored["earlier"][0]["config"]["sha256"] == provenance.config_hash(demo_config)
    assert stored["earlier"][0]["changed_to_next"] == {} and stored["mixed_environments"] is False


def test_machine_and_thread_changes_are_drift_too(tmp_path, demo_config, caplog) -> None:
    """The faked "other machine" is derived from this host (its own values, changed), never a literal
    that could be this host: on an AVX-512 machine OpenBLAS may already run the kernels once faked (issue 31)."""
    provenance.record(tmp_path, demo_config)
    path = tmp_path / provenance.FILE_NAME
    data = json.loads(path.read_text(encoding="utf-8"))
    other_model = f"{data['machine']['cpu']['model']} (another machine)"
    other_threads = data["numerics"]["tensorflow_threads"]["intra_op"] + 7
    pool = data["numerics"]["blas"]["libraries"][-1]
    other_architecture = f"{pool['architecture']}-other"
    data["machine"]["cpu"]["model"] = other_model
    data["numerics"]["tensorflow_threads"] = {"intra_op": other_threads, "inter_op": other_threads}
    pool["architecture"] = other_architecture
    path.write_text(json.dumps(data), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="serlib.base.provenance"):
        provenance.record(tmp_path, demo_config)
    (line,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert f"CPU {other_model}" in line
    assert f"TensorFlow threads {other_threads} intra-op/{other_threads} inter-op" in line
    assert other_architecture in line


# Two pretend hosts shaped like the kinds CI and developers run on (an AMD-like one with AVX2, an
# Intel-like one with AVX-512), as cpu_info() / blas_info() describe them. Their names are made up, so
# neither can ever be the real host; the suite records and compares under each of them, so its result
# does not depend on which CPU family it runs on.
FAKE_HOSTS = {
    "amd-like-avx2": (
        {"model": "Pretend AMD-like CPU (test)", "features": ["sse4_2", "avx", "avx2", "fma", "f16c"],
         "cores_available": 2, "cores_total": 2},
        "PretendAvx2Kernels",
    ),
    "intel-like-avx512": (
        {"model": "Pretend Intel-like CPU (test)",
         "features": ["sse4_2", "avx", "avx2", "fma", "f16c", "avx512f"],
         "cores_available": 2, "cores_total": 2},
        "PretendAvx512Kernels",
    ),
}  # fmt: skip


def _pretend_host(monkeypatch, name: str) -> None:
    """Make this process describe itself as ``FAKE_HOSTS[name]`` (CPU and the BLAS kernels it picks)."""
    cpu, architecture = FAKE_HOSTS[name]
    real_blas = provenance.blas_info()

    def blas() -> dict:
        libraries = [{**pool, "architecture": architecture} for pool in real_blas["libraries"]]
        return {**real_blas, "libraries": libraries}

    monkeypatch.setattr(provenance, "cpu_info", lambda: dict(cpu))
    monkeypatch.setattr(provenance, "blas_info", blas)


@pytest.mark.parametrize("recorded_on", sorted(FAKE_HOSTS))
@pytest.mark.parametrize("checked_on", sorted(FAKE_HOSTS))
def test_drift_between_cpu_families_whatever_the_host(
    tmp_path, demo_config, caplog, monkeypatch, recorded_on, checked_on
) -> None:
    """A folder recorded on one CPU family and reused on the other reports the CPU, its instruction
    sets and the BLAS kernels as drift; reused on the same family it reports nothing, on any real host."""
    _pretend_host(monkeypatch, recorded_on)
    provenance.record(tmp_path, demo_config)
    _pretend_host(monkeypatch, checked_on)
    with caplog.at_level(logging.WARNING, logger="serlib.base.provenance"):
        stored = provenance.record(tmp_path, demo_config)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    text, differs = provenance.report(tmp_path)
    if recorded_on == checked_on:
        assert warnings == [] and stored["mixed_environments"] is False
        assert not differs and text.rstrip().endswith("this environment matches the record")
        return
    (line,) = warnings
    before, after = FAKE_HOSTS[recorded_on], FAKE_HOSTS[checked_on]
    assert f"CPU {before[0]['model']}" in line and f"CPU {after[0]['model']}" in line
    assert "CPU instruction sets" in line and "BLAS" in line
    changed = stored["earlier"][0]["changed_to_next"]
    assert changed["CPU"] == [before[0]["model"], after[0]["model"]]
    assert before[1] in changed["BLAS"][0] and after[1] in changed["BLAS"][1]
    assert stored["mixed_environments"] is True
    assert differs is False  # report() compares the record (now the second host) with the same host
    assert "this environment matches the record" in text and "earlier record 1" in text
    assert f"CPU {before[0]['model']} -> {after[0]['model']}" in text


@pytest.mark.parametrize("host", sorted(FAKE_HOSTS))
def test_serlib_provenance_names_the_cpu_family_change(
    tmp_path, demo_config, capsys, monkeypatch, host
) -> None:
    """`serlib provenance DIR` exits 1 and names CPU and BLAS when the folder came from the other family."""
    other = next(name for name in FAKE_HOSTS if name != host)
    _pretend_host(monkeypatch, other)
    provenance.record(tmp_path, demo_config)
    _pretend_host(monkeypatch, host)
    assert cli.main(["provenance", str(tmp_path)]) == 1
    printed = capsys.readouterr().out
    assert f"  CPU: {FAKE_HOSTS[other][0]['model']} -> {FAKE_HOSTS[host][0]['model']}" in printed
    assert FAKE_HOSTS[other][1] in printed and FAKE_HOSTS[host][1] in printed


def test_an_openmp_runtime_loaded_by_earlier_imports_is_not_drift(tmp_path, demo_config, caplog) -> None:
    """Whether libgomp is loaded depends on what the process imported before (scikit-learn, TensorFlow),
    not on the environment: `serlib evaluate` has it, `serlib reproduce`'s parent process has not."""
    provenance.record(tmp_path, demo_config)
    path = tmp_path / provenance.FILE_NAME
    data = json.loads(path.read_text(encoding="utf-8"))
    openmp = {"user_api": "openmp", "internal_api": "openmp", "prefix": "libiomp5", "num_threads": 2}
    data["numerics"]["blas"]["libraries"].append(openmp)
    path.write_text(json.dumps(data), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="serlib.base.provenance"):
        stored = provenance.record(tmp_path, demo_config)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert all(pool["user_api"] == "blas" for pool in stored["numerics"]["blas"]["libraries"])


def test_unreadable_record_is_replaced_and_flagged(tmp_path, demo_config, caplog) -> None:
    (tmp_path / provenance.FILE_NAME).write_text("{not json", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="serlib.base.provenance"):
        stored = provenance.record(tmp_path, demo_config)
    assert any("cannot be read as JSON" in r.getMessage() for r in caplog.records)
    assert "unreadable" in stored["earlier"][0] and stored["mixed_environments"] is True


def test_serlib_provenance_prints_the_record_and_the_difference(tmp_path, demo_config, capsys) -> None:
    provenance.record(tmp_path, demo_config)
    assert cli.main(["provenance", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert f"serlib {serlib.__version__} {_head()[:12]}" in printed
    assert f"numpy {importlib.metadata.version('numpy')}" in printed
    assert f"config demo sha256 {provenance.config_hash(demo_config)}" in printed
    assert printed.rstrip().endswith("this environment matches the record")

    _edit(tmp_path, h5py="3.13.0")
    assert cli.main(["provenance", str(tmp_path)]) == 1  # like diff: 1 when the environments differ
    printed = capsys.readouterr().out
    assert f"  h5py: 3.13.0 -> {importlib.metadata.version('h5py')}" in printed

    assert cli.main(["provenance", "--json", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["packages"]["h5py"] == "3.13.0"


def test_serlib_provenance_of_a_folder_without_record_is_a_one_line_error(tmp_path, capsys) -> None:
    assert cli.main(["provenance", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("serlib provenance: error: ") and "provenance.json does not exist" in error
    assert "serlib reproduce" in error and error.count("\n") == 1


def test_reproduce_writes_provenance_before_the_notebooks_and_warns_on_drift(
    tmp_path, monkeypatch, caplog
) -> None:
    import papermill

    seen: list[bool] = []

    def execute_notebook(source, output, **kwargs):  # the notebooks themselves are tested elsewhere
        seen.append((tmp_path / "out" / provenance.FILE_NAME).is_file())

    monkeypatch.setattr(papermill, "execute_notebook", execute_notebook)
    # Dask's Nanny writes PYTHONHASHSEED=6640 into this process' environment when it spawns a worker
    # (distributed.nanny); whether an earlier test in this process did so must not add a drift item
    monkeypatch.setenv("PYTHONHASHSEED", "6640")
    out = tmp_path / "out"
    assert reproduce.run(preset="demo", out=out) == 0
    assert seen == [True] * len(reproduce.NOTEBOOKS)
    stored = provenance.load(out)
    assert stored["config"]["sha256"] == provenance.config_hash(config_module.load(out / "config.yaml"))
    assert stored["serlib"]["commit"] == _head()

    _edit(out, **{"tensorflow-cpu": "2.21.9", "tensorflow": "2.21.9"})
    with caplog.at_level(logging.WARNING, logger="serlib.base.provenance"):
        assert reproduce.run(preset="demo", out=out, notebooks=["05"]) == 0
    (line,) = [r.getMessage() for r in caplog.records if r.name == "serlib.base.provenance"]
    assert line.startswith(f"{out} was produced with tensorflow 2.21.9, tensorflow-cpu 2.21.9; ")


def test_evaluate_writes_provenance(tmp_path, monkeypatch, capsys) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(summaries, "evaluate", lambda config: calls.append(config.output_path))
    monkeypatch.setattr(table1, "written_table", lambda folder: "table\n")
    assert cli.main(["evaluate", "--preset", "demo", "--out", str(tmp_path)]) == 0
    assert calls == [tmp_path]
    stored = provenance.load(tmp_path)
    assert stored["config"]["name"] == "demo" and stored["command"].startswith(Path(sys.argv[0]).name)


def test_table1_header_line_names_commit_and_config_hash(tmp_path, demo_config) -> None:
    config = config_module.override(demo_config, output_dir=str(tmp_path))
    grid._write_protocol(config, [1, 2], {})
    protocol = json.loads((tmp_path / "results" / "protocol.json").read_text(encoding="utf-8"))
    first_line = table1.table_markdown(protocol, pd.DataFrame()).splitlines()[0]
    assert first_line.startswith("Table 1: UAR (%) of protocol 'demo'")
    assert f"serlib {_head()[:12]}" in first_line
    assert f"config sha256 {provenance.config_hash(config)[:12]}" in first_line
    protocol.pop("provenance")  # a protocol.json written before provenance existed: caption as before
    assert table1.table_markdown(protocol, pd.DataFrame()).splitlines()[0].endswith("over its folds).")


def test_lock_state_says_whether_the_environment_is_the_lock(tmp_path) -> None:
    (tmp_path / "requirements.lock").write_text(
        "# header\nnumpy==2.4.6 \\\n    --hash=sha256:00\nkeras==3.15.1 \\\n    --hash=sha256:11\n",
        encoding="utf-8",
    )
    exact = provenance.lock_state({"numpy": "2.4.6", "keras": "3.15.1"}, root=tmp_path)
    assert exact is not None and exact["matches"] is True
    other = provenance.lock_state({"numpy": "2.4.7", "keras": "3.15.1", "rich": "14.0"}, root=tmp_path)
    assert other is not None and other["matches"] is False
    assert other["differs"] == {"numpy": {"locked": "2.4.6", "installed": "2.4.7"}}
    assert other["not_in_lock"] == ["rich"]
    assert provenance.lock_state({}, root=tmp_path / "absent") is None

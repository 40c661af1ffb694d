"""The committed notebooks are clean, and all five run headlessly with papermill on a tiny configuration."""

from __future__ import annotations

import contextlib
import io
import re
import time
from pathlib import Path

import matplotlib.image
import nbformat
import numpy as np
import pandas as pd
import pytest

from serlib.app import reproduce
from serlib.base import config as config_module
from serlib.base import config_yaml

NOTEBOOKS = sorted(reproduce.notebooks_dir().glob("*.ipynb"))


def test_the_five_notebooks_are_committed_in_order():
    assert [path.name for path in NOTEBOOKS] == list(reproduce.NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_is_clean(path: Path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.cells[0].cell_type == "markdown", "a notebook opens with what it teaches"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.outputs == [] for cell in code), f"{path.name} has outputs: clear them before committing"
    assert all(cell.execution_count is None for cell in code), f"{path.name} has execution counts"
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code"
    for name in ("preset", "config_path", "output_dir", "overrides"):
        assert f"{name} =" in tagged[0].source
    # a notebook ends with exercises for a course (04 then runs `serlib check` as its last cell)
    text = [cell for cell in notebook.cells if cell.cell_type == "markdown"]
    assert "## Exercises" in text[-1].source, "a notebook's text ends with exercises for a course"
    assert notebook.cells[-1] is text[-1] or path.name.startswith("04"), "only 04 has a cell after them"


def test_select_accepts_names_stems_and_prefixes():
    assert reproduce.select(None) == list(reproduce.NOTEBOOKS)
    assert reproduce.select(["05", "01_data_preparation"]) == [reproduce.NOTEBOOKS[0], reproduce.NOTEBOOKS[4]]
    with pytest.raises(reproduce.ReproduceError, match="does not name exactly one"):
        reproduce.select(["0"])


def tiny_config(out: Path) -> config_module.Config:
    """The demo's structure (five conditions, both settings, 1 fold, 1 seed) at seconds scale."""
    base = config_module.load_preset("demo")
    corpora = base.model_dump(mode="json")["corpora"]
    corpora["demo_talks_small"]["options"]["limit"] = 6
    return config_module.override(
        base,
        **{
            "name": "tiny",
            "output_dir": str(out),
            "figures_dir": str(out / "figures_dir"),
            "corpora": corpora,
            "demo_corpus": {
                "seed": 0,
                "labeled_sessions": 3,
                "utterances_per_speaker_emotion": 2,
                "cross_sessions": 1,
                "cross_utterances_per_speaker_emotion": 2,
                "unlabeled_talks": 2,
                "unlabeled_utterances": 10,
                "books_readers": 2,
                "books_utterances": 6,
            },
            "features.n_jobs": 1,
            "features.logmel.max_frames": 150,
            "features.spectrogram.fixed_length_s": 1.5,
            "features.spectrogram.mel_bands": 32,
            "autoencoder.layers": 1,
            "autoencoder.units": 8,
            "autoencoder.epochs": 1,
            "autoencoder.batch_size": 8,
            "acnn.filters": 8,
            "acnn.epochs": 1,
            "acnn.batch_size": 16,
            "protocol.seeds": [0],
            "protocol.n_jobs": 1,  # in this process: a Dask cluster would cost more than 10 runs this small
            "protocol.folds": [1],  # one leave-one-session-out fold: 5 + 5 ACNN runs in all
            "protocol.conditions": [
                {"name": "BL", "autoencoder_corpus": "none"},
                {"name": "C", "autoencoder_corpus": "target"},
                # One unlabeled AE shared by sT, Li and fT keeps the test in budget (each distinct AE
                # costs seconds of graph building); the demo preset trains all of them.
                {"name": "sT", "autoencoder_corpus": "demo_talks_small"},
                {"name": "Li", "autoencoder_corpus": "demo_talks_small"},
                {"name": "fT", "autoencoder_corpus": "demo_talks_small"},
            ],
            "tsne.perplexity": 5.0,
        },
    )


def _image_is_not_blank(path: Path) -> None:
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and min(image.shape[:2]) > 100
    assert float(image.std()) > 0.01, f"{path} is a blank picture"


_TINY_RUNS: dict[str, tuple[int, str, float]] = {}
_TINY_PRINTED: dict[str, str] = {}


def tiny_reproduction(base: Path) -> Path:
    """The five notebooks executed once per test process on the tiny configuration under ``base/run``
    (shared by this module's tests, the solutions and the browser test); returns the run folder."""
    out = base / "run"
    if str(out) not in _TINY_RUNS:
        config_path = config_yaml.save(tiny_config(out), base / "tiny.yaml")
        started = time.perf_counter()
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            status = reproduce.run(config_path=config_path, timeout=600)
        _TINY_RUNS[str(out)] = (status, str(config_path), time.perf_counter() - started)
        _TINY_PRINTED[str(out)] = printed.getvalue()
    status, _, _ = _TINY_RUNS[str(out)]
    assert status == 0, f"the tiny reproduction failed: {out / 'reproduce.log'}"
    return out


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_reproduction(tmp_path_factory.getbasetemp() / "tiny_notebooks")


# What a notebook may print on standard error (JupyterLab's pink box), counted: deliberate warnings only.
# None on the tiny configuration; the demo preset has one, in notebook 05 (its tsne.perplexity 20 is
# lowered for a 48-utterance test fold, and the notebook says so).
DELIBERATE_STDERR = {name: 0 for name in reproduce.NOTEBOOKS}
NOISE = re.compile(r"I0000|absl|Traceback|Logging error|^(INFO|DEBUG) ", re.MULTILINE)


def output_problems(notebook: nbformat.NotebookNode, allowed_stderr: int = 0) -> list[str]:
    """What a student should not see in an executed notebook: TensorFlow's C++ start-up lines, tracebacks,
    logging errors or INFO log lines in any stream, and more stderr outputs than ``allowed_stderr``."""
    problems, stderr = [], 0
    for number, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if output.output_type != "stream":
                continue
            stderr += output.name == "stderr"
            for match in NOISE.finditer(output.text):
                line = output.text[match.start() :].splitlines()[0]
                problems.append(f"cell {number} {output.name}: {line[:160]}")
    if stderr > allowed_stderr:
        problems.append(f"{stderr} stderr outputs, at most {allowed_stderr} deliberate ones")
    return problems


def test_output_check_catches_info_lines_and_stderr():
    planted = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "x",
                outputs=[
                    nbformat.v4.new_output(
                        "stream", name="stderr", text="INFO serlib.features.store: 240 rows from the store\n"
                    ),
                    nbformat.v4.new_output(
                        "stream", name="stdout", text="I0000 00:00:1.2 3 port.cc:153] oneDNN\n"
                    ),
                ],
            )
        ]
    )
    problems = output_problems(planted)
    assert len(problems) == 3, problems
    assert output_problems(planted, allowed_stderr=1)[-1].startswith("cell 0 stdout: I0000")


@pytest.mark.slow
def test_all_notebooks_run_with_papermill_on_a_tiny_configuration(tiny_run: Path):
    out = tiny_run
    seconds = _TINY_RUNS[str(out)][2]

    for name in reproduce.NOTEBOOKS:
        executed = nbformat.read(out / "notebooks" / name, as_version=4)
        assert any(cell.get("outputs") for cell in executed.cells if cell.cell_type == "code")
        assert output_problems(executed, DELIBERATE_STDERR[name]) == [], name
    # the terminal's last lines: Table 1's rows, then `serlib check`'s verdict, then the report's path
    printed = _TINY_PRINTED[str(out)].splitlines()
    assert printed[-1].startswith("serlib reproduce: report ") and printed[-1].endswith("index.html")
    start = next(i for i, line in enumerate(printed) if line.startswith("Table 1 ("))
    rows = [
        line for line in printed[start + 1 :] if line.startswith("| ") and not line.startswith("| Condition")
    ]
    assert [line.split("|")[1].strip() for line in rows[:5]] == ["BL", "C", "sT", "Li", "fT"]
    check_lines = printed[start + 1 : -1]
    assert any("serlib check" in line or "reference" in line for line in check_lines), check_lines[-5:]
    log_lines = (out / "logs" / "serlib.log").read_text(encoding="utf-8").splitlines()
    assert any(" INFO serlib." in line for line in log_lines), "the INFO lines belong in logs/serlib.log"
    log = (out / "reproduce.log").read_text(encoding="utf-8")
    assert log.count("status ok") == len(reproduce.NOTEBOOKS)
    assert config_module.load(out / "config.yaml").output_dir == str(out)
    assert "This run is incomplete" not in (out / "report" / "index.html").read_text(encoding="utf-8")

    table = pd.read_csv(out / "table1.csv")
    assert list(table["condition"]) == ["BL", "C", "sT", "Li", "fT"]
    assert table["within_mean"].notna().all() and table["cross_mean"].notna().all()
    markdown = (out / "table1.md").read_text(encoding="utf-8")
    assert all(f"| {name} |" in markdown for name in ("BL", "C", "sT", "Li", "fT"))

    stems = [
        "figure2_confusion",
        "figure3_tsne_acnn",
        "figure4_tsne_autoencoder",
        "tsne_acnn_speaker_gender",
        "tsne_autoencoder_speaker_gender",
    ]
    for folder in (out / "figures", out / "figures_dir"):
        for stem in stems:
            assert (folder / f"{stem}.pdf").stat().st_size > 1000
            _image_is_not_blank(folder / f"{stem}.png")
    probes = pd.read_csv(out / "tsne_probes.csv")
    assert set(probes["figure"]) == set(stems[1:])
    assert np.isfinite(probes.loc[probes["panel"] == "arousal_class", "knn_uar"]).all()
    print(f"five notebooks on the tiny configuration: {seconds:.1f} s")


def test_a_failing_notebook_is_named_with_its_cell(tmp_path: Path, capsys):
    bad = tmp_path / "bad.yaml"
    config_yaml.save(
        config_module.override(config_module.load_preset("demo"), output_dir=str(tmp_path / "run")), bad
    )
    # 05 needs the runs of 04, which do not exist in this fresh folder: it must fail, named.
    status = reproduce.run(config_path=bad, notebooks=["05"], timeout=300)
    err = capsys.readouterr().err
    assert status == 1
    assert "05_tsne_analysis.ipynb FAILED" in err and "in cell" in err and "AnalysisError" in err
    assert "status failed in cell" in (tmp_path / "run" / "reproduce.log").read_text(encoding="utf-8")
    assert "notebooks failed: 05_tsne_analysis.ipynb" in (
        tmp_path / "run" / "report" / "index.html"
    ).read_text(encoding="utf-8")


# -- solutions for teachers ---------------------------------------------------------------------------
SOLUTIONS_DIR = reproduce.notebooks_dir() / "solutions"


def _exercises(path: Path) -> list[str]:
    """The numbers of the exercises in a notebook's last Markdown cell ("1. **Title.** ..."); notebook 04
    ends with the `serlib check` code cell after it."""
    cells = nbformat.read(path, as_version=4).cells
    last = [cell for cell in cells if cell.cell_type == "markdown"][-1].source
    return re.findall(r"^(\d+)\. \*\*", last, flags=re.MULTILINE)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_exercise_has_a_worked_solution(path: Path):
    solutions = SOLUTIONS_DIR / f"{path.stem}_solutions.ipynb"
    assert solutions.is_file(), f"{path.name} has no solutions notebook {solutions}"
    notebook = nbformat.read(solutions, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code), (
        f"{solutions.name} has outputs"
    )
    assert notebook.metadata["kernelspec"]["name"] == reproduce.KERNEL_NAME
    headings = [cell.source.splitlines()[0] for cell in notebook.cells if cell.cell_type == "markdown"]
    numbers = _exercises(path)
    assert numbers, f"{path.name} lists no exercises"
    for number in numbers:
        assert any(h.startswith(f"## Exercise {number}:") for h in headings), (
            f"exercise {number} of {path.name}"
        )


@pytest.mark.slow
@pytest.mark.parametrize("name", reproduce.NOTEBOOKS, ids=lambda n: n[:2])
def test_solutions_run_with_papermill_on_the_tiny_run(tiny_run: Path, name: str, monkeypatch, tmp_path: Path):
    """Each solutions notebook, after the tiny run of the five notebooks, with that run's parameters."""
    import tempfile

    import papermill

    monkeypatch.setenv("SERLIB_PROGRESS", "lines")
    source = SOLUTIONS_DIR / name.replace(".ipynb", "_solutions.ipynb")
    executed = tmp_path / source.name
    with tempfile.TemporaryDirectory(prefix="serlib-kernel-") as sockets:
        papermill.execute_notebook(
            str(source),
            str(executed),
            parameters={"config_path": str(tiny_run.parent / "tiny.yaml"), "output_dir": str(tiny_run)},
            kernel_name=reproduce.kernel_name(),
            cwd=str(reproduce.project_root()),
            progress_bar=False,
            execution_timeout=300,
            kernel_manager_class=reproduce.ipc_kernel_manager(Path(sockets)),
        )
    assert output_problems(nbformat.read(executed, as_version=4)) == []

"""The committed notebooks are clean, and all five run headlessly with papermill on a tiny configuration."""

from __future__ import annotations

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


@pytest.mark.slow
def test_all_notebooks_run_with_papermill_on_a_tiny_configuration(tmp_path: Path, capsys):
    out = tmp_path / "run"
    config_path = config_yaml.save(tiny_config(out), tmp_path / "tiny.yaml")
    started = time.perf_counter()
    status = reproduce.run(config_path=config_path, timeout=600)
    seconds = time.perf_counter() - started
    printed = capsys.readouterr()
    assert status == 0, printed.err + printed.out

    for name in reproduce.NOTEBOOKS:
        executed = nbformat.read(out / "notebooks" / name, as_version=4)
        assert any(cell.get("outputs") for cell in executed.cells if cell.cell_type == "code")
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

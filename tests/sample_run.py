"""A synthetic run folder of ``serlib reproduce`` for the report tests (issue 18), written in a second.

It holds every file the report reads, in the formats the pipeline writes them (commented config.yaml,
reproduce.log lines, table1.csv columns, results/protocol.json, figures/*.png, tsne_probes.csv,
executed notebooks with a stream and an image output), so the report and its browser test need no
training. The numbers are invented; the layout is the real one (docs/notebooks.md).
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import matplotlib.image
import nbformat
import numpy as np
import pandas as pd

from serlib.analysis import tsne
from serlib.app import reproduce
from serlib.app.report import FIGURES
from serlib.base import config as config_module
from serlib.base import config_yaml
from serlib.protocol import conditions as protocol_conditions

SETTINGS = ("within", "cross")
STATS = ("mean", "min", "max", "std", "ci_low", "ci_high", "seeds", "folds", "delta_vs_bl", "t_p")
STATS += ("wilcoxon_p", "pooled_mean")


def _png(seed: int, size: int = 120) -> bytes:
    """A small, non-blank RGB picture (a gradient with noise) as PNG bytes."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.0, 1.0, size)
    image = np.stack([np.outer(ramp, ramp), np.outer(ramp[::-1], ramp), rng.random((size, size))], axis=-1)
    buffer = io.BytesIO()
    matplotlib.image.imsave(buffer, image, format="png")
    return buffer.getvalue()


def executed_notebook(name: str, image: bool = True) -> nbformat.NotebookNode:
    """An executed notebook as papermill leaves it: markdown, a code cell with text, one with a figure."""
    cells = [
        nbformat.v4.new_markdown_cell(f"# {name}\n\nA synthetic executed notebook for the report tests."),
        nbformat.v4.new_code_cell(
            "print('configuration sample')",
            execution_count=1,
            outputs=[nbformat.v4.new_output("stream", name="stdout", text="configuration sample\n")],
        ),
    ]
    if image:
        data = {"image/png": base64.b64encode(_png(len(name))).decode("ascii"), "text/plain": "<Figure>"}
        cells.append(
            nbformat.v4.new_code_cell(
                "plot()", execution_count=2, outputs=[nbformat.v4.new_output("display_data", data=data)]
            )
        )
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {
        "name": "serlib",
        "display_name": "Python (serlib)",
        "language": "python",
    }
    return notebook


def paper_like_config(out: Path) -> config_module.Config:
    """The paper preset (its corpora types are the paper's) with the output folder of the test."""
    return config_module.override(config_module.load_preset("paper"), output_dir=str(out))


def write_sample_run(
    out: Path,
    config: config_module.Config | None = None,
    notebooks: tuple[str, ...] = reproduce.NOTEBOOKS,
) -> Path:
    """Write a complete run of ``config`` (default: the demo preset) into ``out``; ``notebooks`` limits
    which notebooks count as executed (the others are absent, as after a run that stopped early)."""
    config = config or config_module.override(config_module.load_preset("demo"), output_dir=str(out))
    out.mkdir(parents=True, exist_ok=True)
    config_yaml.save(config, out / "config.yaml")
    (out / "notebooks").mkdir(exist_ok=True)
    log = [
        f"# 2026-01-01T10:00:00 reproduce {config.name} -> {out} (config {out / 'config.yaml'}, kernel serlib)"
    ]
    for number, name in enumerate(notebooks):
        nbformat.write(executed_notebook(name), out / "notebooks" / name)
        log.append(
            f"{name}\tstart 2026-01-01T10:0{number}:00\tend 2026-01-01T10:0{number}:30\tseconds {30.0 + number:.1f}"
            f"\tkernel_cpu_s {50.0 + number:.1f}\tstatus ok"
        )
    (out / "reproduce.log").write_text("\n".join(log) + "\n", encoding="utf-8")
    if "04_acnn_training.ipynb" not in notebooks:
        return out
    conditions = [c.name for c in config.protocol.conditions]
    within, cross = (protocol_conditions.corpora_of(config, setting) for setting in SETTINGS)
    protocol = {
        "name": config.name,
        "conditions": [c.model_dump(mode="json") for c in config.protocol.conditions],
        "baseline": conditions[0],
        "seeds": list(config.protocol.seeds),
        "settings": {
            "within": {"train_corpus": within[0], "test_corpus": within[1], "folds": [1, 2, 3]},
            "cross": {"train_corpus": cross[0], "test_corpus": cross[1], "folds": [0]},
        },
    }
    (out / "results").mkdir(exist_ok=True)
    (out / "results" / "protocol.json").write_text(json.dumps(protocol), encoding="utf-8")
    rows = []
    for index, condition in enumerate(config.protocol.conditions):
        row: dict[str, object] = {
            "condition": condition.name,
            "autoencoder_corpus": condition.autoencoder_corpus,
        }
        for setting, base in zip(SETTINGS, (60.0, 40.0), strict=True):
            values = {"mean": base + index, "min": base + index - 1, "max": base + index + 1, "std": 0.8}
            values |= {"ci_low": base + index - 2, "ci_high": base + index + 2, "seeds": 3, "folds": 3}
            values |= {
                "delta_vs_bl": float(index),
                "t_p": 0.2,
                "wilcoxon_p": 0.25,
                "pooled_mean": base + index,
            }
            row |= {f"{setting}_{key}": values[key] for key in STATS}
        rows.append(row)
    pd.DataFrame(rows).to_csv(out / "table1.csv", index=False)
    (out / "table1.md").write_text("Table 1 (synthetic)\n", encoding="utf-8")
    (out / "runs.csv").write_text("setting,condition,seed,fold,uar\n", encoding="utf-8")
    (out / "figures").mkdir(exist_ok=True)
    for number, (stem, _, notebook) in enumerate(FIGURES):
        if any(name.startswith(notebook) for name in notebooks):
            (out / "figures" / f"{stem}.png").write_bytes(_png(number))
    (out / "figures" / "figure2_confusion.csv").write_text(
        "condition,true,angry\nBL,angry,0.5\n", encoding="utf-8"
    )
    if "05_tsne_analysis.ipynb" in notebooks:
        probes = [
            {"figure": "figure3_tsne_acnn", "representation": "acnn", "panel": panel, "points": 200, "classes": 3,
             "knn_uar": 0.61, "chance": 0.333, "silhouette": 0.05, "cross_validation": "5-fold", "note": ""}
            for panel in tsne.EMOTION_PANELS
        ]  # fmt: skip
        pd.DataFrame(probes, columns=list(tsne.PROBE_COLUMNS)).to_csv(out / "tsne_probes.csv", index=False)
    return out

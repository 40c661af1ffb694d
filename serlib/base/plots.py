"""Figures shared by the protocol and the notebooks: confusion matrices (Figure 2), loss curves, and
saving as PNG + PDF atomically.

Colours come from seaborn's colour-blind-safe palettes (the sequential ``Blues`` map for
matrices, ``colorblind`` for lines); class names are spelled out and every axis is labelled.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

CLASS_NAMES = {
    "angry": "Angry",
    "happy": "Happy",
    "neutral": "Neutral",
    "sad": "Sad",
    "low": "Low",
    "medium": "Medium",
    "high": "High",
}


def _pyplot() -> Any:
    import matplotlib  # noqa: PLC0415 - the backend is chosen before pyplot loads

    if not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415 - after the backend choice above

    return plt


def class_name(label: str) -> str:
    return CLASS_NAMES.get(label, label.replace("_", " ").capitalize())


def confusion_pair(
    panels: Sequence[tuple[str, np.ndarray]],
    classes: Sequence[str],
    title: str | None = None,
) -> Any:
    """Side-by-side heatmaps of row-normalised confusion matrices (fractions), annotated in percent.

    ``panels`` are (title, matrix) pairs, e.g. [("BL: ACNN", m1), ("fT: ACNN + AE", m2)] for Figure 2.
    """
    import seaborn as sns  # noqa: PLC0415 - seaborn loads pyplot: after the backend choice

    plt = _pyplot()
    if not panels:
        raise ValueError("confusion_pair needs at least one (title, matrix) panel")
    names = [class_name(c) for c in classes]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(4.6 * len(panels) + 0.8, 4.4), squeeze=False, layout="constrained"
    )
    for index, (axis, (panel_title, matrix)) in enumerate(zip(axes[0], panels, strict=True)):
        matrix = np.asarray(matrix, dtype=float)
        if matrix.shape != (len(classes), len(classes)):
            raise ValueError(
                f"matrix of panel {panel_title!r} is {matrix.shape}, expected {len(classes)} classes"
            )
        percent = 100.0 * matrix
        sns.heatmap(
            percent,
            ax=axis,
            vmin=0,
            vmax=100,
            cmap="Blues",
            annot=np.vectorize(lambda v: f"{v:.1f}%")(percent),
            fmt="",
            square=True,
            cbar=index == len(panels) - 1,
            cbar_kws={"label": "share of the true class (%)"},
            xticklabels=names,
            yticklabels=names,
            linewidths=0.5,
            linecolor="white",
        )
        axis.set_title(panel_title)
        axis.set_xlabel("Predicted emotion")
        axis.set_ylabel("True emotion" if index == 0 else "")
        axis.tick_params(axis="y", rotation=0)
    if title:
        fig.suptitle(title)
    return fig


def loss_curve(
    histories: dict[str, Sequence[float]], title: str = "Training loss", ylabel: str = "loss"
) -> Any:
    """Loss per epoch of one or more runs (label -> values) on one axis."""
    import seaborn as sns  # noqa: PLC0415 - seaborn loads pyplot: after the backend choice

    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(6, 4), layout="constrained")
    colours = sns.color_palette("colorblind", max(1, len(histories)))
    for colour, (label, values) in zip(colours, histories.items(), strict=False):
        axis.plot(np.arange(1, len(values) + 1), values, label=label, color=colour)
    axis.set_xlabel("Epoch")
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    if len(histories) > 1:
        axis.legend(frameon=False)
    return fig


def save_figure(fig: Any, stem: str, folders: Iterable[str | os.PathLike[str]], dpi: int = 150) -> list[Path]:
    """Write ``<folder>/<stem>.png`` and ``.pdf`` in every folder (temp file, then rename)."""
    written = []
    for folder in (Path(f) for f in folders):
        folder.mkdir(parents=True, exist_ok=True)
        for suffix in ("png", "pdf"):
            path = folder / f"{stem}.{suffix}"
            tmp = folder / f".{stem}.tmp{os.getpid()}.{suffix}"
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=suffix)
            os.replace(tmp, path)
            written.append(path)
    return written


def close(fig: Any) -> None:
    """Release a figure's memory (many runs in one process)."""
    _pyplot().close(fig)


def figure_folders(config: Any) -> list[Path]:
    """Where figures go: ``<output_dir>/figures`` and ``config.figures_dir`` (once if they coincide)."""
    folders = [config.output_path / "figures", Path(config.figures_dir)]
    unique: list[Path] = []
    for folder in folders:
        if all(folder.resolve() != other.resolve() for other in unique):
            unique.append(folder)
    return unique

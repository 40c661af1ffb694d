"""The five notebooks of the reproduction, in the paper's order, and where they live.

Shared by ``reproduce`` (which executes them) and ``report`` (which renders them), so neither imports
the other's machinery.
"""

from __future__ import annotations

from pathlib import Path

NOTEBOOKS = (
    "01_data_preparation.ipynb",
    "02_autoencoder_training.ipynb",
    "03_representation_generation.ipynb",
    "04_acnn_training.ipynb",
    "05_tsne_analysis.ipynb",
)


def notebooks_dir() -> Path:
    """The ``notebooks/`` folder of the serlib checkout (serlib is installed in editable mode)."""
    return Path(__file__).resolve().parents[2] / "notebooks"

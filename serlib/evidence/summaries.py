"""The protocol's runs, then the tables made from them: runs.csv, Table 1, Figure 2, the comparisons.

``protocol.grid.run_protocol`` trains and writes the run folders and ``results/protocol.json``; the
protocol layer does not import this one, so the summary is passed in: ``evaluate`` hands it
``write_summaries``, which it calls under the folder's protocol lock, beside the protocol.json the tables
describe. ``serlib evaluate``, notebook 04, ``matrix`` and ``sensitivity`` call ``evaluate``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from serlib.base import plots
from serlib.base.config import Config
from serlib.evidence import comparisons, table1
from serlib.protocol import grid


def write_summaries(config: Config) -> pd.DataFrame:
    """runs.csv, Table 1 (CSV and Markdown), Figure 2 and the paired comparisons of ``config``'s output
    folder; returns Table 1. The caller holds the folder's protocol lock (``grid.run_protocol`` does)."""
    table = table1.summarise(
        config.output_dir, write_figures=True, figure_folders=plots.figure_folders(config)
    )
    # paired over (fold, seed), with its minimal detectable difference
    comparisons.write_comparisons(config.output_dir)
    return table


def evaluate(
    config: Config,
    n_jobs: int | None = None,
    progress: bool = True,
    client: Any = None,
) -> pd.DataFrame:
    """Run every unfinished run of the protocol (``grid.run_protocol``: serial, or on Dask with ``n_jobs``
    or ``client``), then write runs.csv, Table 1, Figure 2 and the comparisons; returns Table 1."""
    return grid.run_protocol(
        config, n_jobs=n_jobs, progress=progress, client=client, summarise=write_summaries
    )

"""The paper's Table 1 is written once in the package: serlib/references/paper.csv (issue 43, item 2)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import serlib
from serlib.evidence.references import paper_table1, references_dir

PACKAGE = Path(serlib.__file__).parent
SOURCE_SUFFIXES = {".py", ".yaml", ".j2", ".json", ".conf"}


def _paper_values() -> set[str]:
    frame = pd.read_csv(references_dir() / "paper.csv")
    return {f"{value:.2f}" for value in frame[["mean", "min", "max"]].to_numpy().ravel()}


def test_no_paper_table1_value_is_written_a_second_time_in_the_package():
    values = _paper_values()
    assert len(values) == 30  # 10 cells x mean/min/max, all distinct at two decimals
    paper_files = {references_dir() / "paper.csv", references_dir() / "paper.json"}
    found = [
        (path.relative_to(PACKAGE).as_posix(), value)
        for path in sorted(PACKAGE.rglob("*"))
        if path.suffix in SOURCE_SUFFIXES and path not in paper_files and path.is_file()
        for value in values
        if value in path.read_text(encoding="utf-8", errors="replace")
    ]
    assert found == [], f"the paper's Table 1 values belong in serlib/references/paper.csv only: {found}"


def test_the_report_reads_the_paper_table_from_the_reference():
    table = paper_table1()
    assert sorted(table) == ["BL", "C", "Li", "fT", "sT"]
    assert table["fT"]["cross"] == (45.76, 45.02, 46.69) and table["BL"]["within"][0] == 58.03

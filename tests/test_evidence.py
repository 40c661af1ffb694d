"""``serlib evidence`` (serlib.app.evidence): the report's generated blocks rendered from results
folders, and ``--check`` failing on one changed digit, naming the block, the line and the number."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from stored_runs import write_grid, write_matrix_cells

from serlib.app import cli, evidence
from serlib.evidence import export, results_folder

ROOT = Path(__file__).resolve().parents[1]

DOCUMENT = """# A report

Pooled: <!-- evidence:pooled family.yaml estimate +.2f -->?<!-- /evidence --> points, HKSJ 95 % CI
[<!-- evidence:pooled family.yaml hksj_ci_low +.2f -->?<!-- /evidence -->,
<!-- evidence:pooled family.yaml hksj_ci_high +.2f -->?<!-- /evidence -->]; x's U - BL:
<!-- evidence:member family.yaml x:within:U:all mean_difference +.2f -->?<!-- /evidence -->.

<!-- evidence:pool family.yaml -->
<!-- /evidence -->

<!-- evidence:table1 x -->
<!-- /evidence -->
"""


@pytest.fixture
def results(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv(results_folder.CACHE_VARIABLE, str(tmp_path / "cache"))
    config = tmp_path / "grid.yaml"
    config.write_text("name: fixture\n", encoding="utf-8")
    for i, (name, gain) in enumerate((("x", 0.8), ("y", 0.6), ("z", 0.55))):
        table = write_grid(
            tmp_path / "runs" / name,
            name,
            {1: ["a", "b"], 2: ["c"], 3: ["d"]},
            {"BL": {s: 0.5 for s in "abcd"}, "U": {s: gain for s in "abcd"}, "C": {s: 0.5 for s in "abcd"}},
            rng_seed=i,
        )
        export.export(tmp_path / "runs" / name, tmp_path / "results" / name, table, config)
    members = [
        {"folder": name, "comparison": f"{c} - BL", "role": "AE" if c == "U" else "control"}
        for name in ("x", "y", "z")
        for c in ("U", "C")
    ]
    (tmp_path / "results" / "family.yaml").write_text(yaml.safe_dump({"members": members}), encoding="utf-8")
    return tmp_path / "results"


def test_rendered_blocks_check_clean_and_one_changed_digit_fails_naming_it(results, tmp_path, capsys) -> None:
    document = tmp_path / "report.md"
    document.write_text(DOCUMENT, encoding="utf-8")
    assert cli.main(["evidence", str(document), "--results", str(results)]) == 0
    text = document.read_text(encoding="utf-8")
    assert "?" not in text and "Holm" in text and "HKSJ" in text and "Table 1" in text
    assert cli.main(["evidence", str(document), "--results", str(results), "--check"]) == 0
    capsys.readouterr()
    # change one digit of one generated number, in the HKSJ interval's upper end
    start = text.index("hksj_ci_high +.2f -->") + len("hksj_ci_high +.2f -->")
    digit = next(i for i in range(start, start + 10) if text[i].isdigit())
    changed = text[:digit] + str((int(text[digit]) + 1) % 10) + text[digit + 1 :]
    document.write_text(changed, encoding="utf-8")
    assert cli.main(["evidence", str(document), "--results", str(results), "--check"]) == 1
    out = capsys.readouterr().out
    line = changed.count("\n", 0, digit) + 1
    assert f"report.md:{line}: block 'evidence:pooled family.yaml hksj_ci_high +.2f' differs" in out
    assert document.read_text(encoding="utf-8") == changed  # --check writes nothing
    # a digit inside the generated family table is named with its line and value
    row = text.index("| y: y (within) |")
    cell = text.index("| +", row) + 3
    changed = text[:cell] + str((int(text[cell]) + 1) % 10) + text[cell + 1 :]
    document.write_text(changed, encoding="utf-8")
    assert cli.main(["evidence", str(document), "--results", str(results), "--check"]) == 1
    out = capsys.readouterr().out
    assert f"report.md:{changed.count(chr(10), 0, cell) + 1}: block 'evidence:pool family.yaml'" in out
    assert "(results/ give" in out


def test_a_block_naming_a_missing_results_folder_is_an_error(results, tmp_path) -> None:
    document = tmp_path / "report.md"
    document.write_text("<!-- evidence:table1 nowhere -->\n<!-- /evidence -->\n", encoding="utf-8")
    with pytest.raises(ValueError, match="nowhere"):
        evidence.update([document], results, check=True)
    document.write_text("<!-- evidence:median family.yaml -->\n<!-- /evidence -->\n", encoding="utf-8")
    with pytest.raises(evidence.EvidenceError, match="unknown kind 'median'"):
        evidence.update([document], results, check=True)


def test_the_reports_generated_blocks_match_the_committed_results() -> None:
    # what CI runs on a fresh clone: no corpus, no training; every wired block of the report and the
    # README regenerated from results/ and compared
    documents = [ROOT / "docs" / "results-real-speech.md", ROOT / "README.md"]
    assert evidence.update(documents, ROOT / "results", check=True) == []


def test_one_changed_digit_in_a_copy_of_the_report_fails_naming_it(tmp_path) -> None:
    report = (ROOT / "docs" / "results-real-speech.md").read_text(encoding="utf-8")
    blocks = [m for m in evidence.BLOCK.finditer(report) if evidence.NUMBER.search(m.group("body"))]
    if not blocks:
        pytest.skip("no generated block is wired into the report yet (results/README.md: how to wire one)")
    body = blocks[0]
    digit = body.start("body") + evidence.NUMBER.search(body.group("body")).start()
    while not report[digit].isdigit():
        digit += 1
    copy = tmp_path / "results-real-speech.md"
    copy.write_text(
        report[:digit] + str((int(report[digit]) + 1) % 10) + report[digit + 1 :], encoding="utf-8"
    )
    problems = evidence.update([copy], ROOT / "results", check=True)
    assert len(problems) == 1 and f"block 'evidence:{body.group('spec').strip()}' differs" in problems[0]


def test_a_members_block_shows_the_exported_part_of_a_family_without_holm(results, tmp_path) -> None:
    document = tmp_path / "report.md"
    document.write_text(
        "<!-- evidence:members family.yaml@x,y -->\n<!-- /evidence -->\n"
        "x U: <!-- evidence:member family.yaml@x,y x:within:U:all mean_difference +.2f -->?<!-- /evidence -->\n",
        encoding="utf-8",
    )
    evidence.update([document], results)
    text = document.read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| x") or line.startswith("| y")]
    assert len(rows) == 4 and not any(line.startswith("| z") for line in text.splitlines())
    assert "Holm" not in text and "(unadjusted)" in text
    # the restricted family's rows are the full family's rows for those members
    full = evidence.Renderer(results).pool("family.yaml").family
    x_u = full[(full["condition"] == "U") & full["folder"].str.endswith("/x")].iloc[0]
    assert f"mean_difference +.2f -->{x_u['mean_difference']:+.2f}<!-- /evidence -->" in text
    document.write_text("<!-- evidence:members family.yaml@x,w -->\n<!-- /evidence -->\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no member of .*family.yaml has this folder"):
        evidence.update([document], results, check=True)


def test_a_speakers_block_reads_the_speaker_level_test_of_a_folder_outside_the_family(
    results, tmp_path
) -> None:
    document = tmp_path / "report.md"
    spec = "speakers x:within:U:all mean_difference +.2f"
    document.write_text(f"<!-- evidence:{spec} -->?<!-- /evidence -->\n", encoding="utf-8")
    evidence.update([document], results)
    full = evidence.Renderer(results).pool("family.yaml").family
    x_u = full[(full["condition"] == "U") & full["folder"].str.endswith("/x")].iloc[0]
    assert (
        document.read_text(encoding="utf-8")
        == f"<!-- evidence:{spec} -->{x_u['mean_difference']:+.2f}<!-- /evidence -->\n"
    )
    document.write_text(
        "<!-- evidence:speakers x:cross:U:all mdd .2f -->?<!-- /evidence -->\n", encoding="utf-8"
    )
    with pytest.raises(ValueError, match="x"):
        evidence.update([document], results, check=True)


def test_uar_and_margin_blocks_read_the_cells_that_serlib_table_prints(results, tmp_path) -> None:
    document = tmp_path / "report.md"
    document.write_text(
        "BL <!-- evidence:uar x within BL mean .2f -->?<!-- /evidence -->, U <!-- evidence:uar x within U "
        "mean .2f -->?<!-- /evidence -->, U - BL <!-- evidence:margin x within U BL +.2f -->?<!-- /evidence -->\n"
        "<!-- evidence:table1 x -->\n<!-- /evidence -->\n",
        encoding="utf-8",
    )
    evidence.update([document], results)
    text = document.read_text(encoding="utf-8")
    values = [float(m.group("body")) for m in evidence.BLOCK.finditer(text.splitlines()[0])]
    rows: dict[str, str] = {}  # the first table's rows: Table 1 (condition, within mean, ...)
    for line in text.splitlines():
        if line.startswith("| BL |") or line.startswith("| U |"):
            rows.setdefault(line.split("|")[1].strip(), line.split("|")[2].strip())
    assert values[:2] == [float(rows["BL"]), float(rows["U"])]  # Table 1's within mean column
    assert values[1] > values[0] + 20  # x's U is right far more often than its BL
    assert values[2] == pytest.approx(values[1] - values[0], abs=0.011)
    document.write_text("<!-- evidence:uar x within SVM mean .2f -->?<!-- /evidence -->\n", encoding="utf-8")
    with pytest.raises(evidence.EvidenceError, match="no Table 1 cell within SVM mean"):
        evidence.update([document], results, check=True)


def test_matrix_and_cell_blocks_show_the_exported_cells(tmp_path, monkeypatch) -> None:
    from serlib.evidence import matrix

    monkeypatch.setenv(results_folder.CACHE_VARIABLE, str(tmp_path / "cache"))
    speakers = write_matrix_cells(tmp_path / "runs", {"train": 0.6, "speaker": 0.9}, ("BL", "U"))
    config = tmp_path / "grid.yaml"
    config.write_text("name: matrix\n", encoding="utf-8")
    export.export_tree(tmp_path / "runs", tmp_path / "results" / "m", speakers, config)
    document = tmp_path / "report.md"
    document.write_text(
        "U: <!-- evidence:cell m speaker U x y .1f -->?<!-- /evidence -->\n"
        "<!-- evidence:matrix m x,y speaker -->\n<!-- /evidence -->\n",
        encoding="utf-8",
    )
    evidence.update([document], tmp_path / "results")
    text = document.read_text(encoding="utf-8")
    cells = matrix.collect_tree(tmp_path / "results" / "m").set_index(["normalisation", "condition"])
    assert f"-->{cells.loc[('speaker', 'U'), 'mean']:.1f}<!--" in text
    assert "normalisation `speaker`" in text and "normalisation `train`" not in text
    assert text.index("**BL**") < text.index("**U**")  # the baseline's grid first
    assert f"| x | – | {cells.loc[('speaker', 'BL'), 'mean']:.1f} |" in text
    document.write_text("<!-- evidence:cell m corpus U x y -->?<!-- /evidence -->\n", encoding="utf-8")
    with pytest.raises(evidence.EvidenceError, match="no matrix cell corpus U x -> y"):
        evidence.update([document], tmp_path / "results", check=True)

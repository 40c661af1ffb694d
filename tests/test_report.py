"""The reproduction report (issue 18): what ``<out>/report/`` holds, built from a synthetic run folder
(tests/sample_run.py) in seconds; the browser checks of the same page are in tests/test_browser.py."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from sample_run import executed_notebook, paper_like_config, write_sample_run

from serlib.app import cli, report, reproduce
from serlib.base import config as config_module
from serlib.base import config_yaml


class _Links(HTMLParser):
    """Every href/src of a page, the text of each table by id, and whether any script is loaded."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []
        self.scripts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.targets += [v for k, v in values.items() if k in ("href", "src") and v]
        if tag == "script" and values.get("src"):
            self.scripts.append(values["src"] or "")


def _links(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def _table_rows(page: str, table_id: str) -> list[str]:
    body = re.search(rf"<table id='{table_id}'>.*?<tbody>(.*?)</tbody>", page, re.S)
    assert body is not None, f"no table {table_id}"
    return re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)


def test_report_of_a_complete_run_is_self_contained(tmp_path: Path) -> None:
    out = write_sample_run(tmp_path / "run")
    (out / "table1_with_svm.md").write_text("Table 1 with the eGeMAPS + SVM row\n", encoding="utf-8")
    built = report.build(out)
    assert built.complete and built.index == out / "report" / "index.html"
    page = built.index.read_text(encoding="utf-8")
    assert "href='files/table1_with_svm.md'" in page and "href='files/figure2_confusion.csv'" in page
    assert len(_table_rows(page, "table1")) == 5
    assert "demo_emotion (within, LOSO)" in page and "demo_cross (cross, from demo_emotion)" in page
    links = _links(built.index)
    for target in links.targets:
        # relative links only, each to a file inside the report folder (or an anchor)
        assert not target.startswith(("/", "file:", "http:", "https:")), target
        assert str(tmp_path) not in target
        if not target.startswith("#"):
            assert (built.index.parent / target).is_file(), f"{target} is linked but not in the report"
    pages = [t for t in links.targets if t.startswith("notebooks/")]
    assert pages == [f"notebooks/{Path(name).stem}.html" for name in reproduce.NOTEBOOKS]
    figures = {t for t in links.targets if t.startswith("figures/")}
    assert figures == {f"figures/{stem}.png" for stem, _, _ in report.FIGURES}
    assert len(_table_rows(page, "probes")) == 3
    assert "<script" not in page
    for name in pages:  # the rendered notebooks: outputs inline, no script from a CDN
        rendered = built.index.parent / name
        text = rendered.read_text(encoding="utf-8")
        assert "data:image/png;base64," in text and "configuration sample" in text
        assert _links(rendered).scripts == [], f"{name} loads scripts"
        assert "../index.html" in _links(rendered).targets, f"{name} has no way back to the report"


def test_configuration_departures_carry_the_presets_reasons(tmp_path: Path) -> None:
    rows = {d.key: d for d in report.departures(config_module.load_preset("demo"))}
    assert rows["acnn.epochs"].value == 15 and rows["acnn.epochs"].paper == 100
    assert rows["acnn.epochs"].reason == "minutes on 2 cores"  # its comment in serlib/presets/demo.yaml
    assert "protocol.conditions" in rows and "acnn.filters" in rows and "acnn.pool_size" not in rows
    assert report.departures(config_module.load_preset("paper")) == []
    page = report.build(write_sample_run(tmp_path / "run")).index.read_text(encoding="utf-8")
    departures = _table_rows(page, "departures")
    assert len(departures) == len(report.departures(config_module.load(tmp_path / "run" / "config.yaml")))
    assert any("acnn.epochs" in row and "minutes on 2 cores" in row for row in departures)


def test_paper_numbers_only_beside_the_papers_corpora(tmp_path: Path) -> None:
    paper_run = write_sample_run(tmp_path / "paper", paper_like_config(tmp_path / "paper"))
    page = report.build(paper_run).index.read_text(encoding="utf-8")
    rows = _table_rows(page, "table1")
    bl = next(row for row in rows if "<th>BL</th>" in row)
    # BL within 58.03/56.78/59.12 and cross 42.99/42.19/44.14, as in the paper's Table 1
    for number in ("58.03", "56.78", "59.12", "42.99", "42.19", "44.14"):
        assert f"<td class='paper'>{number}</td>" in bl
    assert "paper (IEMOCAP)" in page and "paper (MSP-IMPROV)" in page

    demo_page = report.build(write_sample_run(tmp_path / "demo")).index.read_text(encoding="utf-8")
    assert "class='paper'" not in demo_page.split("<table id='table1'>")[1].split("</table>")[0]
    assert "The paper's numbers are not shown" in demo_page and "demo_emotion" in demo_page

    # a paper-corpora run whose "Li" learnt from TED-LIUM is not compared with the paper's Li row
    config = paper_like_config(tmp_path / "renamed")
    conditions = [c.model_dump() for c in config.protocol.conditions]
    conditions[3]["autoencoder_corpus"] = "tedlium_small"
    config = config_module.override(config, **{"protocol.conditions": conditions})
    rows = _table_rows(
        report.build(write_sample_run(tmp_path / "renamed", config)).index.read_text("utf-8"), "table1"
    )
    li = next(row for row in rows if "<th>Li</th>" in row)
    assert "59.05" not in li and li.count("<td class='paper'>–</td>") == 6


def test_an_incomplete_run_names_its_missing_notebooks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = write_sample_run(tmp_path / "run", notebooks=reproduce.NOTEBOOKS[:3])
    built = report.build(out)
    assert built.missing == ["04_acnn_training.ipynb", "05_tsne_analysis.ipynb"] and not built.complete
    page = built.index.read_text(encoding="utf-8")
    assert "This run is incomplete" in page and "notebooks not run: 04_acnn_training.ipynb" in page
    assert "Missing: table1.csv (written by notebook 04" in page
    assert "Missing: figures/figure3_tsne_acnn.png (written by notebook 05" in page
    assert cli.main(["report", str(out)]) == 1
    err = capsys.readouterr().err
    assert "incomplete" in err and "04_acnn_training.ipynb, 05_tsne_analysis.ipynb" in err


def test_a_failed_notebook_is_reported_with_its_page(tmp_path: Path) -> None:
    out = write_sample_run(tmp_path / "run")
    log = out / "reproduce.log"
    log.write_text(
        log.read_text(encoding="utf-8")
        + "05_tsne_analysis.ipynb\tstart 2026-01-02T10:00:00\tseconds 3.0\tstatus failed in cell 4: AnalysisError\n",
        encoding="utf-8",
    )
    built = report.build(out)
    assert built.failed == ["05_tsne_analysis.ipynb"] and built.missing == []
    page = built.index.read_text(encoding="utf-8")
    assert "failed in cell 4: AnalysisError" in page and "notebooks/05_tsne_analysis.html" in page


def test_not_a_run_folder_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(report.ReportError, match="serlib reproduce --out"):
        report.build(tmp_path)
    assert cli.main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("serlib report: error:") and str(tmp_path) in err and "\n" not in err


def test_rebuilding_replaces_the_report_whole(tmp_path: Path) -> None:
    out = write_sample_run(tmp_path / "run")
    report.build(out)
    (out / "report" / "stale.txt").write_text("from an older report", encoding="utf-8")
    (out / "figures" / "figure4_tsne_autoencoder.png").unlink()
    built = report.build(out)
    assert not (out / "report" / "stale.txt").exists()
    assert not (out / "report" / "figures" / "figure4_tsne_autoencoder.png").exists()
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no staging left
    assert "Missing: figures/figure4_tsne_autoencoder.png" in built.index.read_text(encoding="utf-8")


def test_provenance_json_is_shown_else_facts_are_computed(tmp_path: Path) -> None:
    out = write_sample_run(tmp_path / "run")
    page = report.build(out).index.read_text(encoding="utf-8")
    facts = report.machine_facts()
    assert facts["cpu_cores"] and facts["python"] and "serlib" in facts["packages"]
    assert "the run folder has no provenance.json" in page and "packages.keras" in page
    (out / "provenance.json").write_text(
        json.dumps({"git": {"commit": "abc123"}, "cpu": "Test CPU"}), "utf-8"
    )
    page = report.build(out).index.read_text(encoding="utf-8")
    assert "<code>git.commit</code></td><td>abc123" in page and "files/provenance.json" in page
    assert (out / "report" / "files" / "provenance.json").is_file()


def test_reproduce_ends_by_writing_the_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """serlib reproduce writes the report after the notebooks (papermill replaced by a stand-in that
    writes an executed notebook, so no kernel runs)."""
    import papermill

    def execute_notebook(source: str, output: str, **_: object) -> None:
        nbformat.write(executed_notebook(Path(source).name), output)

    monkeypatch.setattr(papermill, "execute_notebook", execute_notebook)
    config_path = config_yaml.save(
        config_module.override(config_module.load_preset("demo"), output_dir=str(tmp_path / "run")),
        tmp_path / "demo.yaml",
    )
    assert reproduce.run(config_path=config_path) == 0
    page = (tmp_path / "run" / "report" / "index.html").read_text(encoding="utf-8")
    assert page.count("<span class='ok'>ok</span>") == len(reproduce.NOTEBOOKS)
    assert "Missing: table1.csv" in page  # the stand-in notebooks computed nothing


def test_tables_escape_their_headers_and_the_page_is_a_template(tmp_path: Path) -> None:
    """Table headers come from data (a CSV's columns): they are escaped like every other value, by the
    jinja2 templates of serlib/app/templates (autoescape); only a template's own output passes as HTML."""
    from serlib.app import report_html

    html = report_html.render("section_probes.html.j2", columns=["<script>alert(1)</script>", "plain"],
                              rows=[["<b>not kept</b>", "x"]])  # fmt: skip
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<td>&lt;b&gt;not kept&lt;/b&gt;</td>" in html  # cells are text, escaped like the headers
    section = report_html.render("section_intro.html.j2", incomplete="", built="today")
    page = report._page("<Title & co>", [section])
    assert "<title>&lt;Title &amp; co&gt;</title>" in page and "Neumann &amp; Vu, <i>Improving" in page
    assert (
        page.startswith("<!DOCTYPE html>") and "<style>" in page and "&#34;" not in page.split("</style>")[0]
    )


def test_text_of_the_run_is_escaped_in_every_section(tmp_path: Path) -> None:
    """Text from the run folder (the configuration's name, a notebook's status and times in reproduce.log,
    provenance.json, a CSV's columns and cells) reaches the page escaped in each section that shows it:
    a raw ``<script>`` never appears, its escaped form does."""
    nasty = "<script>alert(1)</script> & co"
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"
    run = tmp_path / "run"
    config = config_module.override(config_module.load_preset("demo"), name=nasty, output_dir=str(run))
    out = write_sample_run(run, config)
    log = out / "reproduce.log"
    log.write_text(
        log.read_text(encoding="utf-8") + f"05_tsne_analysis.ipynb\tstart {nasty}\tstatus failed: {nasty}\n",
        encoding="utf-8",
    )
    (out / "provenance.json").write_text(json.dumps({"cpu": nasty, nasty: "value"}), encoding="utf-8")
    table = pd.read_csv(out / "table1.csv")
    table["autoencoder_corpus"] = nasty
    table.to_csv(out / "table1.csv", index=False)
    probes = pd.read_csv(out / "tsne_probes.csv").rename(columns={"note": nasty})
    probes[nasty] = nasty
    probes.to_csv(out / "tsne_probes.csv", index=False)
    page = report.build(out).index.read_text(encoding="utf-8")
    assert "<script" not in page and "alert(1)</script>" not in page
    sections = {
        "title": page.split("<body>")[0],
        "configuration": page.split("<h2 id='configuration'>")[1].split("<h2")[0],
        "table1": page.split("<table id='table1'>")[1].split("</table>")[0],
        "probe table headers": page.split("<table id='probes'><thead>")[1].split("</thead>")[0],
        "probe table cells": page.split("<table id='probes'>")[1].split("</table>")[0].split("<tbody>")[1],
        "notebooks": page.split("<h2 id='notebooks'>")[1].split("<h2")[0],
        "provenance": page.split("<h2 id='provenance'>")[1],
    }
    for name, text in sections.items():
        assert escaped in text, f"the {name} does not show the escaped text"
    assert f"<b>{escaped}</b>" in sections["configuration"]  # the name, and the departure of `name`:
    assert f"<code>&#34;{escaped}&#34;</code>" in sections["configuration"]
    assert f"<span class='bad'>failed: {escaped}</span>" in sections["notebooks"]
    assert f"<code>{escaped}</code></td><td>value</td>" in sections["provenance"]
    assert f"<code>cpu</code></td><td>{escaped}</td>" in sections["provenance"]
    assert "This run is incomplete</b>: notebooks failed: 05_tsne_analysis.ipynb." in page

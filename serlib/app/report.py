"""The reproduction report: ``<out>/report/index.html``, one static page per run folder.

A finished ``serlib reproduce`` leaves executed notebooks, CSV, Markdown and PNG files that one would
open one by one; the report puts what a reader (a class, a reviewer) needs on one page that opens from
disk and works offline: the configuration and how it departs from the paper preset, Table 1 beside the
paper's numbers (only where the corpora are the paper's), Figures 2-4 with the t-SNE probe table, each
notebook's run time, the machine, versions and git commit, and every executed notebook rendered as HTML.

Self-contained on purpose: figures and small result files are copied next to ``index.html`` and every
link is relative, so the folder can be zipped or served anywhere; the rendered notebooks carry no
script from a CDN (MathJax, RequireJS and widget managers are left out; the notebooks hold no math).
The folder is built beside the run and swapped in at the end, so a reader never sees half a report.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import jinja2
import nbformat
import pandas as pd
from nbconvert import HTMLExporter
from pydantic import BaseModel

from serlib.app.notebooks import NOTEBOOKS
from serlib.app.report_check import check_section
from serlib.app.report_html import Markup, _e, _number, _table, _value, render
from serlib.base import config as config_module
from serlib.base import config_yaml, metrics

REPORT_DIR = "report"
# Neumann & Vu (2019), Table 1: UAR (%) mean/min/max over ten seeds; within = IEMOCAP, 5-fold
# leave-one-session-out; cross = trained on IEMOCAP, tested on MSP-IMPROV.
PAPER_TABLE1: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "BL": ((58.03, 56.78, 59.12), (42.99, 42.19, 44.14)),
    "C": ((58.07, 56.56, 59.68), (42.37, 41.20, 43.37)),
    "sT": ((58.85, 57.01, 60.10), (45.21, 43.74, 46.78)),
    "Li": ((59.05, 57.89, 60.18), (44.82, 42.98, 46.33)),
    "fT": ((59.54, 58.16, 60.15), (45.76, 45.02, 46.69)),
}
# The corpus type each paper condition's autoencoder learnt from ('none' = no AE, 'target' = control C).
PAPER_AUTOENCODER_TYPES = {
    "BL": "none",
    "C": "target",
    "sT": "tedlium2",
    "Li": "librispeech",
    "fT": "tedlium2",
}
PAPER_CORPUS_TYPES = {
    "within_corpus": "iemocap",
    "cross_corpus_train": "iemocap",
    "cross_corpus_test": "msp_improv",
}
# (file stem in <out>/figures, caption, notebook that writes it)
FIGURES = (
    (
        "figure2_confusion",
        "Figure 2: mean confusion matrices over seeds, BL vs the ACNN + AE condition",
        "04",
    ),
    ("figure3_tsne_acnn", "Figure 3: t-SNE of the ACNN's last hidden layer", "05"),
    ("figure4_tsne_autoencoder", "Figure 4: t-SNE of the autoencoder representation", "05"),
    ("tsne_acnn_speaker_gender", "Beyond the paper: ACNN hidden layer by speaker and gender", "05"),
    ("tsne_autoencoder_speaker_gender", "Beyond the paper: AE representation by speaker and gender", "05"),
)
# Small result files copied into report/files/ so the report travels without the run folder.
FILES = tuple(
    "config.yaml reproduce.log provenance.json table1.csv table1.md runs.csv tsne_probes.csv table1_with_svm.md "
    "figures/figure2_confusion.csv".split()
)
PACKAGES = tuple(
    "tensorflow tensorflow-cpu keras numpy pandas scikit-learn opensmile papermill nbconvert jupyterlab "
    "ipykernel".split()
)
STAT_COLUMNS = ("seeds", "folds", "ci_low", "ci_high", "delta_vs_bl", "t_p", "wilcoxon_p", "pooled_mean")
_OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block body_header -%}{{ super() }}<p><a href="../index.html">&larr; reproduction report</a></p>{%- endblock body_header -%}
"""  # noqa: E501 - a jinja2 template: a line break inside the block would change the page


class ReportError(ValueError):
    """The report cannot be built (not a run folder); the message names the folder and the fix."""


@dataclass
class NotebookRun:
    """One notebook of the run: its latest line in reproduce.log and its rendered page (if executed)."""

    name: str
    status: str = "not run"
    start: str = ""
    end: str = ""
    seconds: float | None = None
    kernel_cpu_s: float | None = None
    page: str | None = None  # relative link to the rendered HTML

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class Report:
    """What ``build`` wrote: the page, and the notebooks that did not run or failed (empty = complete)."""

    index: Path
    missing: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing and not self.failed

    def incomplete_message(self) -> str:
        parts = []
        if self.missing:
            parts.append(f"notebooks not run: {', '.join(self.missing)}")
        if self.failed:
            parts.append(f"notebooks failed: {', '.join(self.failed)}")
        return "; ".join(parts)


@dataclass
class Departure:
    """A configuration value that differs from the paper preset, with why (as in ``config.yaml``)."""

    key: str
    value: Any
    paper: Any
    reason: str
    description: str


# -- reading a run folder ----------------------------------------------------------------------------
def read_log(path: Path) -> dict[str, NotebookRun]:
    """The latest line of each notebook in ``reproduce.log`` (later invocations append and win)."""
    runs: dict[str, NotebookRun] = {}
    if not path.is_file():
        return runs
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        name, *fields = line.split("\t")
        run = NotebookRun(name)
        for item in fields:
            key, _, value = item.partition(" ")
            if key in ("start", "end", "status"):
                setattr(run, key, value)
            elif key in ("seconds", "kernel_cpu_s"):
                setattr(run, key, float(value) if value.replace(".", "", 1).isdigit() else None)
        runs[name] = run
    return runs


def departures(config: config_module.Config) -> list[Departure]:
    """Every value that differs from the paper preset, compared field by field like ``config.dumps``
    (sections recurse; a dict or list departs as a whole), with the preset's reason: the comment of the
    key in its hand-written YAML (``serlib/presets/<name>.yaml``)."""
    preset = config_module.PRESETS_DIR / f"{config.name}.yaml"
    reasons = config_yaml.comments(preset) if config.name in config_module.PRESETS else {}
    rows: list[Departure] = []

    def walk(model: BaseModel, paper: BaseModel, prefix: str) -> None:
        data, paper_data = model.model_dump(mode="json"), paper.model_dump(mode="json")
        for name, spec in type(model).model_fields.items():
            value = getattr(model, name)
            if isinstance(value, BaseModel):
                walk(value, getattr(paper, name), f"{prefix}{name}.")
            elif data[name] != paper_data[name]:
                key = prefix + name
                rows.append(
                    Departure(key, data[name], paper_data[name], reasons.get(key, ""), spec.description or "")
                )

    walk(config, config_module.load_preset("paper"), "")
    return rows


def paper_corpora(config: config_module.Config) -> tuple[bool, str]:
    """Whether the paper's Table 1 may stand beside ours: the labeled corpora must be the paper's
    (IEMOCAP within and for cross-corpus training, MSP-IMPROV as cross-corpus test); else why not."""
    wrong = []
    for field_name, expected in PAPER_CORPUS_TYPES.items():
        key = getattr(config.protocol, field_name)
        actual = config.corpora[key].type if key in config.corpora else None
        if actual != expected:
            wrong.append(f"protocol.{field_name} is {key!r} (type {actual}), the paper's is {expected}")
    if wrong:
        return False, "; ".join(wrong)
    return True, ""


def _paper_row(config: config_module.Config, name: str) -> bool:
    """A condition is compared with the paper's row of the same name only if its AE learnt from the
    same kind of corpus (BL none, C target, sT/fT TED-LIUM, Li LibriSpeech)."""
    expected = PAPER_AUTOENCODER_TYPES.get(name)
    if expected is None or name not in {c.name for c in config.protocol.conditions}:
        return False
    source = config.condition(name).autoencoder_corpus
    if source in (config_module.CONDITION_SOURCES_NONE, config_module.CONDITION_SOURCE_TARGET):
        return source == expected
    return config.corpora[source].type == expected


def machine_facts() -> dict[str, Any]:
    """The facts a reader needs to judge a run when it recorded none: commit, dirty flag, Python,
    package versions, CPU model and cores (``provenance.json`` of the run is preferred when present)."""
    root = Path(__file__).resolve().parent.parent
    facts: dict[str, Any] = {"recorded": datetime.now().isoformat(timespec="seconds")}
    try:
        facts["git_commit"] = _git(root, "rev-parse", "HEAD")
        facts["git_dirty"] = bool(_git(root, "status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        facts["git_commit"] = "unknown (not a git checkout, or git is missing)"
    facts["python"] = sys.version.split()[0]
    facts["platform"] = platform.platform()
    facts["cpu_model"] = _cpu_model()
    facts["cpu_cores"] = os.cpu_count()
    versions = {"serlib": _version("serlib")}
    versions.update({name: v for name in PACKAGES if (v := _version(name)) != "not installed"})
    facts["packages"] = versions
    return facts


def _git(root: Path, *args: str) -> str:
    answer = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True)
    return answer.stdout.strip()


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# -- rendering ---------------------------------------------------------------------------------------
def notebook_exporter() -> Any:
    """nbconvert's HTML exporter with JupyterLab's look, images inline and no CDN scripts (offline)."""

    quiet = logging.getLogger("serlib.app.report.nbconvert")  # not "alternative text is missing" per figure
    quiet.setLevel(logging.ERROR)
    return HTMLExporter(
        log=quiet,
        template_name="lab",
        extra_loaders=[jinja2.DictLoader({"serlib_offline.html.j2": _OFFLINE_TEMPLATE})],
        template_file="serlib_offline.html.j2",
        embed_images=True,
    )


def render_notebook(source: Path, target: Path, exporter: Any = None) -> None:
    """An executed notebook as one offline HTML page (``exporter``: reuse one for several notebooks)."""
    notebook = nbformat.read(source, as_version=4)
    exporter = exporter or notebook_exporter()
    body, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"name": source.stem}})
    target.write_text(body, encoding="utf-8")


def _link(folder: Path, name: str) -> str:
    """A link to a copied result file, or its name where the run folder has none."""
    if (folder / "files" / name).is_file():
        return f"<a href='files/{name}'>{name}</a>"
    return f"{name} (absent from the run folder)"


def _missing(what: str, notebook: str) -> str:
    return (
        f'<p class="missing">Missing: {_e(what)} (written by notebook {notebook}; '
        "run it to complete the report).</p>"
    )


def _configuration_section(config: config_module.Config, preset: str) -> str:
    rows = [
        [
            f"<code>{_e(d.key)}</code>",
            _value(d.value),
            _value(d.paper),
            _e(d.reason or "no reason recorded")
            + (f'<div class="muted">{_e(d.description)}</div>' if d.description else ""),
        ]
        for d in departures(config)
    ]
    table = (
        _table(["key", "value", "paper preset", "comment"], rows, "departures")
        if rows
        else "<p>No value differs from the paper preset.</p>"
    )
    return (
        f"<h2 id='configuration'>Configuration</h2><p>Name <b>{_e(config.name)}</b>, preset <b>{_e(preset)}</b>; "
        f"the whole file: <a href='files/config.yaml'>config.yaml</a>. Values that differ from the paper "
        f"preset (<code>serlib config show --preset paper</code>), with the reason given for each:</p>{table}"
    )


def _table1_section(out: Path, config: config_module.Config, folder: Path) -> str:
    path = out / "table1.csv"
    if not path.is_file():
        return "<h2 id='table1-heading'>Table 1</h2>" + _missing("table1.csv", "04")
    table = pd.read_csv(path)
    protocol_path = out / "results" / "protocol.json"
    settings = (
        json.loads(protocol_path.read_text(encoding="utf-8"))["settings"] if protocol_path.is_file() else {}
    )
    shown, why_not = paper_corpora(config)
    svm = (folder / "files" / "table1_with_svm.md").is_file()
    heads = {
        "within": f"{settings['within']['test_corpus']} (within, LOSO)" if "within" in settings else "within",
        "cross": f"{settings['cross']['test_corpus']} (cross, from {settings['cross']['train_corpus']})"
        if "cross" in settings
        else "cross",
    }
    first = "<tr><th rowspan='2'>Condition</th><th rowspan='2'>AE corpus</th>"
    second = "<tr>"
    for setting in ("within", "cross"):
        first += f"<th colspan='3'>{_e(heads[setting])}</th>"
        second += "<th>μ</th><th>min</th><th>max</th>"
        if shown:
            first += f"<th colspan='3' class='paper'>paper ({'IEMOCAP' if setting == 'within' else 'MSP-IMPROV'})</th>"
            second += "<th class='paper'>μ</th><th class='paper'>min</th><th class='paper'>max</th>"
    rows = []
    for row in table.to_dict("records"):
        name = str(row["condition"])
        cells = [f"<th>{_e(name)}</th>", f"<td>{_e(row['autoencoder_corpus'])}</td>"]
        for index, setting in enumerate(("within", "cross")):
            cells += [f"<td>{_number(row.get(f'{setting}_{k}'))}</td>" for k in ("mean", "min", "max")]
            if shown:
                paper = PAPER_TABLE1[name][index] if _paper_row(config, name) else (None, None, None)
                cells += [f"<td class='paper'>{_number(v)}</td>" for v in paper]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    note = (
        "The paper's columns are Neumann &amp; Vu (2019), Table 1 (ten seeds; a condition is compared only "
        "where its autoencoder learnt from the same kind of corpus)."
        if shown
        else f"The paper's numbers are not shown: this run's corpora are not the paper's ({_e(why_not)}), "
        "so they would not be comparable."
    )
    html_table = (
        f"<table id='table1'><thead>{first}</tr>{second}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    stats_rows = []
    for row in table.to_dict("records"):
        for setting in ("within", "cross"):
            if row.get(f"{setting}_seeds"):
                value = {key: row[f"{setting}_{key}"] for key in STAT_COLUMNS}
                interval = metrics.interval_text(value["ci_low"], value["ci_high"], int(value["seeds"]))
                stats_rows.append(
                    [
                        _e(row["condition"]),
                        setting,
                        _number(value["seeds"], 0),
                        _number(value["folds"], 0),
                        interval,
                    ]
                    + [_number(value[k], 3 if k.endswith("_p") else 2) for k in STAT_COLUMNS[4:]]
                )
    return (
        "<h2 id='table1-heading'>Table 1: UAR (%)</h2>"
        "<p>Mean, min and max over seeds (a seed's within-corpus UAR is the mean over its folds).</p>"
        f"{html_table}<p class='note'>{note}</p>"
        "<details><summary>Beyond the paper: 95 % confidence intervals and paired tests against BL</summary>"
        + _table(
            "Condition|Setting|seeds|folds|95 % CI|Δ vs BL|t-test p|Wilcoxon p|pooled UAR".split("|"),
            stats_rows,
        )
        + f"<p>Files: {_link(folder, 'table1.csv')}, {_link(folder, 'table1.md')}, "
        f"{_link(folder, 'runs.csv')} (every run's UAR)"
        + (f"; with the eGeMAPS + SVM row: {_link(folder, 'table1_with_svm.md')}" if svm else "")
        + ".</p></details>"
    )


def _figure(out: Path, folder: Path, stem: str, caption: str, notebook: str) -> str:
    source = out / "figures" / f"{stem}.png"
    if not source.is_file():
        return _missing(f"figures/{stem}.png", notebook)
    (folder / "figures").mkdir(exist_ok=True)
    shutil.copy2(source, folder / "figures" / source.name)
    return (
        f"<figure id='{stem}'><img src='figures/{stem}.png' alt='{_e(caption)}'>"
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _probes_section(out: Path) -> str:
    path = out / "tsne_probes.csv"
    if not path.is_file():
        return _missing("tsne_probes.csv", "05")
    probes = pd.read_csv(path)
    columns = [c for c in probes.columns if probes[c].notna().any()]  # PROBE_COLUMNS, empty ones left out
    rows = [
        [
            _number(r[c], 3)
            if c in ("knn_uar", "chance", "silhouette")
            else _e("" if pd.isna(r[c]) else r[c])
            for c in columns
        ]
        for r in probes.to_dict("records")
    ]
    return (
        "<h3>Probe table</h3><p>Each t-SNE panel with a k-NN probe UAR on the vectors themselves (not the "
        "2-D picture) against chance, and a silhouette score: clusters seen in a projection are checked by numbers.</p>"
        + _table(columns, rows, "probes")
    )


def _notebooks_section(runs: list[NotebookRun], folder: Path) -> str:
    rows = []
    for run in runs:
        link = f"<a href='{run.page}'>{_e(run.name)}</a>" if run.page else _e(run.name)
        status = f"<span class='{'ok' if run.ok else 'bad'}'>{_e(run.status)}</span>"
        rows.append(
            [link, status, _e(run.start), _e(run.end), _number(run.seconds, 1), _number(run.kernel_cpu_s, 1)]
        )
    total = sum(r.seconds or 0.0 for r in runs)
    return (
        "<h2 id='notebooks'>Notebooks and run times</h2><p>Each executed notebook rendered as a page (outputs "
        f"included); times from {_link(folder, 'reproduce.log')}, {total:.0f} s of notebooks in all.</p>"
        + _table(["notebook", "status", "start", "end", "wall s", "kernel CPU s"], rows, "notebook-runs")
    )


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict) and data:
        return [item for key, value in data.items() for item in _flatten(value, f"{prefix}{key}.")]
    return [(prefix.rstrip("."), data)]


def _provenance_section(out: Path) -> str:
    path = out / "provenance.json"
    if path.is_file():
        facts = json.loads(path.read_text(encoding="utf-8"))
        source = "from the run's <a href='files/provenance.json'>provenance.json</a> (recorded by the run)"
    else:
        facts = machine_facts()
        source = (
            "recorded when this report was built (the run folder has no provenance.json), so they describe "
            "the checkout and machine that built the report"
        )
    rows = [
        [f"<code>{_e(k)}</code>", _e(v if isinstance(v, str) else json.dumps(v))] for k, v in _flatten(facts)
    ]
    return f"<h2 id='provenance'>Machine, versions and commit</h2><p>Facts {source}.</p>" + _table(
        ["fact", "value"], rows, "provenance-facts"
    )


_NAV = (
    ("configuration", "Configuration"),
    ("table1-heading", "Table 1"),
    ("figures", "Figures"),
    ("notebooks", "Notebooks"),
    ("provenance", "Machine"),
)


def _page(title: str, sections: list[str]) -> str:
    """The whole page, through ``templates/page.html.j2`` (autoescaped; the sections are escaped HTML)."""
    return render("page.html.j2", title=title, nav=_NAV, sections=[Markup(s) for s in sections]) + "\n"


# -- building ----------------------------------------------------------------------------------------
def build(out: str | os.PathLike[str]) -> Report:
    """Write ``<out>/report/`` from a run folder of ``serlib reproduce`` and return what it holds.

    An incomplete run still gets a report (with what exists and a banner naming the missing or failed
    notebooks); a folder without ``config.yaml`` is not a run folder and raises ReportError.
    """
    out = Path(out)
    config_path = out / "config.yaml"
    if not config_path.is_file():
        raise ReportError(
            f"{out} is not the output folder of a reproduction (no {config_path}): give the folder passed to "
            f"`serlib reproduce --out`, or run `serlib reproduce --out {out}` first"
        )
    config = config_module.load(config_path)
    preset = config.name if config.name in config_module.PRESETS else "none (a configuration file)"
    logged = read_log(out / "reproduce.log")
    staging = out / f".{REPORT_DIR}.tmp{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "notebooks").mkdir(parents=True)
    (staging / "files").mkdir()
    try:
        runs, exporter = [], notebook_exporter()
        for name in NOTEBOOKS:
            run = logged.get(name, NotebookRun(name))
            executed = out / "notebooks" / name
            if executed.is_file():
                page = f"notebooks/{executed.stem}.html"
                try:
                    render_notebook(executed, staging / page, exporter)
                    run.page = page
                except ValueError as error:  # a partial copy left by a killed kernel: say so, go on
                    run.status += f" (executed copy unreadable: {type(error).__name__})"
            elif run.ok:
                run.status = "ok in reproduce.log, but the executed copy is missing"
            runs.append(run)
        for name in FILES:
            if (out / name).is_file():
                shutil.copy2(out / name, staging / "files" / Path(name).name)
        report = Report(
            out / REPORT_DIR / "index.html",
            missing=[r.name for r in runs if r.status == "not run"],
            failed=[r.name for r in runs if r.status != "not run" and not r.ok],
        )
        figures = [_figure(out, staging, stem, caption, notebook) for stem, caption, notebook in FIGURES]
        sections = []
        if not report.complete:
            sections.append(
                "<p class='incomplete' id='incomplete'><b>This run is incomplete</b>: "
                f"{_e(report.incomplete_message())}. "
                "Run the missing notebooks with <code>serlib reproduce --out DIR --notebook NN</code> "
                "and rebuild this page with <code>serlib report DIR</code>.</p>"
            )
        sections += [
            f"<p>Reproduction of Neumann &amp; Vu, <i>Improving speech emotion recognition with unsupervised "
            f"representation learning on unlabeled speech</i> (ICASSP 2019). Report built "
            f"{datetime.now().isoformat(timespec='seconds')}.</p>",
            _configuration_section(config, preset),
            _table1_section(out, config, staging),
            check_section(out),
            "<h2 id='figures'>Figures</h2>",
            figures[0],
            f"<p>Data: {_link(staging, 'figure2_confusion.csv')}.</p>" if "<img" in figures[0] else "",
            *figures[1:],
            _probes_section(out),
            _notebooks_section(runs, staging),
            _provenance_section(out),
        ]
        (staging / "index.html").write_text(
            _page(f"serlib reproduction report: {config.name}", sections), encoding="utf-8"
        )
        _swap(staging, out / REPORT_DIR)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report


def _swap(staging: Path, target: Path) -> None:
    """Replace ``target`` by ``staging`` with two renames: the old report stays whole until the new one is."""
    old = target.with_name(f".{target.name}.old{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)

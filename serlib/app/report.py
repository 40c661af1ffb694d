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
from markupsafe import Markup
from nbconvert import HTMLExporter
from pydantic import BaseModel

from serlib.app.notebooks import NOTEBOOKS
from serlib.app.report_check import check_section
from serlib.app.report_html import json_value, number, render
from serlib.base import config as config_module
from serlib.base import config_yaml, files, metrics, run_schemas
from serlib.evidence.references import paper_table1

REPORT_DIR = "report"
PROTOCOL_CORPORA = ("within_corpus", "cross_corpus_train", "cross_corpus_test")
"""The labeled corpora of a protocol; the paper's Table 1 stands beside ours only where their types
are the paper preset's (``paper_corpora``)."""
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
FIGURE_DATA = {
    "figure2_confusion": "figure2_confusion.csv"
}  # the data a figure was drawn from, linked below it
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
            elif data.get(name) != paper_data.get(name):  # a key dumped only when set is absent when None
                key = prefix + name
                rows.append(
                    Departure(
                        key,
                        data.get(name),
                        paper_data.get(name),
                        reasons.get(key, ""),
                        spec.description or "",
                    )
                )

    walk(config, config_module.load_preset("paper"), "")
    return rows


def autoencoder_source(config: config_module.Config, name: str) -> str | None:
    """What condition ``name``'s autoencoder learnt from: 'none' (no AE), 'target' (control C) or the
    type of its corpus (tedlium2, librispeech, ...); None where the configuration has no such condition."""
    if name not in {c.name for c in config.protocol.conditions}:
        return None
    source = config.condition(name).autoencoder_corpus
    if source in (config_module.CONDITION_SOURCES_NONE, config_module.CONDITION_SOURCE_TARGET):
        return source
    return config.corpora[source].type


def corpus_type(config: config_module.Config, field_name: str) -> str | None:
    """The type of the corpus a protocol field (``PROTOCOL_CORPORA``) names, None where unset."""
    key = getattr(config.protocol, field_name)
    return config.corpora[key].type if key in config.corpora else None


def paper_corpora(config: config_module.Config) -> tuple[bool, str]:
    """Whether the paper's Table 1 may stand beside ours: the labeled corpora must be of the paper
    preset's types (IEMOCAP within and for cross-corpus training, MSP-IMPROV as cross-corpus test);
    else why not."""
    paper = config_module.load_preset("paper")
    wrong = []
    for field_name in PROTOCOL_CORPORA:
        actual, expected = corpus_type(config, field_name), corpus_type(paper, field_name)
        if actual != expected:
            key = getattr(config.protocol, field_name)
            wrong.append(f"protocol.{field_name} is {key!r} (type {actual}), the paper's is {expected}")
    if wrong:
        return False, "; ".join(wrong)
    return True, ""


def _paper_row(config: config_module.Config, name: str, paper: config_module.Config) -> bool:
    """A condition is compared with the paper's row of the same name only if its AE learnt from the
    same kind of corpus as the paper preset's (BL none, C target, sT/fT TED-LIUM, Li LibriSpeech)."""
    expected = autoencoder_source(paper, name)
    return expected is not None and autoencoder_source(config, name) == expected


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


def _copied(folder: Path) -> list[str]:
    """The result files copied into the report's files/ folder (the templates link these, name the rest)."""
    return sorted(path.name for path in (folder / "files").iterdir())


def _configuration_section(config: config_module.Config, preset: str) -> Markup:
    """The configuration's name and preset, and its departures from the paper preset with their reasons."""
    rows = [
        {
            "key": d.key,
            "value": json_value(d.value),
            "paper": json_value(d.paper),
            "reason": d.reason,
            "description": d.description,
        }
        for d in departures(config)
    ]
    return render("section_configuration.html.j2", name=config.name, preset=preset, departures=rows)


def _corpus_name(config: config_module.Config, field_name: str) -> str:
    """A protocol corpus' type as a heading: iemocap -> IEMOCAP, msp_improv -> MSP-IMPROV."""
    return str(corpus_type(config, field_name)).upper().replace("_", "-")


def _table1_section(out: Path, config: config_module.Config, folder: Path) -> Markup:
    """Table 1 as numbers in text, the paper's beside it where comparable, with the intervals and tests."""
    path = out / "table1.csv"
    if not path.is_file():
        return render("section_table1.html.j2", rows=None)
    records = run_schemas.read_table1(path).to_dict("records")
    protocol_path = out / "results" / "protocol.json"
    settings = run_schemas.read_report_settings(protocol_path) if protocol_path.is_file() else {}
    shown, why_not = paper_corpora(config)
    preset = config_module.load_preset("paper")
    heads = [
        {
            "head": f"{settings['within']['test_corpus']} (within, LOSO)"
            if "within" in settings
            else "within",
            "paper": _corpus_name(preset, "within_corpus"),
        },
        {
            "head": f"{settings['cross']['test_corpus']} (cross, from {settings['cross']['train_corpus']})"
            if "cross" in settings
            else "cross",
            "paper": _corpus_name(preset, "cross_corpus_test"),
        },
    ]
    paper = paper_table1()
    rows = []
    for row in records:
        name = str(row["condition"])
        paper_row = paper[name] if shown and _paper_row(config, name, preset) else {}
        paper_cells = [paper_row.get(setting, (None,) * 3) for setting in ("within", "cross")]
        cells = [
            {
                "ours": [number(row.get(f"{setting}_{k}")) for k in ("mean", "min", "max")],
                "paper": [number(v) for v in paper_cells[index]] if shown else [],
            }
            for index, setting in enumerate(("within", "cross"))
        ]
        rows.append(
            {"condition": name, "autoencoder_corpus": str(row["autoencoder_corpus"]), "settings": cells}
        )
    stats = []
    for row in records:
        for setting in ("within", "cross"):
            if row.get(f"{setting}_seeds"):
                value = {key: row[f"{setting}_{key}"] for key in STAT_COLUMNS}
                interval = metrics.interval_text(value["ci_low"], value["ci_high"], int(value["seeds"]))
                stats.append(
                    [
                        str(row["condition"]),
                        setting,
                        number(value["seeds"], 0),
                        number(value["folds"], 0),
                        interval,
                    ]
                    + [number(value[k], 3 if k.endswith("_p") else 2) for k in STAT_COLUMNS[4:]]
                )
    return render(
        "section_table1.html.j2",
        rows=rows,
        settings=heads,
        shown=shown,
        why_not=why_not,
        stats=stats,
        files=_copied(folder),
    )


def _figures_section(out: Path, folder: Path) -> Markup:
    """Figures 2-4 and the speaker/gender pictures, each copied into the report (or named as missing)."""
    figures = []
    for stem, caption, notebook in FIGURES:
        source = out / "figures" / f"{stem}.png"
        if source.is_file():
            (folder / "figures").mkdir(exist_ok=True)
            shutil.copy2(source, folder / "figures" / source.name)
        present, data = source.is_file(), FIGURE_DATA.get(stem, "")
        figures.append(
            {"stem": stem, "caption": caption, "notebook": notebook, "present": present, "data": data}
        )
    return render("section_figures.html.j2", figures=figures, files=_copied(folder))


def _probes_section(out: Path) -> Markup:
    """The t-SNE probe table (tsne_probes.csv) as text, or that the file is missing."""
    path = out / "tsne_probes.csv"
    if not path.is_file():
        return render("section_probes.html.j2", rows=None)
    probes = pd.read_csv(path)
    # the columns are PROBE_COLUMNS, empty ones left out (headers from a file: the template escapes them)
    columns = [str(c) for c in probes.columns if probes[c].notna().any()]
    rows = [
        [
            number(r[c], 3)
            if c in ("knn_uar", "chance", "silhouette")
            else ("" if pd.isna(r[c]) else str(r[c]))
            for c in columns
        ]
        for r in probes.to_dict("records")
    ]
    return render("section_probes.html.j2", columns=columns, rows=rows)


def _notebooks_section(runs: list[NotebookRun], folder: Path) -> Markup:
    """Each notebook's status and times, linked to its rendered page where it was executed."""
    rows = [
        {
            "name": run.name,
            "page": run.page or "",
            "ok": run.ok,
            "status": run.status,
            "start": run.start,
            "end": run.end,
            "seconds": number(run.seconds, 1),
            "kernel_cpu_s": number(run.kernel_cpu_s, 1),
        }
        for run in runs
    ]
    total = sum(r.seconds or 0.0 for r in runs)
    return render("section_notebooks.html.j2", runs=rows, total=f"{total:.0f}", files=_copied(folder))


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict) and data:
        return [item for key, value in data.items() for item in _flatten(value, f"{prefix}{key}.")]
    return [(prefix.rstrip("."), data)]


def _provenance_section(out: Path) -> Markup:
    """The run's provenance.json flattened to (fact, text) rows, else the facts of the building machine."""
    path = out / "provenance.json"
    recorded = path.is_file()
    facts = run_schemas.read_object(path, "delete it and re-run") if recorded else machine_facts()
    rows = [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in _flatten(facts)]
    return render("section_provenance.html.j2", recorded=recorded, facts=rows)


_NAV = (
    ("configuration", "Configuration"),
    ("table1-heading", "Table 1"),
    ("figures", "Figures"),
    ("notebooks", "Notebooks"),
    ("provenance", "Machine"),
)


def _page(title: str, sections: list[Markup]) -> str:
    """The whole page, through ``templates/page.html.j2`` (the sections are HTML of the other templates)."""
    return str(render("page.html.j2", title=title, nav=_NAV, sections=sections)) + "\n"


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
        intro = render(
            "section_intro.html.j2",
            incomplete="" if report.complete else report.incomplete_message(),
            built=datetime.now().isoformat(timespec="seconds"),
        )
        sections = [
            intro,
            _configuration_section(config, preset),
            _table1_section(out, config, staging),
            check_section(out),
            _figures_section(out, staging),
            _probes_section(out),
            _notebooks_section(runs, staging),
            _provenance_section(out),
        ]
        (staging / "index.html").write_text(
            _page(f"serlib reproduction report: {config.name}", sections), encoding="utf-8"
        )
        files.replace_folder(staging, out / REPORT_DIR)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report

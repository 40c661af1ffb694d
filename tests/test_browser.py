"""The two browser uses of serlib in a real browser (issue 18): the reproduction report opened from disk,
and JupyterLab running notebook 01 through its UI, both in headless Chromium driven by playwright.

Chromium is Debian's (``/usr/bin/chromium``; ``.ci/run`` installs it), not playwright's download. Without
it (or without playwright) the tests skip with the reason, except where ``SERLIB_REQUIRE_BROWSER=1``
(set by ``.ci/run``), where they fail: CI must never pass by skipping them. Each check is a function that
returns the problems it saw, so the tests can also show that a planted fault is caught. Screenshots are
written under the test's temporary folder (``report.png``, ``jupyterlab.png``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from sample_run import write_sample_run
from test_notebooks import tiny_config, tiny_reproduction

from serlib.app import report, reproduce
from serlib.base import config as config_module
from serlib.base import config_yaml
from serlib.data.manifest import EMOTIONS as EMOTION_ORDER

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAPER_FIGURES = ("figure2_confusion", "figure3_tsne_acnn", "figure4_tsne_autoencoder")


def _unavailable(reason: str) -> None:
    if os.environ.get("SERLIB_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}, and SERLIB_REQUIRE_BROWSER=1 (set by .ci/run) requires the browser tests")
    pytest.skip(reason)


def chromium_path() -> str:
    """Debian's Chromium: $SERLIB_CHROMIUM, /usr/bin/chromium or ``chromium`` on the PATH."""
    for candidate in (os.environ.get("SERLIB_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    _unavailable("no Chromium (install Debian's: apt-get install chromium; .ci/run does it)")
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class PageLog:
    """Console errors, uncaught exceptions and requests that left the machine, seen by one page."""

    errors: list[str]
    outside: list[str]


def watch(page: Any, allowed: tuple[str, ...]) -> PageLog:
    """Record a page's console errors and page errors, and block (and record) every request whose URL
    does not start with one of ``allowed``: the report must work offline, JupyterLab on localhost."""
    seen = PageLog([], [])
    page.on("console", lambda m: seen.errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda error: seen.errors.append(f"page error: {error}"))

    def outside(route: Any) -> None:
        if route.request.url.startswith(allowed):
            route.continue_()
        else:
            seen.outside.append(route.request.url)
            route.abort()

    page.route(re.compile(r"^(https?|wss?)://"), outside)
    return seen


# -- the report --------------------------------------------------------------------------------------
def report_problems(page: Any, index: Path) -> list[str]:
    """Open the report from ``file://`` and list what is wrong: images that did not load, console
    errors, network requests, a Table 1 whose rows are not the configuration's conditions, one of
    Figures 2-4 absent, a notebook link missing or broken, a rendered notebook with errors."""
    seen = watch(page, ("file:", "data:"))
    page.goto(index.as_uri())
    page.wait_for_load_state("load")
    problems = []
    for src, width in page.eval_on_selector_all(
        "img", "els => els.map(e => [e.getAttribute('src'), e.naturalWidth])"
    ):
        if not width:
            problems.append(f"image {src} did not load")
        if src.startswith(("/", "file:")):
            problems.append(f"image {src} is an absolute path of the machine that built the report")
    config = config_module.load(index.parent.parent / "config.yaml")
    rows = page.locator("#table1 tbody tr").count()
    if rows != len(config.protocol.conditions):
        problems.append(
            f"Table 1 has {rows} rows, the configuration {len(config.protocol.conditions)} conditions"
        )
    for stem in PAPER_FIGURES:
        if page.locator(f"figure#{stem} img").count() != 1:
            problems.append(f"{stem} is not shown")
    links = page.eval_on_selector_all("a[href^='notebooks/']", "els => els.map(e => e.getAttribute('href'))")
    if len(links) != len(reproduce.NOTEBOOKS):
        problems.append(f"{len(links)} notebook links, expected {len(reproduce.NOTEBOOKS)}")
    problems += [f"index.html: {error}" for error in seen.errors + seen.outside]
    for link in links:
        notebook = page.context.new_page()
        notebook_seen = watch(notebook, ("file:", "data:"))
        notebook.goto((index.parent / link).as_uri())
        notebook.wait_for_load_state("load")
        if notebook.locator(".jp-Cell").count() == 0:
            problems.append(f"{link} shows no notebook cells")
        problems += [f"{link}: {error}" for error in notebook_seen.errors + notebook_seen.outside]
        notebook.close()
    return problems


@pytest.fixture
def report_page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    yield context.new_page()
    context.close()


def _report_index() -> Path | None:
    """A real run's report to check instead of the synthetic one: SERLIB_REPORT_RUN=<run folder>."""
    run = os.environ.get("SERLIB_REPORT_RUN")
    return Path(run) / report.REPORT_DIR / "index.html" if run else None


def test_report_opens_offline_with_table1_figures_and_notebooks(report_page: Any, tmp_path: Path) -> None:
    index = _report_index() or report.build(write_sample_run(tmp_path / "run")).index
    started = time.perf_counter()
    problems = report_problems(report_page, index)
    report_page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert problems == [], problems
    assert report_page.locator("#departures tbody tr").count() > 0
    print(f"report checked in {time.perf_counter() - started:.1f} s; screenshot {tmp_path / 'report.png'}")


def test_report_check_fails_when_an_image_is_missing(report_page: Any, tmp_path: Path) -> None:
    index = report.build(write_sample_run(tmp_path / "run")).index
    (index.parent / "figures" / "figure3_tsne_acnn.png").unlink()
    problems = report_problems(report_page, index)
    assert "image figures/figure3_tsne_acnn.png did not load" in problems


# -- JupyterLab --------------------------------------------------------------------------------------
@dataclass
class Lab:
    url: str
    token: str
    root: Path
    log: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _lab_settings(folder: Path) -> None:
    """User settings of the test's JupyterLab: every cell in the page (no windowing, so the test sees all
    of them) and no news or update checks (the machine is offline)."""
    settings = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
    }
    for name, values in settings.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """JupyterLab on a free localhost port, serving a copy of notebook 01 set to a tiny configuration,
    with kernels that import serlib from this checkout; stopped (with its kernels) afterwards."""
    chromium_path()  # skip early without a browser: starting JupyterLab would be wasted
    from jupyter_client.kernelspec import KernelSpecManager

    assert reproduce.KERNEL_NAME in KernelSpecManager().find_kernel_specs(), (
        "the Jupyter kernel 'serlib' is not registered in this environment: run `make install`"
    )
    root = tmp_path_factory.mktemp("lab")
    (root / "notebooks").mkdir()
    config_path = config_yaml.save(tiny_config(root / "run"), root / "tiny.yaml")
    source = (reproduce.notebooks_dir() / reproduce.NOTEBOOKS[0]).read_text(encoding="utf-8")
    source = source.replace("config_path = None", f"config_path = {str(config_path)!r}", 1)
    assert str(config_path) in source, "notebook 01's parameters cell no longer has `config_path = None`"
    (root / "notebooks" / reproduce.NOTEBOOKS[0]).write_text(source, encoding="utf-8")
    _lab_settings(root / "settings")
    env = {key: value for key, value in os.environ.items() if key != "MPLBACKEND"}  # inline figures
    env |= {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "JUPYTER_CONFIG_DIR": str(root / "config"),  # none of the user's settings, kernels or extensions
        "JUPYTER_DATA_DIR": str(root / "data"),
        "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(root / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(root / "workspaces"),
    }
    port, token = _free_port(), secrets.token_hex(16)
    log = root / "jupyterlab.log"
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}", "--LabApp.news_url=", "--LabApp.extension_manager=readonly"]  # fmt: skip
    if os.geteuid() == 0:
        command.append("--allow-root")  # CI runs as root
    with log.open("wb") as output:
        server = subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"JupyterLab did not start: {log.read_text(encoding='utf-8', errors='replace')[-2000:]}"
                )
            time.sleep(0.5)
        yield Lab(url, token, root, log)
    finally:
        server.terminate()  # SIGTERM: JupyterLab stops its kernels and exits (SIGINT may be ignored here)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


# ipywidgets 8 draws a progress bar as a .jupyter-widgets .widget-hprogress element (older: .widget-progress)
PROGRESS_WIDGET = ".jupyter-widgets.widget-hprogress, .widget-progress"
STDERR = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"


def run_all_in_lab(
    page: Any, lab: Lab, notebook: str, timeout_s: float = 150, widget_shot: Path | None = None
) -> tuple[list[str], dict[str, Any]]:
    """Open ``notebook`` in JupyterLab, choose Run > Run All Cells, wait for the kernel, save (Ctrl+S), and
    list the problems: a kernel other than "Python (serlib)", code cells without an execution count,
    error outputs (in the page and in the saved file), no rendered image, console errors."""
    seen = watch(page, (lab.url,))
    # ?reset: a fresh layout with only this notebook open (JupyterLab restores the last one otherwise)
    page.goto(f"{lab.url}/lab/tree/{notebook}?reset&token={lab.token}")
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    page.wait_for_function(  # cells shown, a kernel started (not "No Kernel") and idle
        """() => {
            const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
            const name = panel && panel.querySelector('.jp-Toolbar-kernelName');
            return panel && panel.querySelector('.jp-Cell') && name && !/No Kernel/.test(name.textContent)
                && panel.querySelector(".jp-Notebook-ExecutionIndicator[data-status='idle']");
        }""",
        timeout=120_000,
    )
    kernel = panel.locator(".jp-Toolbar-kernelName").inner_text().strip()
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    prompts = panel.locator(".jp-CodeCell .jp-InputArea-prompt")
    started, deadline = time.perf_counter(), time.monotonic() + timeout_s
    widget_seen = False
    while True:
        if not widget_seen and panel.locator(PROGRESS_WIDGET).count():
            widget_seen = True  # a progress bar drawn as a widget while the cells run
            if widget_shot is not None:
                panel.locator(PROGRESS_WIDGET).first.scroll_into_view_if_needed()
                page.screenshot(path=str(widget_shot))
        texts = [text.strip() for text in prompts.all_inner_texts()]
        idle = panel.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").count() == 1
        if (
            idle
            and texts
            and not any("*" in text for text in texts)
            and any(re.search(r"\d", t) for t in texts)
        ):
            break
        if time.monotonic() > deadline:
            page.screenshot(path=str(lab.root / "timeout.png"))
            pytest.fail(
                f"{notebook} did not finish in {timeout_s} s in JupyterLab; prompts {texts}; {lab.root}"
            )
        time.sleep(1)
    seconds = time.perf_counter() - started
    panel.locator(".jp-Notebook").click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+s")
    page.wait_for_function(
        "() => !document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-mod-dirty') &&"
        " !document.querySelector('.lm-TabBar-tab.jp-mod-current.jp-mod-dirty')",
        timeout=30_000,
    )
    problems = []
    if kernel != "Python (serlib)":
        problems.append(f"kernel is {kernel!r}, not 'Python (serlib)'")
    for number, text in enumerate(texts, start=1):
        if not re.fullmatch(r"\[\d+\]:", text):
            problems.append(f"code cell {number} has no execution count (prompt {text!r})")
    tracebacks = panel.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    shown = [t for t in tracebacks.all_inner_texts() if "Traceback (most recent call last)" in t]
    problems += [f"a cell shows an error: {text.strip().splitlines()[-1][:200]}" for text in shown]
    saved = nbformat.read(lab.root / notebook, as_version=4)
    code = [cell for cell in saved.cells if cell.cell_type == "code"]
    for number, cell in enumerate(code, start=1):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                problems.append(
                    f"saved code cell {number} has an error output: {output.ename}: {output.evalue}"
                )
    widths = panel.locator(".jp-RenderedImage img").evaluate_all("els => els.map(e => e.naturalWidth)")
    if not widths or not all(widths):
        problems.append(f"no rendered image output (natural widths {widths})")
    problems += [f"page: {error}" for error in seen.errors + seen.outside]
    facts = {
        "seconds": seconds,
        "kernel": kernel,
        "cells": len(code),
        "images": len(widths),
        "widgets": panel.locator(PROGRESS_WIDGET).count(),
        "widget_errors": panel.locator(".jupyter-widgets-error-widget").count(),
        "widget_seen_while_running": widget_seen,
        "stderr_outputs": panel.locator(STDERR).count(),
    }
    return problems, facts


@pytest.fixture(scope="module")
def lab_page(browser: Any, lab: Lab) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    yield context.new_page()
    context.close()


@pytest.mark.slow
def test_jupyterlab_runs_notebook_01_with_the_serlib_kernel(lab_page: Any, lab: Lab, tmp_path: Path) -> None:
    notebook = f"notebooks/{reproduce.NOTEBOOKS[0]}"
    problems, facts = run_all_in_lab(lab_page, lab, notebook, widget_shot=tmp_path / "widget-progress.png")
    lab_page.locator(
        ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-RenderedImage img"
    ).first.scroll_into_view_if_needed()
    lab_page.screenshot(path=str(tmp_path / "jupyterlab.png"))
    assert problems == [], f"{problems}\nJupyterLab log: {lab.log}"
    assert facts["kernel"] == "Python (serlib)" and facts["images"] >= 1
    # demo corpus and feature extraction: progress bars drawn as ipywidgets, not as red text
    assert facts["widgets"] >= 1 and facts["widget_errors"] == 0, facts
    assert facts["stderr_outputs"] == 0, facts
    print(f"notebook 01 in JupyterLab: {facts}; screenshot {tmp_path / 'jupyterlab.png'}")


@pytest.mark.slow
def test_jupyterlab_check_fails_on_a_planted_failing_cell(lab_page: Any, lab: Lab) -> None:
    planted = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "import matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0])\nplt.show()"
            ),
            nbformat.v4.new_code_cell("raise RuntimeError('planted failure')"),
            nbformat.v4.new_code_cell("print('never runs')"),
        ]
    )
    planted.metadata["kernelspec"] = {
        "name": "serlib",
        "display_name": "Python (serlib)",
        "language": "python",
    }
    nbformat.write(planted, lab.root / "notebooks" / "planted.ipynb")
    problems, _ = run_all_in_lab(lab_page, lab, "notebooks/planted.ipynb", timeout_s=60)
    assert any("RuntimeError: planted failure" in p for p in problems), problems
    assert any(p.startswith("code cell 3 has no execution count") for p in problems), problems


# -- an executed notebook as a student opens it --------------------------------------------------------
def executed_notebook_problems(page: Any, lab: Lab, notebook: str) -> tuple[list[str], int]:
    """Open an executed notebook in JupyterLab without running it and list what a student should not see:
    outputs rendered on the stderr (pink) background, no Table 1. Returns the problems and the count."""
    seen = watch(page, (lab.url,))
    page.goto(f"{lab.url}/lab/tree/{notebook}?reset&token={lab.token}")
    page.wait_for_function(
        "() => document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output').length > 5",
        timeout=120_000,
    )
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    problems = []
    table = panel.locator(".jp-OutputArea .jp-RenderedMarkdown table", has_text="fT")
    try:  # Table 1 is a markdown output (display(Markdown(...))), rendered after the notebook opens
        table.first.wait_for(timeout=60_000)
        table.first.scroll_into_view_if_needed()
    except Exception:  # playwright's TimeoutError
        problems.append("no rendered Table 1 (a markdown output with the fT row)")
    pink = panel.locator(STDERR)
    for text in pink.all_inner_texts():
        problems.append(f"stderr output: {text.strip()[:160]}")
    problems += [f"page: {error}" for error in seen.errors + seen.outside]
    return problems, pink.count()


@pytest.fixture(scope="module")
def executed_04(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Notebook 04 as ``serlib reproduce`` executed it on the tiny configuration, copied into the lab; a
    real run's instead with SERLIB_EXECUTED_RUN=<run folder> (e.g. runs/demo after make demo)."""
    given = os.environ.get("SERLIB_EXECUTED_RUN")
    run = Path(given) if given else tiny_reproduction(tmp_path_factory.getbasetemp() / "tiny_notebooks")
    target = lab.root / "notebooks" / "executed_04.ipynb"
    shutil.copy(run / "notebooks" / reproduce.NOTEBOOKS[3], target)
    return "notebooks/executed_04.ipynb"


@pytest.mark.slow
def test_executed_notebook_04_shows_table1_and_no_stderr(
    lab_page: Any, lab: Lab, executed_04: str, tmp_path: Path
) -> None:
    problems, pink = executed_notebook_problems(lab_page, lab, executed_04)
    lab_page.screenshot(path=str(tmp_path / "notebook04.png"))
    assert problems == [] and pink == 0, f"{problems}; screenshot {tmp_path / 'notebook04.png'}"
    print(f"executed notebook 04 in JupyterLab: no stderr output; screenshot {tmp_path / 'notebook04.png'}")


@pytest.mark.slow
def test_executed_notebook_check_fails_on_a_planted_info_line(
    lab_page: Any, lab: Lab, executed_04: str
) -> None:
    notebook = nbformat.read(lab.root / executed_04, as_version=4)
    cell = next(c for c in notebook.cells if c.cell_type == "code" and "summaries.evaluate" in c.source)
    cell.outputs.append(
        nbformat.v4.new_output(
            "stream",
            name="stderr",
            text="INFO serlib.features.store: demo_emotion logmel: 12 rows from the store\n",
        )
    )
    nbformat.write(notebook, lab.root / "notebooks" / "planted_04.ipynb")
    problems, pink = executed_notebook_problems(lab_page, lab, "notebooks/planted_04.ipynb")
    assert pink == 1 and any("INFO serlib.features.store" in p for p in problems), problems


# -- notebook 05 by ear (issue 45): hover and click a t-SNE point, click a cell of Figure 2 -------------------
SHA256_OF_AUDIO = """async (element) => {
    const bytes = await (await fetch(element.src)).arrayBuffer();
    const digest = await crypto.subtle.digest('SHA-256', bytes);
    return Array.from(new Uint8Array(digest)).map(b => b.toString(16).padStart(2, '0')).join('');
}"""


def _screenshot(page: Any, target: Any, path: Path) -> None:
    """A screenshot of one view (also copied to $SERLIB_SCREENSHOT_DIR when set, for a closing note)."""
    target.screenshot(path=str(path))
    folder = os.environ.get("SERLIB_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(folder) / path.name)


@pytest.fixture(scope="module")
def notebook_05_by_ear(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The real notebook 05, set to the tiny reproduction's run folder (its config.yaml), in the lab: it
    needs notebook 04's runs, which the tiny reproduction (shared with executed_04) has made; a real
    run's instead with SERLIB_EXECUTED_RUN=<run folder> (e.g. runs/demo after make demo)."""
    given = os.environ.get("SERLIB_EXECUTED_RUN")
    run = (
        Path(given).resolve()
        if given
        else tiny_reproduction(tmp_path_factory.getbasetemp() / "tiny_notebooks")
    )
    source = (reproduce.notebooks_dir() / reproduce.NOTEBOOKS[4]).read_text(encoding="utf-8")
    config_path = run / "config.yaml"
    source = source.replace("config_path = None", f"config_path = {str(config_path)!r}", 1)
    assert str(config_path) in source, "notebook 05's parameters cell no longer has `config_path = None`"
    (lab.root / "notebooks" / "by_ear_05.ipynb").write_text(source, encoding="utf-8")
    return "notebooks/by_ear_05.ipynb", run


def _expected_clip(run: Path, utterance_id: str, setting: str = "within") -> str:
    """The SHA-256 of the WAV bytes serlib makes of one utterance of the run (what the player must hold)."""
    from serlib.analysis import listening
    from serlib.data import loaders

    config = config_module.load(run / "config.yaml")
    manifest = loaders.load_configured(config, listening.tested_corpus(run, setting)).set_index(
        "utterance_id"
    )
    row = manifest.loc[utterance_id].to_dict()
    return hashlib.sha256(listening.clip_wav(row, listening.heard_seconds(config))).hexdigest()


@pytest.mark.slow
def test_notebook_05_plays_a_tsne_point_and_lists_a_confusion_cell_by_ear(
    lab_page: Any, lab: Lab, notebook_05_by_ear: tuple[str, Path], tmp_path: Path
) -> None:
    from serlib.analysis import listening, listening_views

    notebook, run = notebook_05_by_ear
    problems, facts = run_all_in_lab(lab_page, lab, notebook, timeout_s=300)
    assert problems == [], f"{problems}\nJupyterLab log: {lab.log}"
    assert facts["stderr_outputs"] == 0, facts
    panel = lab_page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")

    # the t-SNE: hovering a point names its utterance, clicking it plays that utterance's clip
    view = panel.locator(".serlib-tsne")
    view.locator(".scatterlayer .trace .points path.point").first.wait_for(timeout=60_000)
    view.scroll_into_view_if_needed()
    box = view.locator(".scatterlayer .trace .points path.point").first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    lab_page.mouse.move(x, y)
    hover = view.locator(".hoverlayer .hovertext")
    hover.first.wait_for(timeout=10_000)
    lines = hover.first.evaluate(  # an SVG label: one <tspan class="line"> per line
        "e => Array.from(e.querySelectorAll('tspan.line')).map(t => t.textContent)"
    )
    hovered = lines[0].strip()
    assert any(line.startswith("speaker ") for line in lines) and any(
        line.startswith("predicted ") for line in lines
    )
    assert any(line.startswith("true ") for line in lines) and any("(p = " in line for line in lines), lines
    lab_page.mouse.click(x, y)
    label = view.locator(f".serlib-utterance[data-utterance='{hovered}']")
    label.wait_for(timeout=30_000)
    audio = view.locator(f"audio.{listening_views.PLAYER_CLASS}, .{listening_views.PLAYER_CLASS} audio").first
    lab_page.wait_for_function(
        "(e) => e.src && e.src.startsWith('blob:')", arg=audio.element_handle(), timeout=30_000
    )
    assert audio.evaluate(SHA256_OF_AUDIO) == _expected_clip(run, hovered), "the player holds another clip"
    lab_page.mouse.move(x, y)  # the hover label back on, for the picture
    _screenshot(lab_page, view, tmp_path / "by-ear-tsne.png")

    # Figure 2: a click on the fullest cell of BL (within, pooled) lists that cell's utterances with players
    figure = panel.locator(".serlib-confusion")
    figure.scroll_into_view_if_needed()
    area = figure.locator(".nsewdrag").first.bounding_box()
    predictions = listening.run_predictions(run, "within", "BL")
    counts = listening.confusion_counts(predictions).to_numpy()
    i, j = divmod(int(counts.argmax()), counts.shape[1])
    lab_page.mouse.click(
        area["x"] + (j + 0.5) * area["width"] / 4, area["y"] + (i + 0.5) * area["height"] / 4
    )
    rows = figure.locator(".serlib-cell-row")
    expected = min(int(counts[i, j]), listening_views.PAGE_SIZE)
    lab_page.wait_for_function(
        "([e, n]) => e.querySelectorAll('.serlib-cell-row').length === n",
        arg=[figure.element_handle(), expected],
    )
    config = config_module.load(run / "config.yaml")
    from serlib.data import loaders

    manifest = loaders.load_configured(config, listening.tested_corpus(run, "within"))
    cell = listening.cell_utterances(predictions, manifest, EMOTION_ORDER[i], EMOTION_ORDER[j])
    shown = rows.locator(".serlib-utterance").evaluate_all("els => els.map(e => e.dataset.utterance)")
    assert shown == list(cell["utterance_id"][:expected]), (shown, EMOTION_ORDER[i], EMOTION_ORDER[j])
    first_audio = rows.first.locator(
        f"audio.{listening_views.PLAYER_CLASS}, .{listening_views.PLAYER_CLASS} audio"
    ).first
    lab_page.wait_for_function("(e) => e.src && e.src.startsWith('blob:')", arg=first_audio.element_handle())
    assert first_audio.evaluate(SHA256_OF_AUDIO) == _expected_clip(run, shown[0])
    _screenshot(lab_page, figure, tmp_path / "by-ear-confusion.png")
    print(f"notebook 05 by ear in JupyterLab ({facts['seconds']:.0f} s): hovered and played {hovered}; cell "
          f"{EMOTION_ORDER[i]} -> {EMOTION_ORDER[j]} listed {len(shown)}; screenshots in {tmp_path}")  # fmt: skip

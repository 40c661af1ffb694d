"""The command line's surface (issue 37): one verb per product, ``--out`` always the output folder
(``output_dir``), run folders as positional RUN_DIR, an example in every verb's ``--help``, and the old
spellings still accepted with a deprecation line."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pandas as pd
import pytest

from serlib.app import cli
from serlib.base import config as config_module
from serlib.base import config_yaml


def _verbs() -> dict[str, object]:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return dict(action.choices)  # type: ignore[arg-type]


@pytest.mark.parametrize("verb", sorted(cli.EXAMPLES))
def test_every_verb_has_help_with_an_example(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert set(_verbs()) == set(cli.EXAMPLES)
    with pytest.raises(SystemExit):
        cli.main([verb, "--help"])
    text = capsys.readouterr().out
    assert "examples:\n  " in text and "serlib " in text.split("examples:")[1]


@pytest.mark.parametrize(
    "verb",
    [
        ["config", "show"],
        ["extract"],
        ["train-ae", "--corpus", "x"],
        ["evaluate"],
        ["svm"],
        ["epochs"],
        ["reproduce"],
        ["matrix"],
        ["baseline", "svm"],
    ],
)
def test_out_is_the_output_folder_everywhere(verb: list[str], tmp_path: Path) -> None:
    args = cli.build_parser().parse_args([*verb, "--preset", "demo", "--out", str(tmp_path / "here")])
    assert cli._config(args, log_file=False).output_dir == str(tmp_path / "here")


def _deprecations(err: str) -> list[str]:
    return [line for line in err.splitlines() if "deprecated" in line]


VERBS = (
    "config demo-corpus extract train-ae encode evaluate table svm epochs reproduce report provenance check "
    "download baseline matrix sensitivity pool export evidence counts migrate predict"
).split()
"""Every verb of ``serlib --help`` before its parser was split per verb (issue 43), in its order."""


def test_serlib_help_lists_every_verb_with_its_summary(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    listed = capsys.readouterr().out.split("positional arguments:")[1]
    assert list(_verbs()) == VERBS
    for verb in VERBS:
        line = re.search(rf"^    {re.escape(verb)}( +\S.*)?$", listed, re.M)
        assert line is not None, f"serlib --help does not list {verb}"
        assert line.group(1), f"serlib --help lists {verb} without its one-line summary"


def test_no_function_of_the_command_line_is_over_80_lines() -> None:
    modules = sorted((Path(cli.__file__).parent).glob("cli*.py"))
    assert len(modules) >= 5  # cli, cli_parsers, cli_pool, cli_export, cli_counts
    long = {}
    for module in modules:
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > 80:
                    long[f"{module.name}:{node.name}"] = lines
    assert not long, f"functions over 80 lines (split them per verb): {long}"


def test_reading_verbs_take_the_run_folder_as_positional_argument() -> None:
    parser = cli.build_parser()
    for verb, dest in (
        ("table", "run_dir"),
        ("report", "run_dir"),
        ("provenance", "folder"),
        ("check", "folder"),
    ):
        assert getattr(parser.parse_args([verb, "runs/demo"]), dest) == Path("runs/demo")
    assert parser.parse_args(["export", "runs/nemo", "--out", "results/nemo"]).run_dir == Path("runs/nemo")
    assert parser.parse_args(["pool", "runs/a", "runs/b", "--out", "p"]).run_dirs == [
        Path("runs/a"),
        Path("runs/b"),
    ]
    assert parser.parse_args(["table", "runs/demo", "--svm"]).svm


def test_report_old_out_works_with_one_deprecation_line(tmp_path: Path, capsys) -> None:
    from sample_run import write_sample_run

    run = write_sample_run(tmp_path / "run")
    assert cli.main(["report", str(run)]) == 0
    new = capsys.readouterr()
    assert cli.main(["report", "--out", str(run)]) == 0
    old = capsys.readouterr()
    assert old.out == new.out and str(run / "report" / "index.html") in old.out
    assert _deprecations(new.err) == []
    assert _deprecations(old.err) == [
        f"serlib: serlib report --out RUN_DIR is deprecated; use serlib report {run}"
    ]


def test_download_old_to_works_with_one_deprecation_line(monkeypatch, tmp_path: Path, capsys) -> None:
    from serlib.data import download

    calls = []
    monkeypatch.setattr(download, "download", lambda *args, **kw: calls.append((args, kw)) or Path(args[1]))
    assert cli.main(["download", "toy", "--out", str(tmp_path), "--keep-archive"]) == 0
    assert _deprecations(capsys.readouterr().err) == []
    assert cli.main(["download", "toy", "--to", str(tmp_path), "--keep-archive"]) == 0
    assert _deprecations(capsys.readouterr().err) == ["serlib: serlib download --to is deprecated; use --out"]
    assert calls[0] == calls[1] == (("toy", tmp_path), {"url": None, "keep_archive": True})
    assert cli.main(["download", "toy"]) == 2  # neither: an error naming the new spelling
    assert "--out DIR" in capsys.readouterr().err


@pytest.mark.parametrize(("task", "handler"), [("svm", "_cmd_svm"), ("epochs", "_cmd_epochs")])
def test_baseline_verb_works_with_one_deprecation_line(task, handler, monkeypatch, tmp_path, capsys) -> None:
    seen = []
    monkeypatch.setattr(cli, handler, lambda args: seen.append(cli._config(args, log_file=False)) or 0)
    argv = ["--preset", "demo", "--out", str(tmp_path)]
    assert cli.main([task, *argv]) == 0
    assert _deprecations(capsys.readouterr().err) == []
    assert cli.main(["baseline", task, *argv]) == 0
    assert _deprecations(capsys.readouterr().err) == [
        f"serlib: serlib baseline {task} is deprecated; use serlib {task}"
    ]
    assert seen[0] == seen[1] and seen[0].output_dir == str(tmp_path)


def _two_grids(tmp_path: Path) -> Path:
    """Two tiny stored grids, ``x`` and ``y``, and their speakers' CSV."""
    from stored_runs import write_grid

    tables = [
        write_grid(
            tmp_path / name,
            name,
            {1: ["a"], 2: ["b"], 3: ["c"]},
            {c: dict.fromkeys("abc", p) for c in ("BL", "U")},
            conditions=(("BL", "none"), ("U", "other")),
            rng_seed=i,
        )
        for i, (name, p) in enumerate((("x", 0.5), ("y", 0.7)))
    ]
    csv = tmp_path / "speakers.csv"
    pd.concat(tables).to_csv(csv, index=False)
    return csv


def test_pool_old_spellings_work_with_one_deprecation_line_each(monkeypatch, tmp_path: Path, capsys) -> None:
    from serlib.evidence import speakers

    csv = _two_grids(tmp_path)
    config = tmp_path / "grid.yaml"
    demo = config_module.override(config_module.resolve("demo", None), output_dir=str(tmp_path / "x"))
    config.write_text(config_yaml.dumps(demo), encoding="utf-8")
    read = []  # a configuration's speakers need its corpora; here they are the CSV's

    def speaker_table(configuration):
        read.append(configuration.output_dir)
        return speakers.read_speaker_csv(csv)

    monkeypatch.setattr(speakers, "speaker_table", speaker_table)
    folders = [str(tmp_path / "x"), str(tmp_path / "y")]
    assert cli.main(["pool", *folders, "--speakers", str(csv), "--out", str(tmp_path / "new")]) == 0
    new = capsys.readouterr()
    assert _deprecations(new.err) == [] and "Holm" in new.out and read == []
    # a configuration through --speakers (the new spelling of pool's --config)
    assert cli.main(["pool", *folders, "--speakers", str(config), "--out", str(tmp_path / "c1")]) == 0
    via_speakers = capsys.readouterr()
    assert _deprecations(via_speakers.err) == [] and read == [demo.output_dir]
    assert cli.main(["pool", *folders, "--config", str(config), "--out", str(tmp_path / "c2")]) == 0
    via_config = capsys.readouterr()
    assert _deprecations(via_config.err) == [
        "serlib: serlib pool --config CONFIG is deprecated; use --speakers CONFIG"
    ]
    assert via_config.out == via_speakers.out == new.out and read == [demo.output_dir] * 2
    # no --out: the old default folder, runs/pool, with one line
    monkeypatch.chdir(tmp_path)
    assert cli.main(["pool", *folders, "--speakers", str(csv)]) == 0
    old = capsys.readouterr()
    assert old.out == new.out and (tmp_path / "runs" / "pool" / "pool.md").is_file()
    assert _deprecations(old.err) == ["serlib: serlib pool without --out is deprecated; use --out runs/pool"]
    assert (tmp_path / "new" / "pool.md").read_text() == (tmp_path / "runs" / "pool" / "pool.md").read_text()
    assert cli.main(["pool", *folders, "--dry-run"]) == 0  # a dry run writes nothing: no line
    assert _deprecations(capsys.readouterr().err) == []

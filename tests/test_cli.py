"""The command line's surface (issue 37): one verb per product, ``--out`` always the output folder
(``output_dir``), run folders as positional RUN_DIR, an example in every verb's ``--help``, and the old
spellings still accepted with a deprecation line."""

from __future__ import annotations

from pathlib import Path

import pytest

from serlib.app import cli


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


def test_run_folders_are_positional_and_old_spellings_warn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    parser = cli.build_parser()
    assert parser.parse_args(["report", "runs/demo"]).run_dir == Path("runs/demo")
    assert parser.parse_args(["table", "runs/demo", "--svm"]).svm
    assert (
        cli.main(["report", "--out", str(tmp_path)]) == 2
    )  # no run there: an error naming it, after the warning
    err = capsys.readouterr().err
    assert "--out RUN_DIR is deprecated" in err and str(tmp_path) in err
    assert cli.main(["download", "nonsense", "--to", str(tmp_path)]) == 2
    assert "serlib download --to is deprecated; use --out" in capsys.readouterr().err
    assert cli.main(["download", "nonsense"]) == 2
    assert "--out DIR" in capsys.readouterr().err

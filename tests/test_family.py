"""``serlib pool --family FILE`` (serlib.evidence.family): the declared family is exactly what is
tested; a missing member, an extra folder and an unmatched skip are errors naming them; a link or a
relative path names its member's folder."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
import yaml
from stored_runs import write_grid

from serlib.app import cli
from serlib.evidence import family


def _grids(tmp_path) -> pd.Series:
    tables = [
        write_grid(
            tmp_path / "runs" / n,
            n,
            {1: ["a"], 2: ["b"], 3: ["c"]},
            {"BL": {s: 0.5 for s in "abc"}, "U": {s: p for s in "abc"}, "C": {s: 0.5 for s in "abc"}},
            rng_seed=i,
        )
        for i, (n, p) in enumerate((("x", 0.7), ("y", 0.6)))
    ]
    csv = tmp_path / "speakers.csv"
    pd.concat(tables).to_csv(csv, index=False)
    return csv


def _family(tmp_path, members=None, skips=None) -> object:
    members = members or [
        {"folder": "runs/x", "comparison": "U - BL", "role": "AE", "joined": "2026-12-05", "why": "declared"},
        {"folder": "runs/x", "comparison": "C - BL", "role": "control"},
        {"folder": "runs/y", "comparison": "U - BL", "role": "AE"},
        {"folder": "runs/y", "comparison": "C - BL", "role": "control"},
    ]
    path = tmp_path / "family.yaml"
    path.write_text(yaml.safe_dump({"members": members, "skips": skips or [], "pool": {"conditions": ["U"]}}))
    return path


def _pool(tmp_path, csv, path, *folders) -> int:
    args = ["pool", *map(str, folders), "--family", str(path), "--speakers", str(csv)]
    return cli.main([*args, "--out", str(tmp_path / "out")])


def test_the_declared_family_is_tested_and_pooled(tmp_path, capsys) -> None:
    csv = _grids(tmp_path)
    path = _family(tmp_path)
    assert _pool(tmp_path, csv, path) == 0
    text = capsys.readouterr().out
    assert "Holm-adjusted over the 4 comparisons" in text and "HKSJ" in text
    # the same folders given through a link and a relative path match their members
    (tmp_path / "link").symlink_to(tmp_path / "runs" / "x")
    relative = (tmp_path / "runs" / "y").relative_to(tmp_path)
    import os

    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert _pool(tmp_path, csv, path, tmp_path / "link", relative) == 0
    finally:
        os.chdir(here)
    assert capsys.readouterr().out == text


def test_an_extra_folder_a_missing_member_and_an_unmatched_skip_are_errors_naming_them(
    tmp_path, capsys
) -> None:
    csv = _grids(tmp_path)
    path = _family(tmp_path)
    write_grid(
        tmp_path / "runs" / "z",
        "z",
        {1: ["d"], 2: ["e"]},
        {c: {"d": 0.5, "e": 0.5} for c in ("BL", "U", "C")},
    )
    runs = tmp_path / "runs"
    assert _pool(tmp_path, csv, path, runs / "x", runs / "y", runs / "z") == 2
    assert "runs/z']: no member" in capsys.readouterr().err
    assert _pool(tmp_path, csv, path, runs / "x") == 2
    error = capsys.readouterr().err
    assert "runs/y']" in error and "not given" in error
    shutil.rmtree(runs / "y" / "results" / "within" / "C")  # a declared member without runs
    assert _pool(tmp_path, csv, path) == 2
    assert "y:within C - BL (all)" in capsys.readouterr().err
    skipped = _family(tmp_path, skips=[{"folder": "runs/elsewhere", "setting": "within"}])
    assert _pool(tmp_path, csv, skipped) == 2
    assert "elsewhere:within" in capsys.readouterr().err
    shutil.rmtree(runs / "x")
    assert _pool(tmp_path, csv, path) == 2
    assert "x:within U - BL (all)" in capsys.readouterr().err


def test_an_undeclared_comparison_or_another_role_is_an_error(tmp_path) -> None:
    csv = _grids(tmp_path)
    speakers = pd.read_csv(csv, dtype=str)
    members = [
        {"folder": "runs/x", "comparison": "U - BL", "role": "AE"},
        {"folder": "runs/y", "comparison": "U - BL", "role": "AE"},
        {"folder": "runs/y", "comparison": "C - BL", "role": "control"},
    ]
    with pytest.raises(family.FamilyError, match=r"x:within C - BL \(all\)"):
        family.pool_family(family.load(_family(tmp_path, members)), speakers)
    members.append({"folder": "runs/x", "comparison": "C - BL", "role": "AE"})  # C's AE is the tested corpus'
    with pytest.raises(family.FamilyError, match=r"x:within C - BL.*another role"):
        family.pool_family(family.load(_family(tmp_path, members)), speakers)


def test_the_committed_family_declares_nine_members_six_first_and_the_discovery_skip() -> None:
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "results" / "family.yaml"
    declared = family.load(path)
    joined = pd.Series([m.joined for m in declared.members]).value_counts().to_dict()
    assert len(declared.members) == 9 and joined == {"six": 6, "nine": 3}
    assert all(m.why for m in declared.members)
    assert {m.role for m in declared.members if m.condition == "C"} == {"control"}
    assert [(f.name, s) for f, s, _ in declared.skips] == [("emodb", "cross")]
    assert "POST HOC" in path.read_text(encoding="utf-8")

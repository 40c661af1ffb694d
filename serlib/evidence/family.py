"""The confirmatory family declared in a committed file (``results/family.yaml``), and its checks.

A family defined by command-line arguments can change without a trace: a folder left out, another
added, a ``--skip`` that matches nothing (and so lets exploratory runs in). ``load`` reads the declared
family: its members (folder, setting, comparison, score, role, when and why each joined), its skips
(folder, setting, why) and what is pooled. ``pool_family`` runs ``confirmatory.pool`` on exactly those
folders and refuses, each with an error naming it:

* a member whose folder is missing or whose comparison has no finished runs;
* a folder given that is no member's (``extra``), and a member folder not given;
* a skip that matches no member folder and setting;
* a comparison the folders yield that is neither declared nor skipped.

Folders are resolved relative to the family file, and every path is compared resolved, so a symbolic
link or a relative path names the same folder as its target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from serlib.evidence import confirmatory
from serlib.protocol.labeled import ProtocolError

ROLES = ("AE", "control")


class FamilyError(ProtocolError):
    """The declared family and the folders or runs disagree; the message names the member or folder."""


@dataclass(frozen=True)
class Declared:
    """One declared member: ``condition - baseline`` on ``score`` of ``setting`` in ``folder``."""

    folder: Path
    setting: str
    condition: str
    baseline: str
    score: str
    role: str
    joined: str = ""
    why: str = ""

    def label(self) -> str:
        return f"{self.folder.name}:{self.setting} {self.condition} - {self.baseline} ({self.score})"


@dataclass
class Family:
    path: Path
    members: list[Declared]
    skips: list[tuple[Path, str, str]]  # folder, setting, why
    pool_conditions: list[str] = field(default_factory=list)
    pool_score: str = confirmatory.ALL

    def folders(self) -> list[Path]:
        """The member folders, in declaration order, once each."""
        return list(dict.fromkeys(m.folder for m in self.members))


def _need(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if value is None or str(value).strip() == "":
        raise FamilyError(f"{where}: '{key}' is missing")
    return str(value).strip()


def load(path: str | Path) -> Family:
    """The family declared in ``path`` (YAML; folders relative to the file)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise FamilyError(f"{path} cannot be read as YAML ({error})") from None
    if not isinstance(data, dict) or not data.get("members"):
        raise FamilyError(
            f"{path}: declares no 'members' (a list of folder, setting, comparison, score, role)"
        )
    base = path.parent
    members = []
    for i, entry in enumerate(data["members"]):
        where = f"{path}: members[{i}]"
        condition, minus, baseline = _need(entry, "comparison", where).partition(" - ")
        if not minus:
            raise FamilyError(f"{where}: comparison {entry['comparison']!r} is not 'CONDITION - BASELINE'")
        role = _need(entry, "role", where)
        if role not in ROLES:
            raise FamilyError(f"{where}: role {role!r} is not one of {ROLES}")
        members.append(
            Declared(
                folder=(base / _need(entry, "folder", where)).resolve(),
                setting=str(entry.get("setting", "within")),
                condition=condition.strip(),
                baseline=baseline.strip(),
                score=str(entry.get("score", confirmatory.ALL)),
                role=role,
                joined=str(entry.get("joined", "")),
                why=str(entry.get("why", "")),
            )
        )
    skips = [
        (
            (base / _need(s, "folder", f"{path}: skips[{i}]")).resolve(),
            _need(s, "setting", f"{path}: skips[{i}]"),
            str(s.get("why", "")),
        )
        for i, s in enumerate(data.get("skips") or [])
    ]
    pooled = data.get("pool") or {}
    conditions = pooled.get("conditions") or []
    return Family(
        path, members, skips, [str(c) for c in conditions], str(pooled.get("score", confirmatory.ALL))
    )


def check_folders(family: Family, given: Sequence[str | Path] | None) -> list[Path]:
    """The folders to read: the members' (``given`` must name exactly them, in any spelling)."""
    declared = family.folders()
    if given:
        resolved = {Path(g).resolve(): Path(g) for g in given}
        extra = [str(resolved[r]) for r in resolved if r not in declared]
        if extra:
            raise FamilyError(f"{extra}: no member of {family.path} has this folder (an extra folder)")
        absent = [str(d) for d in declared if d not in resolved]
        if absent:
            raise FamilyError(f"{family.path}: the member folders {absent} are not given")
    for folder in declared:
        if not folder.exists():
            names = [m.label() for m in family.members if m.folder == folder]
            raise FamilyError(f"{folder}: missing, the folder of the members {names} of {family.path}")
    unmatched = [f"{f}:{s}" for f, s, _ in family.skips if not any(m.folder == f for m in family.members)]
    if unmatched:
        raise FamilyError(f"{family.path}: the skips {unmatched} match no member folder")
    return declared


def pool_family(family: Family, speakers: pd.DataFrame, given: Sequence[str | Path] | None = None) -> Any:
    """``confirmatory.pool`` on exactly the declared family; a member without runs, an undeclared
    comparison or an unmatched skip is a ``FamilyError`` naming it."""
    folders = check_folders(family, given)
    scores = sorted({m.score for m in family.members} - {confirmatory.ALL})
    result = confirmatory.pool(
        folders,
        speakers,
        conditions=sorted({m.condition for m in family.members}),
        pool_conditions=family.pool_conditions or None,
        skip=[f"{f}:{s}" for f, s, _ in family.skips],
        scores=scores,
        pool_score=family.pool_score,
    )
    found = {
        (Path(r["folder"]).resolve(), r["setting"], r["condition"], r["baseline"], r["score"]): r["role"]
        for r in result.family.to_dict("records")
    }
    declared = {(m.folder, m.setting, m.condition, m.baseline, m.score): m for m in family.members}
    missing = [m.label() for key, m in declared.items() if key not in found]
    if missing:
        raise FamilyError(f"{family.path}: the members {missing} have no finished runs in their folders")
    undeclared = [f"{k[0].name}:{k[1]} {k[2]} - {k[3]} ({k[4]})" for k in found if k not in declared]
    if undeclared:
        raise FamilyError(
            f"{family.path}: the folders yield comparisons that are not declared: {undeclared}; declare or skip them"
        )
    roles = [m.label() for key, m in declared.items() if found[key] != m.role]
    if roles:
        raise FamilyError(f"{family.path}: the members {roles} have another role in their protocol")
    return result


def restrict(family: Family, folders: Sequence[str | Path]) -> Family:
    """The members (and skips) of ``family`` whose folder is one of ``folders``: the part of a family
    whose evidence is already there, tested on the declared comparisons while other members' grids are
    still running. Its Holm adjustment is not the family's (fewer members), so callers print unadjusted
    p-values for it. A folder that is no member's is a ``FamilyError``."""
    wanted = {Path(f) if Path(f).is_absolute() else (family.path.parent / f) for f in folders}
    wanted = {w.resolve() for w in wanted}
    extra = sorted(str(w) for w in wanted if w not in family.folders())
    if extra:
        raise FamilyError(f"{extra}: no member of {family.path} has this folder")
    return Family(
        family.path,
        [m for m in family.members if m.folder in wanted],
        [s for s in family.skips if s[0] in wanted],
        family.pool_conditions,
        family.pool_score,
    )

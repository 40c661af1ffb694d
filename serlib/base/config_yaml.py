"""Configurations as commented YAML: every value with its documented reason, and where it departs from
the paper preset, the departure's reason and the paper's value.

``serlib config show --preset paper`` prints ``dumps(load_preset("paper"))``; ``configs/paper.yaml`` and
``configs/demo.yaml`` are exactly that output (tests/test_config.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from serlib.base.config import DEPARTURES, Config, load_preset
from serlib.base.files import write_text

_ABSENT = object()


_LONGEST_QUOTED_VALUE = 60  # longer paper values are named, not quoted, in a departure comment


def _field_comment(description: str, value: Any, paper: Any, reason: str | None) -> str:
    """The comment of one field: its documented reason where the value is the paper preset's; where it
    departs, the departure's reason (if known) and the paper's value with the paper's reason."""
    if paper is _ABSENT or value == paper:
        return description
    quoted = json.dumps(paper, ensure_ascii=False)
    paper_part = (
        f"paper: {quoted}" if len(quoted) <= _LONGEST_QUOTED_VALUE else "differs from the paper preset"
    )
    if description and len(quoted) <= _LONGEST_QUOTED_VALUE:
        paper_part += f" ({description})"
    return f"{reason}; {paper_part}" if reason else paper_part


def _commented_lines(
    model: BaseModel,
    indent: int,
    paper: Any = None,
    reasons: dict[str, str] | None = None,
    path: str = "",
) -> list[str]:
    """YAML lines of a model, each field followed by a comment (``_field_comment``)."""
    lines: list[str] = []
    pad = "  " * indent
    data = model.model_dump(mode="json")
    paper_data = paper.model_dump(mode="json") if isinstance(paper, BaseModel) else None
    reasons = reasons or {}
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        dotted = f"{path}{name}"
        paper_value = paper_data.get(name, _ABSENT) if paper_data is not None else _ABSENT
        comment = _field_comment(
            (field.description or "").replace("\n", " "), data[name], paper_value, reasons.get(dotted)
        )
        if isinstance(value, BaseModel):
            doc = (type(value).__doc__ or "").strip().splitlines()
            if doc:
                lines.append(f"{pad}# {doc[0]}")
            lines.append(f"{pad}{name}:")
            child = getattr(paper, name, None) if paper is not None else None
            lines.extend(_commented_lines(value, indent + 1, child, reasons, f"{dotted}."))
            continue
        dumped = yaml.safe_dump({name: data[name]}, sort_keys=False, allow_unicode=True, width=1000)
        dumped_lines = dumped.rstrip("\n").splitlines()
        if len(dumped_lines) == 1 and comment:
            lines.append(f"{pad}{dumped_lines[0]}  # {comment}")
        else:
            if comment:
                lines.append(f"{pad}# {comment}")
            lines.extend(pad + line for line in dumped_lines)
    return lines


def dumps(config: Config, comments: bool = True) -> str:
    """The configuration as YAML; with ``comments`` every documented field carries its reason, and a
    value that departs from the paper preset says so, with the paper's value and the departure's reason
    (the presets' reasons are in ``DEPARTURES``)."""
    if not comments:
        return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    header = [
        f"# serlib configuration '{config.name}' (validated; unknown keys are errors).",
        "# Comments: the documented choice where the value is the paper's; where it departs from the",
        "# paper preset, the reason (when known) and 'paper: <value>' with the paper's reason.",
    ]
    paper = load_preset("paper")
    reasons = DEPARTURES.get(config.name, {})
    return "\n".join(header + _commented_lines(config, 0, paper, reasons)) + "\n"


def save(config: Config, path: str | os.PathLike[str]) -> Path:
    """Write a configuration as commented YAML (atomically: temp file, then rename)."""
    return write_text(dumps(config), path)

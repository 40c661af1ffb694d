"""Validated configurations as commented YAML: every value with its field's description, and where it
departs from the paper preset, the paper's value.

``serlib config show`` prints ``dumps(...)`` of a preset or file: the configuration as serlib reads it,
every key filled in. The presets themselves are hand-written (``serlib/presets/*.yaml``, linked from
``configs/``), with a reason per departure and links to ``docs/configuration.md``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from serlib.base.config import Config, load_preset
from serlib.base.files import write_text

_ABSENT = object()


_LONGEST_QUOTED_VALUE = 60  # longer paper values are named, not quoted, in a departure comment


def _field_comment(description: str, value: Any, paper: Any) -> str:
    """The comment of one field: its description where the value is the paper preset's; where it
    departs, the paper's value with the description."""
    if paper is _ABSENT or value == paper:
        return description
    quoted = json.dumps(paper, ensure_ascii=False)
    paper_part = (
        f"paper: {quoted}" if len(quoted) <= _LONGEST_QUOTED_VALUE else "differs from the paper preset"
    )
    if description and len(quoted) <= _LONGEST_QUOTED_VALUE:
        paper_part += f" ({description})"
    return paper_part


def _commented_lines(
    model: BaseModel,
    indent: int,
    paper: Any = None,
) -> list[str]:
    """YAML lines of a model, each field followed by a comment (``_field_comment``)."""
    lines: list[str] = []
    pad = "  " * indent
    data = model.model_dump(mode="json")
    paper_data = paper.model_dump(mode="json") if isinstance(paper, BaseModel) else None
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        paper_value = paper_data.get(name, _ABSENT) if paper_data is not None else _ABSENT
        shown = data.get(name)  # a key dumped only when set (config_compat.dumped_only_when_set) is None
        comment = _field_comment((field.description or "").replace("\n", " "), shown, paper_value)
        if isinstance(value, BaseModel):
            doc = (type(value).__doc__ or "").strip().splitlines()
            if doc:
                lines.append(f"{pad}# {doc[0]}")
            lines.append(f"{pad}{name}:")
            child = getattr(paper, name, None) if paper is not None else None
            lines.extend(_commented_lines(value, indent + 1, child))
            continue
        dumped = yaml.safe_dump({name: shown}, sort_keys=False, allow_unicode=True, width=1000)
        dumped_lines = dumped.rstrip("\n").splitlines()
        if len(dumped_lines) == 1 and comment:
            lines.append(f"{pad}{dumped_lines[0]}  # {comment}")
        else:
            if comment:
                lines.append(f"{pad}# {comment}")
            lines.extend(pad + line for line in dumped_lines)
    return lines


def dumps(config: Config, comments: bool = True) -> str:
    """The configuration as YAML; with ``comments`` every documented field carries its description, and
    a value that departs from the paper preset says so, with the paper's value."""
    if not comments:
        return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    header = [
        f"# serlib configuration '{config.name}' (validated; unknown keys are errors).",
        "# Comments: each field's description; where a value departs from the paper preset, 'paper: <value>'.",
        "# The reasons of the presets' choices: serlib/presets/*.yaml and docs/configuration.md.",
    ]
    paper = load_preset("paper")
    return "\n".join(header + _commented_lines(config, 0, paper)) + "\n"


def save(config: Config, path: str | os.PathLike[str]) -> Path:
    """Write a configuration as commented YAML (atomically: temp file, then rename)."""
    return write_text(dumps(config), path)


def comments(path: str | os.PathLike[str]) -> dict[str, str]:
    """The end-of-line comment of every key of a hand-written YAML file, by dotted key (e.g. the reason
    of ``acnn.epochs: 15  # minutes on 2 cores`` in the demo preset); list items are skipped."""
    found: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if not text or text.startswith(("#", "-")) or ":" not in text:
            continue
        indent = len(line) - len(line.lstrip(" "))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        key = text.split(":", 1)[0].strip()
        stack.append((indent, key))
        _, _, comment = text.partition("  # ")
        if comment:
            found[".".join(name for _, name in stack)] = comment.strip()
    return found

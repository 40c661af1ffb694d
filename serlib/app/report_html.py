"""The report's HTML pieces: escaping, numbers, values and tables (shared by its sections)."""

from __future__ import annotations

import html
import json
from typing import Any


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _number(value: Any, digits: int = 2) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return _e(value) if value not in (None, "") else "–"
    return "–" if number != number else f"{number:.{digits}f}"


def _value(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    if len(text) <= 70:
        return f"<code>{_e(text)}</code>"
    pretty = json.dumps(value, ensure_ascii=False, indent=1)
    return f"<details><summary><code>{_e(text[:60])} …</code></summary><pre>{_e(pretty)}</pre></details>"


def _table(headers: list[str], rows: list[list[str]], table_id: str = "") -> str:
    ident = f" id='{table_id}'" if table_id else ""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

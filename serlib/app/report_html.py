"""The report's HTML pieces: escaping, numbers, values and tables (shared by its sections), and the
jinja2 templates (``serlib/app/templates/*.html.j2``, package data) with autoescape on."""

from __future__ import annotations

import functools
import html
import json
from typing import Any

import jinja2
from markupsafe import Markup

__all__ = ["Markup", "render"]


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("serlib.app", "templates"),
        autoescape=True,  # every value is escaped unless it is Markup (HTML that _e already escaped)
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
    )


def render(template: str, **values: Any) -> str:
    """A template of ``serlib/app/templates/`` filled with ``values`` (autoescaped)."""
    return _environment().get_template(template).render(**values)


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
    """A table through ``templates/table.html.j2``: headers are text and are escaped there; cells are
    HTML fragments the caller built with ``_e``/``_number``/``_value``."""
    cells = [[Markup(cell) for cell in row] for row in rows]
    return render("table.html.j2", headers=[str(h) for h in headers], rows=cells, table_id=table_id)

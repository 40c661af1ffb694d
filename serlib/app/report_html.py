"""The report's HTML: the jinja2 templates of ``serlib/app/templates/`` (package data), which write all
markup and escape every value (autoescape), and the plain text of numbers and JSON values they show."""

from __future__ import annotations

import functools
import json
from typing import Any

import jinja2
from markupsafe import Markup

__all__ = ["json_value", "number", "render"]


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("serlib.app", "templates"),
        autoescape=True,  # every value is escaped, except what render() returned (HTML of a template)
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
    )


def render(template: str, **values: Any) -> Markup:
    """A template of ``serlib/app/templates/`` filled with ``values`` (autoescaped); Markup, so that a
    section rendered here goes into the page's template as the HTML it is."""
    return Markup(_environment().get_template(template).render(**values))


def number(value: Any, digits: int = 2) -> str:
    """A number with ``digits`` decimals, '–' where there is none (missing or NaN), other text as it is."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        return str(value) if value not in (None, "") else "–"
    return "–" if result != result else f"{result:.{digits}f}"


def json_value(value: Any) -> dict[str, str]:
    """A configuration value as JSON: ``text`` whole where short, else its head with ``pretty`` the
    indented whole (``json_value`` of ``templates/macros.html.j2`` folds it into a details element)."""
    text = json.dumps(value, ensure_ascii=False)
    if len(text) <= 70:
        return {"text": text, "pretty": ""}
    return {"text": text[:60], "pretty": json.dumps(value, ensure_ascii=False, indent=1)}

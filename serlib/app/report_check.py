"""The report's section on ``serlib check``: each Table 1 cell against the shipped reference's
expected range (serlib.protocol.check), through ``templates/section_check.html.j2``."""

from __future__ import annotations

from pathlib import Path

from markupsafe import Markup

from serlib.app.report_html import number, render


def check_section(out: Path) -> Markup:
    """``serlib check`` of the run: each Table 1 cell against the shipped reference's expected range."""
    from serlib.protocol import check  # noqa: PLC0415 - scipy's statistics, only where a report is built

    try:
        result = check.check_run(out)
    except (ValueError, OSError) as error:
        return render("section_check.html.j2", error=str(error))
    rows = [
        {
            "setting": str(row["setting"]),
            "condition": str(row["condition"]),
            "quantity": "Δ vs BL" if row["quantity"] == "delta" else "mean",
            "yours": f"{number(row['yours'])} ({row['n_yours']})",
            "reference": f"{number(row['reference'])} ({row['n_reference']})",
            "sd": number(row["sd"]),
            "interval": "–" if row["low"] != row["low"] else f"[{number(row['low'])}, {number(row['high'])}]",
            "verdict": str(row["verdict"]),
            "outside": row["verdict"] == check.OUTSIDE,
        }
        for row in (result.cells.to_dict("records") if result.comparable else [])
    ]
    return render(
        "section_check.html.j2",
        error=None,
        ok=result.exit_status == 0,
        verdict=result.verdict,
        comparable=result.comparable,
        differences=list(result.differences),
        reference=str(result.reference),
        level=f"{100 * result.level:.2f}",
        rows=rows,
        notes=list(result.notes),
    )

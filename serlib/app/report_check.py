"""The report's section on ``serlib check``: the verdict and the check's power (the shift of one cell it
flags with 80 % probability), then each Table 1 cell against the shipped reference, seed by seed where
the reference has the run's seeds, by the expected range for new seeds (serlib.evidence.check), through
``templates/section_check.html.j2``."""

from __future__ import annotations

from pathlib import Path

from markupsafe import Markup

from serlib.app.report_html import number, render


def check_section(out: Path, references: Path | None = None) -> Markup:
    """``serlib check`` of the run: each Table 1 cell against the shipped reference's expected range."""
    from serlib.evidence import check, check_text  # noqa: PLC0415 - scipy's statistics, only for a report

    try:
        result = check.check_run(out, references=references)
    except (ValueError, OSError) as error:
        return render("section_check.html.j2", error=str(error))
    rows = [
        {
            "setting": str(row["setting"]),
            "condition": str(row["condition"]),
            "quantity": "Δ vs BL" if row["quantity"] == "delta" else "mean",
            "yours": f"{number(row['yours'])} ({row['n_yours']})",
            "reference": f"{number(row['reference'])} ({row['n_reference']})",
            "rule": str(row["rule"]),
            "allowed": check_text.allowed_text(row),
            "shift": number(row["shift_80"]),
            "verdict": str(row["verdict"]),
            "outside": row["verdict"] in (check.OUTSIDE, check.NOT_SAME),
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
        power=check_text.power_lines(result) if result.comparable else [],
        problems=list(result.completeness.problems) if result.completeness is not None else [],
        rows=rows,
        notes=list(result.notes),
    )

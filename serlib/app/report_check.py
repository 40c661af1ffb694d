"""The report's section on ``serlib check``: each Table 1 cell against the shipped reference's
expected range (serlib.protocol.check)."""

from __future__ import annotations

from pathlib import Path

from serlib.app.report_html import _e, _number, _table


def check_section(out: Path) -> str:
    """``serlib check`` of the run: each Table 1 cell against the shipped reference's expected range."""
    from serlib.protocol import check  # noqa: PLC0415 - scipy's statistics, only where a report is built

    head = "<h2 id='check'>Does this run agree with the reference? (<code>serlib check</code>)</h2>"
    try:
        result = check.check_run(out)
    except (ValueError, OSError) as error:
        return head + f"<p class='missing'>No check: {_e(error)}</p>"
    verdict = f"<p class='{'ok' if result.exit_status == 0 else 'bad'}'>{_e(result.verdict)}</p>"
    if not result.comparable:
        items = "".join(f"<li>{_e(line)}</li>" for line in result.differences)
        return (
            head + verdict + f"<p>Not comparable with a shipped reference; what differs:</p><ul>{items}</ul>"
        )
    rows = []
    for row in result.cells.to_dict("records"):
        delta = row["quantity"] == "delta"
        interval = "–" if row["low"] != row["low"] else f"[{_number(row['low'])}, {_number(row['high'])}]"
        rows.append(
            [
                _e(row["setting"]),
                _e(row["condition"]),
                "Δ vs BL" if delta else "mean",
                f"{_number(row['yours'])} ({row['n_yours']})",
                f"{_number(row['reference'])} ({row['n_reference']})",
                _number(row["sd"]),
                interval,
                f"<span class='{'bad' if row['verdict'] == check.OUTSIDE else 'ok'}'>{_e(row['verdict'])}</span>",
            ]
        )
    rule = (
        f"<p>Reference <b>{_e(result.reference)}</b> (<code>serlib/references/</code>). Expected range: reference "
        f"mean ± t<sub>n_ref-1</sub> · sd<sub>ref</sub> · √(1/n<sub>yours</sub> + 1/n<sub>ref</sub>), at "
        f"{100 * result.level:.2f} % per cell (95 % for all cells together). UAR in %.</p>"
    )
    table = _table(
        [
            "setting",
            "condition",
            "quantity",
            "yours (seeds)",
            "reference (seeds)",
            "ref. sd",
            "expected range",
            "verdict",
        ],
        rows,
        "check",
    )
    differs = "".join(f"<li>{_e(line)}</li>" for line in result.differences)
    notes = "".join(f"<p class='note'>{_e(note)}</p>" for note in result.notes)
    return (
        head + verdict + rule + table + (f"<p>What differs:</p><ul>{differs}</ul>" if differs else "") + notes
    )

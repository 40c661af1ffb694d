"""``serlib check`` as Markdown (the terminal, ``make demo``'s closing lines and notebook 04): the verdict,
the check's power under it, one row per Table 1 cell and rule, the seeds that differ, what is missing."""

from __future__ import annotations

import math
from typing import Any

from serlib.evidence import check_power
from serlib.evidence.check_seeds import FAMILY_ALPHA, INTERVAL, SEED_BY_SEED

# ``result`` below is a ``check.CheckResult`` (typed Any: serlib.evidence.check imports this module).
CheckResult = Any


def number(value: Any, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:+.2f}" if sign else f"{value:.2f}"


def power_lines(result: CheckResult) -> list[str]:
    """What the check can see: the shift of one cell (points of UAR) that it flags with 80 % probability,
    for the least and the most sensitive cell of this run's seeds and rules."""
    if not result.power.get("cells"):
        return []
    (worst_cell, worst), (best_cell, best) = result.power["worst"], result.power["best"]
    rules = set(result.cells["rule"][result.cells["shift_80"].notna()])
    spread = (
        f" (least sensitive cell: {' '.join(worst_cell)}; most sensitive: {' '.join(best_cell)}, {_shift(best)})"
        if worst > best
        else ""
    )
    lines = [
        f"Power: a shift of any one cell's UAR by {_shift(worst)} or more is flagged with at least "
        f"{100 * check_power.POWER:.0f} % probability{spread}."
    ]
    seeds = result.seeds
    if SEED_BY_SEED in rules and len(seeds):
        if (seeds["rule"] == "exact").any():
            lines.append(
                "Seeds compared exactly: any change of a printed value (0.01 points) is flagged, with "
                "probability 1."
            )
        loose = seeds[seeds["rule"] == "tolerance"]
        if len(loose):
            tolerance = result.power["tolerance"]
            tol, bound, sd = tolerance["uar"], tolerance["drift_bound_uar"], tolerance["drift_sd_uar"]
            lines.append(
                f"Seeds compared within ±{tol:.2f}: a shift d moves each seed by about d and is flagged when "
                f"|d + drift| > {tol:.2f} in a seed; the 80 % shift takes the cross-CPU drift as normal with "
                f"the measured sd {sd:.2f} per seed, independent over seeds; whatever the drift within its "
                f"measured bound ±{bound:.2f}, a shift above {tol + bound:.2f} is always flagged "
                "(docs/reliability.md section 7)."
            )
    if INTERVAL in rules:
        lines.append(
            "New seeds: noncentral t power of the prediction interval (the user's seeds varying as the "
            "reference's)."
        )
    return lines


def _shift(value: float) -> str:
    return "0.01 points (any change)" if value <= check_power.PRINTED_STEP else f"{value:.2f} points"


def allowed_text(row: dict[str, Any]) -> str:
    delta = row["quantity"] == "delta"
    if row["rule"] == SEED_BY_SEED:
        return (
            f"{row['allowed']}; largest difference {number(row['max_difference'])}" if row["allowed"] else "–"
        )
    if math.isnan(row["low"]):
        return "–"
    return f"[{number(row['low'], delta)}, {number(row['high'], delta)}] (sd {number(row['sd'])})"


def markdown(result: CheckResult) -> str:
    """The check as Markdown: the verdict and its power, one table row per cell and rule, the seeds that
    differ, the runs missing, what differs from the reference, notes."""
    lines = [f"serlib check {result.run}: **{result.verdict}**"]
    if not result.comparable:
        lines += [
            "",
            f"The run's configuration is not the reference's{f' ({result.reference})' if result.reference else ''}: "
            "its numbers cannot be compared (exit status 3). What differs:",
            "",
            *[f"- {line}" for line in result.differences],
        ]
        return "\n".join(lines + _notes(result.notes)) + "\n"
    if result.completeness is not None and result.completeness.problems:
        lines += ["", *[f"- {problem}" for problem in result.completeness.problems]]
    power = power_lines(result)
    if power:
        lines += ["", *power]
    interval = (
        f" New seeds: reference mean ± t_(n_ref-1) · sd_ref · sqrt(1/n_yours + 1/n_ref) at "
        f"{100 * result.level:.2f} % per row ({100 * (1 - FAMILY_ALPHA):.0f} % for all together, Bonferroni)."
        if (result.cells["rule"] == INTERVAL).any() and (result.cells["low"].notna()).any()
        else ""
    )
    lines += [
        "",
        f"Reference: {result.reference}. Seed by seed: each of your seeds that the reference has, its UAR and "
        "its difference to BL against the reference's value for that seed (exactly on the same CPU family, "
        f"versions, oneDNN and threads; else within a cross-CPU tolerance).{interval} UAR in %, Δ = condition "
        "- BL paired by seed; 80 % shift: the shift of that row flagged with 80 % probability.",
        "",
        "| setting | condition | quantity | rule | yours (seeds) | reference (seeds) | allowed | verdict "
        "| 80 % shift |",
        "|---|---|---|---|---:|---:|---|---|---:|",
    ]
    for row in result.cells.to_dict("records"):
        delta = row["quantity"] == "delta"
        lines.append(
            f"| {row['setting']} | {row['condition']} | {'Δ vs BL' if delta else 'mean'} | {row['rule']} | "
            f"{number(row['yours'], delta)} ({row['n_yours']}) | {number(row['reference'], delta)} "
            f"({row['n_reference']}) | {allowed_text(row)} | {row['verdict']} | {number(row['shift_80'])} |"
        )
    lines += _seed_failures(result)
    if result.differences:
        lines += ["", "What differs between your run and the reference:", ""]
        lines += [f"- {line}" for line in result.differences]
    return "\n".join(lines + _notes(result.notes)) + "\n"


def _seed_failures(result: CheckResult, shown: int = 20) -> list[str]:
    seeds = result.seeds
    if seeds.empty or seeds["ok"].all():
        return [] if seeds.empty else ["", f"All {len(seeds)} per-seed values are within what is allowed."]
    failed = seeds[~seeds["ok"]]
    lines = [
        "",
        f"Per-seed values outside what is allowed ({len(failed)} of {len(seeds)}):",
        "",
        "| setting | condition | quantity | seed | yours | reference (CPU family) | difference | allowed |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for row in failed.head(shown).to_dict("records"):
        delta = row["quantity"] == "delta"
        allowed = "equal to 0.01" if row["rule"] == "exact" else f"±{row['allowed']:.2f}"
        lines.append(
            f"| {row['setting']} | {row['condition']} | {'Δ vs BL' if delta else 'mean'} | {row['seed']} | "
            f"{number(row['yours'], delta)} | {number(row['reference'], delta)} ({row['family']}) | "
            f"{number(row['difference'], True)} | {allowed} |"
        )
    if len(failed) > shown:
        lines.append(f"(and {len(failed) - shown} more)")
    return lines


def _notes(notes: list[str]) -> list[str]:
    return ["", *[f"Note: {note}" for note in notes]] if notes else []

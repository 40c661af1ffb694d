"""Confirmatory statistics of a report: a declared family, the speaker as the unit, Holm, one pooled answer.

The design, stated once (docs/results-real-speech.md cites it):

* **Unit: the speaker.** Every confirmatory test pairs a condition with the baseline over the test
  speakers: each speaker's UAR (``speakers.speaker_uars``: recall over the classes present in that
  speaker's test files) averaged over the seeds both conditions ran, then a paired t-test over the
  speakers (``metrics.paired_comparison``: scipy's ``ttest_rel`` and ``wilcoxon``, the MDD from
  statsmodels' noncentral-t power). Seeds of the ACNN share speakers, an AE, a training and a test set,
  so (speaker, seed) or (fold, seed) pairs, and utterance-level tests, overstate the evidence: they are
  printed only as **secondary** analyses, labelled so.
* **The family.** The confirmatory family of a report is declared before its numbers are read: every
  AE condition against the baseline (BL) per corpus and setting, and the control C against BL
  (``family_of``). Its p-values are Holm-adjusted together (statsmodels ``multipletests``,
  ``method="holm"``), and only adjusted p-values carry a verdict.
* **The pooled answer.** The paper's question, asked of every corpus with a within-corpus grid: the
  speaker-level AE - BL differences of each corpus give a mean and its variance (sd^2 / n); a
  DerSimonian-Laird random-effects meta-analysis (statsmodels ``combine_effects``) pools them, with the
  between-corpus heterogeneity (tau^2, I^2, Cochran's Q and its p) and the pooled MDD (two-sided z-test
  at alpha 0.05 and power 0.8 on the pooled standard error, statsmodels ``NormalIndPower``). With a
  handful of corpora that normal interval is anti-conservative, so the Hartung-Knapp-Sidik-Jonkman
  interval (``hksj_*``: the weighted residual variance of the corpus means about the pooled one as the
  standard error, t with k - 1 degrees of freedom; statsmodels' ``conf_int(use_t=True)``, its "wls"
  interval) and an MDD on the same footing (noncentral t, k - 1 df, statsmodels ``TTestPower``) are
  printed beside it; ``verdict_interval`` names the wider of the two, the one a verdict uses. A linear
  mixed model (statsmodels ``MixedLM``: difference ~ 1, random intercept per corpus) over all speakers
  is printed beside it as a check.
* **Variance components (secondary).** Per corpus, ``MixedLM`` on the (speaker, seed) differences
  (random intercept per speaker) splits the spread into speaker-to-speaker and seed-to-seed standard
  deviations: what more seeds can buy.

``pool`` reads run folders (``serlib pool RUN_DIR ...``), ``pool_markdown`` prints the tables and
``write_pool`` keeps ``family.csv``, ``speakers.csv``, ``pooled.csv``, ``pool.json`` and ``pool.md``.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.regression.mixed_linear_model import MixedLM
from statsmodels.stats.meta_analysis import combine_effects
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower, TTestPower

from serlib.base import metrics
from serlib.base.files import write_csv, write_json, write_text
from serlib.evidence.comparisons import format_number as _f
from serlib.evidence.comparisons import format_p as _p
from serlib.evidence.speakers import ALL, paired_by_speaker, predictions_of, speaker_uars
from serlib.evidence.table1 import incomplete_note
from serlib.protocol.labeled import ProtocolError

log = logging.getLogger(__name__)

ALPHA = 0.05
POWER = 0.8
NO_AE = ("none", "target")  # autoencoder sources that are not "other, unlabeled speech"

FAMILY_COLUMNS = (
    "corpus",
    "setting",
    "score",
    "condition",
    "baseline",
    "role",
    "speakers",
    "seeds",
    "condition_mean",
    "baseline_mean",
    "mean_difference",
    "ci_low",
    "ci_high",
    "t_p",
    "holm_p",
    "wilcoxon_p",
    "sd",
    "mdd",
    "pairs_speaker_seed",
    "t_p_speaker_seed",
    "sd_speaker",
    "sd_seed",
    "speakers_lacking_a_class",
    "folder",
)


@dataclass(frozen=True)
class Member:
    """One comparison of the declared confirmatory family."""

    corpus: str  # a label: the run folder's protocol name and test corpus
    folder: str
    setting: str
    condition: str
    baseline: str
    role: str  # "AE" (other unlabeled speech: the paper's claim) or "control" (AE on the tested corpus)
    score: str = ALL  # the test files scored: all of them, or a scoring subset (ASED: "common")


@dataclass
class PoolResult:
    family: pd.DataFrame
    speakers: pd.DataFrame  # one row per (corpus, setting, condition, speaker): the paired seed means
    pooled: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def holm(p_values: Any, alpha: float = ALPHA) -> np.ndarray:
    """Holm-adjusted p-values (statsmodels ``multipletests``, ``method="holm"``); NaN stays NaN."""
    values = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full(values.shape, np.nan)
    finite = np.isfinite(values)
    if finite.any():
        adjusted[finite] = multipletests(values[finite], alpha=alpha, method="holm")[1]
    return adjusted


def family_of(
    protocol: dict[str, Any],
    folder: str,
    conditions: list[str] | None = None,
    scores: Sequence[str] = (ALL,),
) -> list[Member]:
    """The declared family of one run folder: every non-baseline ACNN condition (or those of the named
    ``conditions`` it has) against the baseline, per setting and per ``score`` (``all`` and any scoring
    subset the folder's predictions have, e.g. ASED's ``common``); role "control" for an AE on the
    tested corpus."""
    baseline = protocol.get("baseline") or "BL"
    sources = {c["name"]: c["autoencoder_corpus"] for c in protocol["conditions"]}
    chosen = [c for c in sources if c != baseline and (not conditions or c in conditions)]
    members = []
    for setting, description in protocol["settings"].items():
        label = f"{protocol['name']}: {description['train_corpus']} -> {description['test_corpus']}"
        if setting == "within":
            label = f"{protocol['name']}: {description['test_corpus']} (within)"
        for score in scores:
            for condition in chosen:
                role = "control" if sources[condition] == "target" else "AE"
                members.append(Member(label, folder, setting, condition, baseline, role, score))
    return members


def variance_components(pairs: pd.DataFrame) -> tuple[float, float]:
    """Speaker-to-speaker and seed-to-seed standard deviations of the (speaker, seed) differences
    ``a - b`` (MixedLM, random intercept per speaker, REML); NaN with fewer than 2 seeds."""
    if pairs.empty or pairs["seed"].nunique() < 2 or pairs["speaker"].nunique() < 3:
        return math.nan, math.nan
    data = pairs.assign(difference=pairs["a"] - pairs["b"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # boundary fits (speaker variance 0) are expected and valid
        fit = MixedLM.from_formula("difference ~ 1", data, groups=data["speaker"]).fit(reml=True)
    return math.sqrt(max(float(fit.cov_re.iloc[0, 0]), 0.0)), math.sqrt(float(fit.scale))


def compare(scores: pd.DataFrame, member: Member) -> tuple[dict[str, Any], pd.DataFrame]:
    """One family row (UAR points): the speaker-level paired test, its secondary (speaker, seed)
    reading and the variance components; and the per-speaker seed means."""
    means, pairs, seeds = paired_by_speaker(
        scores, member.setting, member.condition, member.baseline, member.score
    )
    test = metrics.paired_comparison(means["a"].to_numpy(), means["b"].to_numpy())
    secondary = metrics.paired_comparison(pairs["a"].to_numpy(), pairs["b"].to_numpy())
    sd_speaker, sd_seed = variance_components(pairs)
    here = scores[
        (scores["setting"] == member.setting)
        & (scores["condition"] == member.baseline)
        & (scores["score"] == member.score)
    ]
    lacking = (
        int((here.groupby("speaker")["classes"].min() < here["classes"].max()).sum()) if len(here) else 0
    )
    row = {
        "corpus": member.corpus,
        "setting": member.setting,
        "score": member.score,
        "condition": member.condition,
        "baseline": member.baseline,
        "role": member.role,
        "speakers": test["n"],
        "seeds": len(seeds),
        "condition_mean": 100 * float(means["a"].mean()) if len(means) else math.nan,
        "baseline_mean": 100 * float(means["b"].mean()) if len(means) else math.nan,
        **{k: 100 * test[k] for k in ("mean_difference", "ci_low", "ci_high", "sd", "mdd")},
        "t_p": test["t_p"],
        "wilcoxon_p": test["wilcoxon_p"],
        "pairs_speaker_seed": secondary["n"],
        "t_p_speaker_seed": secondary["t_p"],
        "sd_speaker": 100 * sd_speaker,
        "sd_seed": 100 * sd_seed,
        "speakers_lacking_a_class": lacking,
        "folder": member.folder,
    }
    per_speaker = means.reset_index().rename(columns={"a": "condition_uar", "b": "baseline_uar"})
    per_speaker = per_speaker.assign(
        corpus=member.corpus,
        setting=member.setting,
        score=member.score,
        condition=member.condition,
        role=member.role,
        difference=100 * (per_speaker["condition_uar"] - per_speaker["baseline_uar"]),
        condition_uar=100 * per_speaker["condition_uar"],
        baseline_uar=100 * per_speaker["baseline_uar"],
    )
    return row, per_speaker


def pooled_from_summaries(
    by_corpus: pd.DataFrame, alpha: float = ALPHA, power: float = POWER
) -> dict[str, Any]:
    """DerSimonian-Laird pooling of per-corpus summaries: ``by_corpus`` indexed by corpus with the
    speaker-level ``mean`` difference, its standard deviation over speakers ``sd`` and the speaker count
    ``n`` (each corpus' variance: sd^2 / n). ``pooled_estimate`` calls it on stored speakers; it also
    pools the summaries a report printed, where the runs behind them are gone."""
    if (by_corpus["n"] < 2).any():
        raise ProtocolError(f"pooling needs at least 2 speakers per corpus: {by_corpus['n'].to_dict()}")
    if len(by_corpus) < 2:
        raise ProtocolError("pooling needs at least 2 corpora")
    effects = by_corpus["mean"].to_numpy(dtype=np.float64)
    variances = (by_corpus["sd"] ** 2 / by_corpus["n"]).to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):  # I^2 of Q = 0 divides by zero: 0 below
        combined = combine_effects(
            effects, variances, row_names=list(by_corpus.index), method_re="dl", alpha=alpha
        )
        frame = combined.summary_frame()
    fixed = frame.loc["fixed effect"]
    # statsmodels 0.15's "dl" leaves the moment estimate untruncated; DerSimonian-Laird truncates it at
    # 0 (Q below its degrees of freedom), where the random-effects estimate is the fixed-effect one.
    truncated = combined.tau2 < 0
    random = fixed if truncated else frame.loc["random effect"]
    weights = frame["w_fe" if truncated else "w_re"].iloc[: len(by_corpus)]
    homogeneity = combined.test_homogeneity()
    z_effect = NormalIndPower().solve_power(effect_size=None, nobs1=1, ratio=0, alpha=alpha, power=power)
    hksj = hksj_interval(combined, truncated, alpha, power)
    result: dict[str, Any] = {
        "corpora": len(by_corpus),
        "speakers": int(by_corpus["n"].sum()),
        "method": "DerSimonian-Laird random effects over corpus means (statsmodels combine_effects)",
        "estimate": float(random["eff"]),
        "se": float(random["sd_eff"]),
        "ci_low": float(random["ci_low"]),
        "ci_high": float(random["ci_upp"]),
        "p": float(2 * stats.norm.sf(abs(random["eff"]) / random["sd_eff"])),
        "mdd": float(z_effect * random["sd_eff"]),
        "tau2": max(float(combined.tau2), 0.0),
        "i2": max(float(combined.i2), 0.0) if combined.q > 0 else 0.0,
        "q": float(combined.q),
        "q_df": int(combined.df_resid),
        "q_p": float(homogeneity.pvalue),
        "fixed_estimate": float(fixed["eff"]),
        "fixed_ci_low": float(fixed["ci_low"]),
        "fixed_ci_high": float(fixed["ci_upp"]),
        "weights": {str(k): float(w) for k, w in zip(by_corpus.index, weights, strict=True)},
        **hksj,
    }
    dl_width = result["ci_high"] - result["ci_low"]
    result["verdict_interval"] = "HKSJ" if hksj["hksj_ci_high"] - hksj["hksj_ci_low"] >= dl_width else "DL"
    return result


def hksj_interval(
    combined: Any, truncated: bool, alpha: float = ALPHA, power: float = POWER
) -> dict[str, Any]:
    """The Hartung-Knapp-Sidik-Jonkman interval of a ``combine_effects`` result: standard error
    sqrt(sum w_i (y_i - mu)^2 / ((k - 1) sum w_i)) with the random-effects weights (fixed-effect ones
    where tau^2 is truncated at 0), t with k - 1 df; its p and the MDD (noncentral t, k - 1 df)."""
    k = int(combined.k)
    with np.errstate(invalid="ignore"):  # the random-effects one is NaN where tau^2 < 0 (truncated: unused)
        _, _, fixed_ci, random_ci = combined.conf_int(alpha=alpha, use_t=True)
    estimate = float(combined.mean_effect_fe if truncated else combined.mean_effect_re)
    se = math.sqrt(float(combined.var_hksj_fe if truncated else combined.var_hksj_re))
    low, high = fixed_ci if truncated else random_ci
    t_effect = TTestPower().solve_power(effect_size=None, nobs=k, alpha=alpha, power=power)
    return {
        "hksj_se": se,
        "hksj_ci_low": float(low),
        "hksj_ci_high": float(high),
        "hksj_df": k - 1,
        "hksj_p": float(2 * stats.t.sf(abs(estimate) / se, k - 1)) if se > 0 else math.nan,
        "hksj_mdd": float(t_effect * math.sqrt(k) * se),
    }


def pooled_estimate(differences: pd.DataFrame, alpha: float = ALPHA, power: float = POWER) -> dict[str, Any]:
    """The pooled speaker-level difference over corpora (``differences``: columns ``corpus`` and
    ``difference``, one row per speaker, in UAR points).

    DerSimonian-Laird random effects over the corpus means (variance sd^2 / n each): estimate, 95 %
    CI, tau^2, I^2, Q and its p, the fixed-effect estimate, and the pooled MDD. Beside it a MixedLM
    (difference ~ 1, random intercept per corpus) over all speakers."""
    groups = differences.groupby("corpus", sort=False)["difference"]
    by_corpus = groups.agg(["mean", "std", "count"]).rename(columns={"std": "sd", "count": "n"})
    result = pooled_from_summaries(by_corpus, alpha, power)
    result.update(_mixed_model(differences, alpha))
    return result


def _mixed_model(differences: pd.DataFrame, alpha: float) -> dict[str, Any]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = MixedLM.from_formula("difference ~ 1", differences, groups=differences["corpus"]).fit(reml=True)
    low, high = fit.conf_int(alpha=alpha).loc["Intercept"]
    return {
        "mixedlm_estimate": float(fit.fe_params["Intercept"]),
        "mixedlm_ci_low": float(low),
        "mixedlm_ci_high": float(high),
        "mixedlm_p": float(fit.pvalues["Intercept"]),
        "mixedlm_corpus_variance": float(fit.cov_re.iloc[0, 0]),
        "mixedlm_residual_variance": float(fit.scale),
        "mixedlm_warnings": sorted({str(w.message).splitlines()[0] for w in caught}),
    }


def pool(
    folders: Sequence[str | Path],
    speakers: pd.DataFrame,
    conditions: list[str] | None = None,
    pool_conditions: list[str] | None = None,
    skip: list[str] | None = None,
    scores: Sequence[str] = (),
    pool_score: str = ALL,
) -> PoolResult:
    """The declared family of the run ``folders`` (speaker-level, Holm-adjusted) and the pooled
    within-corpus AE - BL difference over the folders that have a within-corpus grid.

    ``speakers``: ``utterance_id``, ``speaker`` for every test utterance. ``pool_conditions``: which
    condition is "the AE" of a folder when it has several of role AE (default: its only one). ``skip``:
    ``FOLDER:SETTING`` entries left out of the family (exploratory runs, e.g. the discovery seeds of a
    replication). ``scores``: scoring subsets tested beside ``all`` in the folders whose predictions
    have them (ASED's ``common`` sentences). ``pool_score``: the score pooled where a folder has it
    (``all`` elsewhere)."""
    rows, per_speaker, notes = _read_family(folders, speakers, conditions, parse_skips(skip), scores)
    family = pd.DataFrame(rows, columns=list(FAMILY_COLUMNS))
    family["holm_p"] = holm(family["t_p"])
    speaker_frame = pd.concat(per_speaker, ignore_index=True)
    pooled = _pooled_within(speaker_frame, pool_conditions, pool_score, notes)
    return PoolResult(family, speaker_frame, pooled, notes)


def _read_family(
    folders: Sequence[str | Path],
    speakers: pd.DataFrame,
    conditions: list[str] | None,
    skips: dict[tuple[Path, str], str],
    scores: Sequence[str],
) -> tuple[list[dict[str, Any]], list[pd.DataFrame], list[str]]:
    """``pool``'s family: per finished comparison its row and its per-speaker frame, and the notes on
    what was left out; a ``--skip``, ``--score`` or ``--condition`` that matches nothing is refused."""
    rows, per_speaker, notes = [], [], []
    found_scores: set[str] = set()
    matched: set[tuple[Path, str]] = set()
    for folder in folders:
        resolved = Path(folder).resolve()
        protocol, predictions = predictions_of(folder)
        if predictions.empty:
            raise ProtocolError(f"{folder}: no finished runs to read")
        incomplete = incomplete_note(protocol, predictions[["setting", "condition", "seed", "fold"]])
        if incomplete:
            notes.append(f"{folder}: {incomplete}")
        uars = speaker_uars(predictions, speakers, str(folder))
        present = set(uars["score"])
        found_scores |= present
        tested = [ALL] + [s for s in scores if s in present and s != ALL]
        for member in family_of(protocol, str(folder), conditions, tested):
            if (resolved, member.setting) in skips:
                matched.add((resolved, member.setting))
                continue
            if not ((uars["setting"] == member.setting) & (uars["condition"] == member.condition)).any():
                if member.score == ALL:
                    notes.append(
                        f"{member.corpus} {member.setting} {member.condition}: no finished runs, left out"
                    )
                continue
            row, speakers_frame = compare(uars, member)
            rows.append(row)
            per_speaker.append(speakers_frame)
    unmatched = [text for entry, text in skips.items() if entry not in matched]
    if unmatched:
        raise ProtocolError(
            f"--skip {unmatched}: matches no setting of the run folders given ("
            + ", ".join(f"{f} = {Path(f).resolve()}" for f in folders)
            + "); name a folder given (a link or relative path is resolved) and one of its settings"
        )
    if not rows:
        raise ProtocolError(
            "no comparison of the family has finished runs in " + ", ".join(map(str, folders))
        )
    absent = sorted(set(scores) - found_scores)
    if absent:
        raise ProtocolError(
            f"--score {absent}: no test predictions of " + ", ".join(map(str, folders)) + " have that "
            "scoring subset (the 'subset' column of predictions.csv, e.g. ASED's common/specific)"
        )
    unmatched = sorted(set(conditions or ()) - {row["condition"] for row in rows})
    if unmatched:
        raise ProtocolError(
            f"--condition {unmatched}: no finished runs of it in " + ", ".join(map(str, folders))
        )
    return rows, per_speaker, notes


def _pooled_within(
    speaker_frame: pd.DataFrame, pool_conditions: list[str] | None, pool_score: str, notes: list[str]
) -> dict[str, Any]:
    """``pool``'s random-effects estimate of the within-corpus AE - BL difference over the corpora (one
    AE condition and one score per corpus); empty, with a note, when fewer than 2 corpora have one."""
    pooled: dict[str, Any] = {}
    within = speaker_frame[(speaker_frame["setting"] == "within") & (speaker_frame["role"] == "AE")]
    # one score per corpus: pool_score where the corpus has it, else all of its test files
    with_pool_score = set(within.loc[within["score"] == pool_score, "corpus"])
    pooled_score = within["corpus"].map(lambda corpus: pool_score if corpus in with_pool_score else ALL)
    within = within[within["score"] == pooled_score]
    if pool_conditions:
        within = within[within["condition"].isin(pool_conditions)]
    several = within.groupby("corpus")["condition"].nunique()
    if (several > 1).any():
        raise ProtocolError(
            f"{list(several[several > 1].index)} have several AE conditions "
            f"({sorted(within['condition'].unique())}); name the one to pool with --pool-condition"
        )
    if within["corpus"].nunique() >= 2:
        pooled = pooled_estimate(within[["corpus", "difference"]])
        pooled["conditions"] = {
            str(k): str(v) for k, v in within.groupby("corpus")["condition"].first().items()
        }
        pooled["scores"] = {str(k): str(v) for k, v in within.groupby("corpus")["score"].first().items()}
    else:
        notes.append("pooling needs a within-corpus AE grid in at least 2 run folders; not pooled")
    return pooled


def parse_skips(skip: Sequence[str] | None) -> dict[tuple[Path, str], str]:
    """``FOLDER:SETTING`` entries keyed by (the folder's resolved path, setting): a symbolic link or a
    relative path names the same folder as its target."""
    parsed = {}
    for text in skip or ():
        folder, colon, setting = str(text).rpartition(":")
        if not colon or not folder or not setting:
            raise ProtocolError(f"--skip {text!r}: write FOLDER:SETTING, e.g. runs/emodb:cross")
        parsed[(Path(folder).resolve(), setting)] = str(text)
    return parsed


def pool_markdown(result: PoolResult, mixedlm: bool = True) -> str:
    """The family table (confirmatory: speaker-level, Holm-adjusted; the (speaker, seed) columns
    secondary) and the pooled estimate, as Markdown. ``mixedlm=False`` leaves out the mixed-model
    check, whose iterative optimiser (it often fails to converge with 3-4 corpora) may end in other
    digits on another CPU: the report's generated blocks hold closed-form numbers only."""
    lines = [
        "Confirmatory family (unit: the speaker; each speaker's UAR averaged over the seeds; paired t-test "
        f"over speakers; Holm-adjusted over the {len(result.family)} comparisons; UAR points). The last "
        "three columns are secondary: (speaker, seed) pairs share speakers and overstate power.",
        "",
        "| corpus | setting | score | comparison | role | speakers | seeds | Δ | 95 % CI | t-test p | Holm p | "
        "MDD | (speaker, seed) p | sd speaker | sd seed |",
        "|---|---|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result.family.to_dict("records"):
        lines.append(
            f"| {row['corpus']} | {row['setting']} | {row['score']} | {row['condition']} - {row['baseline']} | "
            f"{row['role']} | "
            f"{row['speakers']} | {row['seeds']} | {_f(row['mean_difference'], sign=True)} | "
            f"[{_f(row['ci_low'], sign=True)}, {_f(row['ci_high'], sign=True)}] | {_p(row['t_p'])} | "
            f"{_p(row['holm_p'])} | {_f(row['mdd'])} | {_p(row['t_p_speaker_seed'])} | "
            f"{_f(row['sd_speaker'])} | {_f(row['sd_seed'])} |"
        )
    lacking = result.family[result.family["speakers_lacking_a_class"] > 0]
    notes = [  # one per (folder, score): the comparisons of a folder share its speakers
        f"\n{row['corpus']} {row['setting']} ({row['score']}): {row['speakers_lacking_a_class']} speakers "
        "lack a class in their test files; their UAR is the mean recall over the classes they have."
        for row in lacking.to_dict("records")
    ]
    lines += list(dict.fromkeys(notes))
    pooled = result.pooled
    if pooled:
        lines += [
            "",
            f"Pooled AE - BL over {pooled['corpora']} corpora and {pooled['speakers']} speakers (within-corpus "
            "grids; DerSimonian-Laird random effects over the corpus means; UAR points):",
            "",
            "| estimate | 95 % CI (DL, normal) | p | MDD (α 0.05, power 0.8) | 95 % CI (HKSJ, t "
            f"{pooled['hksj_df']} df) | HKSJ p | HKSJ MDD | tau² | I² | Q (df, p) | fixed effect [95 % CI] "
            + ("| MixedLM [95 % CI] |" if mixedlm else "|"),
            "|---:|---|---:|---:|---|---:|---:|---:|---:|---|---|" + ("---|" if mixedlm else ""),
            f"| {_f(pooled['estimate'], sign=True)} | [{_f(pooled['ci_low'], sign=True)}, "
            f"{_f(pooled['ci_high'], sign=True)}] | {_p(pooled['p'])} | {_f(pooled['mdd'])} | "
            f"[{_f(pooled['hksj_ci_low'], sign=True)}, {_f(pooled['hksj_ci_high'], sign=True)}] | "
            f"{_p(pooled['hksj_p'])} | {_f(pooled['hksj_mdd'])} | "
            f"{_f(pooled['tau2'])} | {100 * pooled['i2']:.0f} % | {_f(pooled['q'])} ({pooled['q_df']}, "
            f"{_p(pooled['q_p'])}) | {_f(pooled['fixed_estimate'], sign=True)} "
            f"[{_f(pooled['fixed_ci_low'], sign=True)}, {_f(pooled['fixed_ci_high'], sign=True)}] |"
            + (
                f" {_f(pooled['mixedlm_estimate'], sign=True)} [{_f(pooled['mixedlm_ci_low'], sign=True)}, "
                f"{_f(pooled['mixedlm_ci_high'], sign=True)}] |"
                if mixedlm
                else ""
            ),
            "",
            f"The verdict reads the wider interval: {pooled['verdict_interval']} "
            "(DerSimonian-Laird's normal interval is anti-conservative for few corpora).",
            "",
            "Pooled conditions (score): "
            + ", ".join(f"{k}: {v} ({pooled['scores'][k]})" for k, v in pooled["conditions"].items())
            + ".",
        ]
        if mixedlm and pooled["mixedlm_warnings"]:
            lines.append("MixedLM warned: " + "; ".join(pooled["mixedlm_warnings"]) + ".")
    lines += [f"\nNote: {note}" for note in result.notes]
    return "\n".join(lines) + "\n"


def write_pool(result: PoolResult, out_dir: str | Path) -> Path:
    """``family.csv``, ``speakers.csv``, ``pooled.csv``, ``pool.json`` and ``pool.md`` in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(result.family, out / "family.csv", float_format="%.6f")
    write_csv(result.speakers, out / "speakers.csv", float_format="%.6f")
    if result.pooled:
        flat = {k: v for k, v in result.pooled.items() if not isinstance(v, dict | list)}
        write_csv(pd.DataFrame([flat]), out / "pooled.csv", float_format="%.6f")
    write_json(
        {"family": result.family.to_dict("records"), "pooled": result.pooled, "notes": result.notes},
        out / "pool.json",
    )
    write_text(pool_markdown(result), out / "pool.md")
    return out

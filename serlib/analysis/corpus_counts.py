"""Each configured corpus counted by class, session and speaker, beside the paper's numbers where the
paper states them (notebook 01 and ``serlib counts``).

The paper's numbers are the loaders' constants (``IEMOCAP_PAPER_COUNTS``, ``TEDLIUM2_PAPER``, ...),
never typed here a second time, and apply only where the corpus is configured as in the paper (e.g.
TED-LIUM's train set, whole or ``talks: 400``, whose talks only are compared; LibriSpeech's
``train-clean-100`` alone). A count that
differs from the paper's is a warning, one line per corpus naming every differing count, not an error:
a researcher's copy of a corpus may legitimately differ (a newer release, a repaired file), and the
run goes on, but never silently.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from serlib.data.corpora import iemocap, librispeech, msp_improv, tedlium
from serlib.data.manifest import EMOTIONS

log = logging.getLogger(__name__)

COLUMNS = ["corpus", "count", "serlib", "paper", "difference"]


def paper_numbers(corpus: Any) -> dict[str, int]:
    """What the paper states about a corpus configured like ``corpus`` (a ``CorpusConfig``): utterances,
    ``class <emotion>``, sessions, speakers; empty where the paper states nothing about that set-up."""
    options = dict(corpus.options)
    if corpus.type in ("iemocap", "msp_improv") and not options.get("segment_s"):
        classes, structure = {
            "iemocap": (iemocap.IEMOCAP_PAPER_COUNTS, iemocap.IEMOCAP_PAPER_STRUCTURE),
            "msp_improv": (msp_improv.MSP_IMPROV_PAPER_COUNTS, msp_improv.MSP_IMPROV_PAPER_STRUCTURE),
        }[corpus.type]
        return {
            "utterances": sum(classes.values()),
            **{f"class {emotion}": classes[emotion] for emotion in EMOTIONS},
            **structure,
        }
    paper = tedlium.TEDLIUM2_PAPER
    if corpus.type == "tedlium2" and tuple(options.get("splits", ("train",))) == ("train",):
        talks = options.get("talks")
        if talks is None and set(options) <= {"seed"}:
            return {"utterances": paper["segments"], "sessions": paper["talks"]}
        if talks == paper["subset_talks"] and set(options) <= {"talks", "seed"}:
            # not its 25,303 segments: the paper's 400 talks are unknown, serlib draws 400 at random
            return {"sessions": paper["subset_talks"]}
    if corpus.type == "librispeech" and set(options) == {"subsets"}:
        if list(options["subsets"]) == [librispeech.LIBRISPEECH_PAPER["subset"]]:
            stated = librispeech.LIBRISPEECH_PAPER["utterances"]
            return {"utterances": stated} if isinstance(stated, int) else {}
    return {}


def _counted(manifest: pd.DataFrame) -> pd.DataFrame:
    """The rows the paper counts: the 4-class utterances of a labeled corpus, all rows otherwise."""
    labeled = manifest["emotion"].isin(EMOTIONS)
    return manifest[labeled] if labeled.any() else manifest


def serlib_numbers(manifest: pd.DataFrame) -> dict[str, int]:
    """A manifest's counts under ``paper_numbers``' names (classes only for a labeled corpus)."""
    rows = _counted(manifest)
    numbers = {"utterances": len(rows)}
    if rows["emotion"].isin(EMOTIONS).any():
        counts = rows["emotion"].value_counts()
        numbers.update({f"class {emotion}": int(counts.get(emotion, 0)) for emotion in EMOTIONS})
    numbers["sessions"] = int(rows["session"].nunique())
    numbers["speakers"] = int(rows["speaker"].nunique())
    return numbers


def compare(config: Any, manifests: dict[str, pd.DataFrame], warn: bool = True) -> pd.DataFrame:
    """One row per corpus and count: serlib's, the paper's (empty where not stated) and the difference;
    with ``warn`` every corpus that differs from the paper gets one warning line (``differences``)."""
    rows = []
    for key, manifest in manifests.items():
        paper = paper_numbers(config.corpora[key])
        for name, ours in serlib_numbers(manifest).items():
            stated = paper.get(name)
            rows.append(
                {
                    "corpus": key,
                    "count": name,
                    "serlib": ours,
                    "paper": stated,
                    "difference": None if stated is None else ours - stated,
                }
            )
    table = pd.DataFrame(rows, columns=COLUMNS).astype({"paper": "Int64", "difference": "Int64"})
    if warn:
        for line in differences(table):
            log.warning("%s", line)
    return table


def differences(table: pd.DataFrame) -> list[str]:
    """One line per corpus whose counts differ from the paper's, naming each differing count."""
    differing = table[table["difference"].fillna(0) != 0]
    lines = []
    for corpus, group in differing.groupby("corpus", sort=False):
        items = ", ".join(
            f"{r['count']} {r['serlib']:,} vs the paper's {r['paper']:,} ({r['difference']:+,})"
            for _, r in group.iterrows()
        )
        lines.append(
            f"{corpus} differs from the paper: {items}; check the corpus copy and its configuration "
            "(the run goes on with serlib's counts)"
        )
    return lines


def labeled_only(manifests: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The corpora with 4-class emotion labels (the ones whose sessions and speakers are few)."""
    return {key: m for key, m in manifests.items() if m["emotion"].isin(EMOTIONS).any()}


def by_group(manifests: dict[str, pd.DataFrame], column: str) -> pd.DataFrame:
    """Counts per ``column`` ('session' or 'speaker') of each corpus: by class for a labeled corpus
    (plus the total and, per session, its speakers), the utterances alone otherwise."""
    frames = []
    for key, manifest in manifests.items():
        rows = _counted(manifest)
        if rows["emotion"].isin(EMOTIONS).any():
            table = pd.crosstab(rows[column], rows["emotion"]).reindex(columns=list(EMOTIONS), fill_value=0)
            table["total"] = table.sum(axis=1)
        else:
            table = rows.groupby(column).size().to_frame("total")
        if column == "session":
            table["speakers"] = rows.groupby("session")["speaker"].nunique()
        table.columns.name = None
        frames.append(table.reset_index().assign(corpus=key))
    if not frames:
        return pd.DataFrame(columns=["corpus", column, "total"])
    result = pd.concat(frames, ignore_index=True)
    ordered = ["corpus", column, *[c for c in result.columns if c not in ("corpus", column)]]
    return result[ordered].fillna(0).astype({c: int for c in ordered[2:]})


def report(config: Any, manifests: dict[str, pd.DataFrame]) -> str:
    """``serlib counts``' text: the comparison, then the per-session and per-speaker counts of the
    labeled corpora (an unlabeled corpus's thousands of talks or chapters are summarised)."""
    table = compare(config, manifests, warn=False)  # the warnings end the text instead
    labeled = labeled_only(manifests)
    parts = ["Counts beside the paper's (empty: the paper states none)", table.to_string(index=False)]
    for column in ("session", "speaker"):
        if labeled:
            parts += [f"\nBy {column} (4-class utterances)", by_group(labeled, column).to_string(index=False)]
    unlabeled = {k: m for k, m in manifests.items() if k not in labeled}
    if unlabeled:
        per_speaker = by_group(unlabeled, "speaker").groupby("corpus")["total"].describe()
        parts += ["\nUtterances per speaker (unlabeled corpora)", per_speaker.round(1).to_string()]
    lines = differences(table)
    parts.append(
        "\n" + ("\n".join(f"warning: {line}" for line in lines) or "All stated counts match the paper.")
    )
    return "\n".join(parts)

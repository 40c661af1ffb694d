"""Per-speaker UAR from a run folder's test predictions: the unit of every confirmatory test.

A fold may hold one speaker (nEMO, RAVDESS: leave-one-speaker-out), two (Emo-DB's sessions) or a group
(ASED), and a cross-corpus run tests every speaker of the test corpus at once. So the speaker is read
from each test utterance, never from the fold: ``speaker_uars`` pools a (setting, condition, seed)'s
``predictions.csv`` over its folds, groups them by the utterance's speaker and scores each speaker's
files. ``speaker_means`` then averages each speaker's UAR over the seeds that both conditions of a
comparison ran, so a speaker enters a paired test once, however many seeds there are.

**Rule for a speaker lacking a class.** A speaker's UAR is the mean recall over the classes present in
that speaker's *true* labels (scikit-learn's balanced accuracy, ``metrics.uar``): a class the speaker
never spoke adds no recall term, and a prediction of that class still counts as a miss of the true
class. The number of classes a speaker has is kept (column ``classes``), so a reader sees where a
speaker's UAR averages fewer than four recalls.

Where the speaker of an utterance comes from: a ``speakers`` table (``utterance_id``, ``speaker``) from
``speaker_table`` (the configured corpora's manifests, which need ``SERLIB_DATA``) or from a CSV file.
An utterance without a speaker is an error naming the run folder and the fix, never a silent fold unit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from serlib.base import metrics, run_schemas
from serlib.base.config import Config
from serlib.data import loaders
from serlib.evidence.table1 import collect_runs, results_root
from serlib.protocol.labeled import ProtocolError

log = logging.getLogger(__name__)

SPEAKER_COLUMNS = ("setting", "condition", "seed", "score", "speaker", "uar", "n_test", "classes")

ALL = "all"
"""The score over all of a speaker's test files (beside one per scoring subset, e.g. ASED's ``common``)."""


class MissingRunFolder(ProtocolError):
    """A stored run folder that a table or probe reads is not there; the message names the command."""


def require_runs(folder: str | Path, command: str) -> Path:
    """The protocol folder ``folder`` (with ``results/protocol.json``), or ``MissingRunFolder`` naming
    the folder and the ``command`` that makes it."""
    path = Path(folder)
    try:
        return results_root(path)
    except ProtocolError:
        raise MissingRunFolder(
            f"{path}: no stored runs here (expected {path}/results/protocol.json). Make them with:\n"
            f"    {command}\n"
            "(or give the folder where they are)"
        ) from None


def speaker_table(config: Config, keys: Iterable[str] | None = None) -> pd.DataFrame:
    """``utterance_id``, ``speaker`` of the configured corpora ``keys`` (default: every corpus that is
    not a union), read from their manifests (needs the data, as ``serlib evaluate`` does)."""
    chosen = list(keys) if keys is not None else [k for k, c in config.corpora.items() if c.type != "union"]
    frames = []
    for key in chosen:
        manifest = loaders.load_configured(config, key)
        frames.append(manifest[["utterance_id", "speaker"]].astype(str))
    if not frames:
        raise ProtocolError(f"configuration {config.name!r} has no corpora to read speakers from")
    return combine(frames, f"configuration {config.name!r}")


def combine(tables: list[pd.DataFrame], source: str = "the speaker tables") -> pd.DataFrame:
    """Speaker tables concatenated; an utterance id given two different speakers is an error."""
    frame = pd.concat(tables, ignore_index=True).drop_duplicates()
    clashes = frame["utterance_id"][frame["utterance_id"].duplicated()].unique()
    if len(clashes):
        raise ProtocolError(
            f"{source}: {len(clashes)} utterance ids name two speakers (e.g. {clashes[:3].tolist()}); "
            "give one configuration or speaker CSV per corpus whose ids are unique"
        )
    return frame.reset_index(drop=True)


def read_speaker_csv(path: str | Path) -> pd.DataFrame:
    """A speaker table from a CSV file with the columns ``utterance_id`` and ``speaker``."""
    frame = pd.read_csv(path, dtype=str)
    missing = {"utterance_id", "speaker"} - set(frame.columns)
    if missing:
        raise ProtocolError(f"{path}: needs the columns utterance_id and speaker (missing {sorted(missing)})")
    return combine([frame[["utterance_id", "speaker"]]], str(path))


PREDICTION_COLUMNS = ("setting", "condition", "seed", "fold", "utterance_id", "true", "predicted", "subset")


def predictions_of(output_dir: str | Path) -> tuple[dict, pd.DataFrame]:
    """The protocol and every finished run's test predictions (``setting`` added), as ``collect_runs``
    finds them (same fingerprints as the protocol's); ``subset`` is the scoring subset of each test
    utterance (ASED: ``common`` / ``specific`` sentences), empty where the corpus has none."""
    protocol, runs = collect_runs(output_dir)
    frames = []
    for row in runs.itertuples():
        n_test = None if pd.isna(row.n_test) else int(row.n_test)  # a short or header-only file is an error
        frame = run_schemas.read_predictions(Path(row.folder) / "predictions.csv", n_test)
        frame["fold"] = int(row.fold)
        frame["setting"] = row.setting
        frame["condition"] = row.condition
        frame["seed"] = int(row.seed)
        if "subset" not in frame.columns:
            frame["subset"] = None  # the test corpus has no scoring subset: only the "all" score
        frames.append(frame[list(PREDICTION_COLUMNS)])
    return protocol, (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(PREDICTION_COLUMNS))
    )


def speaker_uars(predictions: pd.DataFrame, speakers: pd.DataFrame, source: str = "") -> pd.DataFrame:
    """One row per (setting, condition, seed, score, speaker): the UAR over that speaker's test files of
    that seed (recall averaged over the classes present in the speaker's true labels), ``n_test`` and
    ``classes`` (how many classes the speaker has). ``score`` is ``all`` (every test file) or the name of
    a scoring subset (the ``subset`` column, where the predictions have one): a speaker with no file in a
    subset has no row for it, so is left out of that subset's tests rather than scored 0."""
    lookup = speakers.set_index("utterance_id")["speaker"]
    joined = predictions.assign(speaker=predictions["utterance_id"].map(lookup))
    lacking = joined["speaker"].isna()
    if lacking.any():
        examples = joined.loc[lacking, "utterance_id"].unique()[:3].tolist()
        raise ProtocolError(
            f"{source or 'the predictions'}: {int(lacking.sum())} test predictions name an utterance with no "
            f"speaker (e.g. {examples}); give the configuration whose corpora hold them (--config) or a "
            "CSV of utterance_id,speaker (--speakers)"
        )
    keys = ["setting", "condition", "seed", "speaker"]
    parts = [metrics.uar_by_group(joined, keys).assign(score=ALL)]
    if "subset" in joined.columns:
        scored = joined.dropna(subset=["subset"]).assign(score=lambda f: f["subset"].astype(str))
        parts.append(metrics.uar_by_group(scored, [*keys, "score"]))
    rows = pd.concat(parts, ignore_index=True)
    # the order of a group by group loop: by the keys, each speaker's "all" before its subsets
    rows = rows.assign(_subset=rows["score"] != ALL).sort_values([*keys, "_subset", "score"], kind="stable")
    rows = rows.astype({"seed": int, "speaker": str, "classes": int})
    return rows[list(SPEAKER_COLUMNS)].reset_index(drop=True)


def paired_by_speaker(
    scores: pd.DataFrame, setting: str, condition: str, baseline: str, score: str = ALL
) -> tuple[pd.DataFrame, pd.DataFrame, list[int]]:
    """Per speaker the seed-mean UAR of ``condition`` and of ``baseline`` over the seeds both ran for
    that setting, on the files of ``score`` (columns ``a``, ``b``); the (speaker, seed) pairs behind
    them (for the secondary reading and the variance components); and those seeds."""
    here = scores[(scores["setting"] == setting) & (scores["score"] == score)]
    a = here[here["condition"] == condition].set_index(["speaker", "seed"])["uar"]
    b = here[here["condition"] == baseline].set_index(["speaker", "seed"])["uar"]
    pairs = pd.concat([a, b], axis=1, keys=["a", "b"]).dropna()
    seeds = sorted({int(s) for s in pairs.index.get_level_values("seed")})
    dropped = (len(a) + len(b)) - 2 * len(pairs)
    if dropped:
        log.info(
            "%s %s vs %s: %d (speaker, seed) scores without their pair left out",
            setting,
            condition,
            baseline,
            dropped,
        )
    return pairs.groupby(level="speaker").mean(), pairs.reset_index(), seeds

"""Folds of the protocol: leave-one-session-out within a corpus, and the held-out development session.

A fold tests on one session and trains on all others (scikit-learn's ``LeaveOneGroupOut``); IEMOCAP's
sessions are numbered 1-5, other corpora's sessions (speakers, speaker pairs) are numbered in sorted
order. Cross-corpus runs have one fold, ``CROSS_FOLD``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
from sklearn.model_selection import LeaveOneGroupOut

from serlib.base.config import Config
from serlib.protocol import labeled
from serlib.protocol.labeled import LabeledData, ProtocolError

SETTINGS = ("within", "cross")


CROSS_FOLD = 0


def session_folds(sessions: Iterable[str]) -> np.ndarray:
    """The fold number of each utterance: its session number when every session is an integer (IEMOCAP
    1-5), else the 1-based position of its session in sorted order."""
    sessions = np.asarray([str(s) for s in sessions])
    unique = sorted(set(sessions.tolist()))
    if all(re.fullmatch(r"\d+", s) for s in unique):
        numbers = {s: int(s) for s in unique}
        if len(set(numbers.values())) != len(unique):  # "1" and "01"
            numbers = {s: i + 1 for i, s in enumerate(sorted(unique, key=int))}
    else:
        numbers = {s: i + 1 for i, s in enumerate(unique)}
    return np.asarray([numbers[s] for s in sessions], dtype=np.int64)


def fold_indices(folds_of_items: np.ndarray, fold: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices of leave-one-session-out fold ``fold`` (scikit-learn's LeaveOneGroupOut)."""
    groups = np.asarray(folds_of_items)
    if fold not in set(groups.tolist()):
        raise ProtocolError(
            f"fold {fold} does not exist; the sessions give folds {sorted(set(groups.tolist()))}"
        )
    if len(set(groups.tolist())) < 2:
        raise ProtocolError("leave-one-session-out needs at least 2 sessions in the within corpus")
    for train, test in LeaveOneGroupOut().split(groups, groups=groups):
        if groups[test[0]] == fold:
            return train, test
    raise AssertionError("unreachable")  # pragma: no cover


def within_folds(config: Config) -> list[int]:
    """The within-corpus folds to run: ``protocol.folds`` or every session of the within corpus."""
    key = config.protocol.within_corpus
    if key is None:
        raise ProtocolError("protocol.within_corpus is not set, so there are no within-corpus folds")
    manifest = labeled.labeled_manifest(config, key)
    available = sorted(set(session_folds(manifest["session"]).tolist()))
    if config.protocol.folds is None:
        return available
    unknown = [f for f in config.protocol.folds if f not in available]
    if unknown:
        raise ProtocolError(
            f"protocol.folds {unknown} are not sessions of corpora.{key} (folds: {available})"
        )
    return list(config.protocol.folds)


def development_split(train: LabeledData, test: LabeledData | None = None) -> tuple[LabeledData, LabeledData]:
    """(training, development) data: one training session held out as development set. Within a
    corpus (``test`` = the fold's test data), the session following the test session in the corpus'
    fold order, cyclically; across corpora (no ``test``), the training corpus' last session."""
    sessions = train.session if test is None else np.concatenate([train.session, test.session])
    folds = session_folds(sessions)[: len(train)]  # fold numbers of the whole corpus
    training = sorted(set(folds.tolist()))
    if len(training) < 2:
        raise ProtocolError(
            "acnn.model_selection: held_out_session needs at least 2 training sessions; use 'none'"
        )
    if test is None:
        chosen = training[-1]
    else:
        tested = int(session_folds(sessions)[len(train)])
        chosen = next((s for s in training if s > tested), training[0])
    return train.subset(np.flatnonzero(folds != chosen)), train.subset(np.flatnonzero(folds == chosen))

"""Loading a corpus by name: the loader of each corpus type, options checked, unions and segments.

``load("emodb", root)`` runs one loader; ``load_configured(config, key)`` loads the corpus configured
under ``corpora.<key>`` (generating the demo corpus on first use, joining the parts of a ``union``).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from serlib.base.config import Config
from serlib.data import demo
from serlib.data.corpora import ased, emodb, iemocap, librispeech, msp_improv, nemo, ravdess, tedlium
from serlib.data.manifest import (
    MANIFEST_COLUMNS,
    CorpusError,
    make_manifest,
    read_manifest,
    segments,
    validate,
)

log = logging.getLogger(__name__)


Loader = Callable[..., pd.DataFrame]


def load_manifest(root: str | Path, check_files: bool = True) -> pd.DataFrame:
    """Any corpus, given as a manifest CSV in serlib's schema (``root`` is the CSV file)."""
    return read_manifest(root, check_files=check_files)


LOADERS: dict[str, Loader] = {
    "iemocap": iemocap.iemocap,
    "msp_improv": msp_improv.msp_improv,
    "tedlium2": tedlium.tedlium2,
    "librispeech": librispeech.librispeech,
    "emodb": emodb.emodb,
    "ravdess": ravdess.ravdess,
    "nemo": nemo.nemo,
    "ased": ased.ased,
    "demo": demo.load_demo,
    "manifest": load_manifest,
}
"""The loader of each corpus type (``corpora.<key>.type`` in a configuration)."""


def register(name: str) -> Callable[[Loader], Loader]:
    """Decorator adding a loader of your own under ``name`` (``load(name, root, ...)`` then finds it)."""

    def decorate(function: Loader) -> Loader:
        LOADERS[name] = function
        return function

    return decorate


def load(name: str, root: str | Path, segment_s: float | None = None, **options: Any) -> pd.DataFrame:
    """Load corpus ``name`` from folder ``root`` as a validated manifest DataFrame.

    Options are the loader's keyword arguments; a misspelt one is an error that lists the valid ones.
    ``segment_s``, accepted by every loader, splits the rows into pieces of that many seconds
    (``segments``).
    """
    if segment_s is not None:
        manifest = load(name, root, **options)
        return validate(segments(manifest, float(segment_s), f"{name} {root}"), f"{name} {root}", False)
    if name not in LOADERS:
        raise CorpusError(f"unknown corpus type {name!r}; known: {', '.join(sorted(LOADERS))}")
    loader = LOADERS[name]
    parameters = inspect.signature(loader).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        allowed = [
            p for p in list(parameters)[1:] if parameters[p].kind is not inspect.Parameter.VAR_POSITIONAL
        ]
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise CorpusError(
                f"corpus type {name!r} has no option {', '.join(map(repr, unknown))}; its options are "
                f"{', '.join([*allowed, 'segment_s'])}"
            )
    return loader(root, **options)


def load_configured(config: Config, key: str) -> pd.DataFrame:
    """Load the corpus configured under ``config.corpora[key]`` (generating the demo corpus if needed).

    A corpus of type ``union`` is the rows of the configured corpora named in its option ``parts``,
    each id prefixed with its part's key (``librispeech:19-198-0001``), optionally split into
    ``segment_s`` pieces: several sources of unlabeled speech for one autoencoder.
    """
    corpus = config.corpora[key]
    if corpus.type == "union":
        return _union(config, key)
    root = config.corpus_root(key)
    options = dict(corpus.options)
    if corpus.type == "demo":
        demo.ensure(root, **config.demo_corpus)
    manifest = load(corpus.type, root, **options)
    manifest = manifest.copy()
    manifest["corpus"] = key
    return manifest


UNION_OPTIONS = ("parts", "segment_s")


def _union(config: Config, key: str) -> pd.DataFrame:
    options = dict(config.corpora[key].options)
    unknown = sorted(set(options) - set(UNION_OPTIONS))
    parts = options.get("parts")
    if unknown or not isinstance(parts, list) or not parts:
        raise CorpusError(
            f"corpora.{key}: a union takes the options {', '.join(UNION_OPTIONS)} with parts = a list of "
            f"corpus keys (got {sorted(options)})"
        )
    pieces = []
    for part in parts:
        if part == key or part not in config.corpora or config.corpora[part].type == "union":
            raise CorpusError(
                f"corpora.{key}.options.parts: {part!r} must be another configured corpus that is not a union"
            )
        manifest = load_configured(config, part).copy()
        manifest["utterance_id"] = part + ":" + manifest["utterance_id"].astype(str)
        pieces.append(manifest.loc[:, list(MANIFEST_COLUMNS)])
    manifest = pd.concat(pieces, ignore_index=True)
    if options.get("segment_s") is not None:
        manifest = segments(manifest, float(options["segment_s"]), f"corpora.{key}")
    manifest["corpus"] = key
    return validate(make_manifest(manifest), f"corpora.{key}", check_files=False)

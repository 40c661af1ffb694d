"""t-SNE pictures of learnt representations (the paper's Figures 3 and 4), each with numbers beside it.

A 2-D t-SNE picture invites reading clusters into noise, so every panel carries two numbers computed in
the ORIGINAL vector space, not in the picture: a cross-validated k-nearest-neighbour probe (its UAR,
i.e. balanced accuracy, with the chance level 1/classes) and the silhouette score of the labels. The
probe is grouped by speaker where the label allows it, so it measures what generalises to unseen
speakers rather than what a speaker's own utterances share.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from sklearn.manifold import TSNE
from sklearn.metrics import silhouette_score
from sklearn.model_selection import GroupKFold, StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from threadpoolctl import threadpool_limits

from serlib.base import plots
from serlib.base.paper_preset import reader

log = logging.getLogger(__name__)
_PAPER = reader("tsne")  # the paper preset's t-SNE settings: the functions' defaults


PROBE_COLUMNS = (
    "figure",
    "representation",
    "panel",
    "points",
    "classes",
    "knn_uar",
    "chance",
    "silhouette",
    "cross_validation",
    "note",
)


class AnalysisError(ValueError):
    """The vectors or labels cannot be analysed as asked; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class Panel:
    """One picture of a t-SNE figure: which label column colours the points and how classes are named."""

    column: str
    title: str
    order: tuple[str, ...] = ()
    names: dict[str, str] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()
    colours: dict[str, str] = field(default_factory=dict)  # fixed colours; others from the palette

    def name(self, value: str) -> str:
        return self.names.get(value, value)


# Colours from seaborn's colour-blind palette, chosen so that the pictures read alike: angry shares the
# colour of high arousal (vermillion), sad that of low arousal (blue), medium and neutral are grey.
EMOTION_COLOURS = {"angry": "#d55e00", "happy": "#cc78bc", "sad": "#0173b2", "neutral": "#949494"}


LEVEL_COLOURS = {"low": "#0173b2", "medium": "#949494", "high": "#d55e00"}


PANELS: dict[str, Panel] = {
    "emotion": Panel(
        "emotion",
        "Emotion (neutral left out, as in the paper)",
        order=("angry", "happy", "sad", "neutral"),
        names={"angry": "Angry", "happy": "Happy", "sad": "Sad", "neutral": "Neutral"},
        exclude=("neutral",),
        colours=EMOTION_COLOURS,
    ),
    "arousal_class": Panel(
        "arousal_class",
        "Arousal class",
        order=("low", "medium", "high"),
        names={"low": "Low arousal", "medium": "Medium arousal", "high": "High arousal"},
        colours=LEVEL_COLOURS,
    ),
    "valence_class": Panel(
        "valence_class",
        "Valence class",
        order=("low", "medium", "high"),
        names={
            "low": "Low valence",
            "medium": "Medium valence",
            "high": "High valence",
        },
        colours=LEVEL_COLOURS,
    ),
    "speaker": Panel("speaker", "Speaker"),
    "gender": Panel("gender", "Gender", order=("female", "male"), names={"female": "Female", "male": "Male"}),
}


EMOTION_PANELS = ("emotion", "arousal_class", "valence_class")


SPEAKER_PANELS = ("speaker", "gender")


FIGURE_STEMS = {
    ("acnn", "emotion"): "figure3_tsne_acnn",
    ("autoencoder", "emotion"): "figure4_tsne_autoencoder",
    ("acnn", "speaker"): "tsne_acnn_speaker_gender",
    ("autoencoder", "speaker"): "tsne_autoencoder_speaker_gender",
}


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


def check_vectors(vectors: np.ndarray, name: str = "vectors") -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float64)
    if array.ndim != 2:
        raise AnalysisError(f"{name} must be a 2-D array [points, dimensions], got shape {array.shape}")
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).any(axis=1).sum())
        raise AnalysisError(f"{name} hold NaN or inf in {bad} rows: check the model that produced them")
    return array


def subsample(n: int, max_points: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``max_points`` of ``n`` points, the same ones for the same seed."""
    if n <= max_points:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=max_points, replace=False))


def tsne(vectors: np.ndarray, seed: int = 0, perplexity: float = _PAPER("perplexity")) -> np.ndarray:
    """2-D t-SNE embedding ``[n, 2]`` (scikit-learn, PCA initialisation): same seed, same picture.

    The perplexity is lowered to ``(n - 1) / 3`` when there are too few points for the one asked
    (t-SNE needs more than 3 x perplexity neighbours); a warning says so.
    """
    array = check_vectors(vectors)
    n = len(array)
    if n < 4:
        raise AnalysisError(f"t-SNE needs at least 4 points, got {n}")
    usable = max(1.0, (n - 1) / 3.0)
    if perplexity > usable:
        log.warning("t-SNE perplexity %.1f is too large for %d points; using %.1f", perplexity, n, usable)
        perplexity = usable
    if array.shape[1] == 1:  # PCA initialisation needs two dimensions
        array = np.hstack([array, np.zeros_like(array)])
    model = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=seed)
    # One OpenMP thread: the same picture on any number of cores, and no spin-waiting slowdown (10x
    # measured here) when other processes share the 2 cores.
    with threadpool_limits(limits=1):
        points = model.fit_transform(array).astype(np.float32)
    # Numeric sanity check (cheap, d2l style): one finite 2-D point per input vector.
    if points.shape != (n, 2) or not np.isfinite(points).all():
        raise AnalysisError(f"t-SNE returned an unusable embedding of shape {points.shape} for {n} points")
    return points


def _splits(
    labels: np.ndarray, groups: np.ndarray | None, folds: int, seed: int
) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    if groups is not None:
        n_groups = len(np.unique(groups))
        if n_groups < 2:
            raise AnalysisError("a probe grouped by speaker needs at least 2 speakers; pass groups=None")
        n_splits = min(folds, n_groups)
        splitter = GroupKFold(n_splits=n_splits)
        return list(
            splitter.split(np.zeros(len(labels)), labels, groups)
        ), f"grouped by speaker, {n_splits} folds"
    smallest = int(pd.Series(labels).value_counts().min())
    n_splits = min(folds, smallest)
    if n_splits < 2:
        raise AnalysisError("every class needs at least 2 points for a cross-validated probe")
    splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels)), f"stratified, {n_splits} folds"


def knn_probe(
    vectors: np.ndarray,
    labels: Sequence[Any] | np.ndarray,
    groups: Sequence[Any] | np.ndarray | None = None,
    k: int = 10,
    folds: int = 5,
    seed: int = 0,
) -> float:
    """Cross-validated k-NN UAR (balanced accuracy; chance = 1/classes) of ``labels`` from ``vectors``.

    With ``groups`` (speakers) the folds never share a group (GroupKFold), so the number says how well
    the label is predicted for unseen speakers. ``k`` shrinks to the smallest training fold if needed.
    """
    _, _, score, _ = _probe(vectors, labels, groups, k, folds, seed)
    return score


def _probe(
    vectors: np.ndarray,
    labels: Sequence[Any] | np.ndarray,
    groups: Sequence[Any] | np.ndarray | None,
    k: int,
    folds: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, float, str]:
    array = check_vectors(vectors)
    y = np.asarray(labels).astype(str)
    if len(y) != len(array):
        raise AnalysisError(f"{len(y)} labels for {len(array)} vectors: they must be aligned")
    if len(np.unique(y)) < 2:
        raise AnalysisError("a probe needs at least 2 classes")
    group_array = None if groups is None else np.asarray(groups).astype(str)
    splits, description = _splits(y, group_array, folds, seed)
    neighbours = max(1, min(k, min(len(train) for train, _ in splits)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # test folds may lack a class: balanced accuracy then warns
        scores = cross_val_score(
            KNeighborsClassifier(n_neighbors=neighbours), array, y, cv=splits, scoring="balanced_accuracy"
        )
    return array, y, float(np.mean(scores)), f"{neighbours}-NN, {description}"


def silhouette(
    vectors: np.ndarray, labels: Sequence[Any] | np.ndarray, max_points: int | None = None, seed: int = 0
) -> float:
    """Silhouette score of ``labels`` in the vectors' own (Euclidean) space: 1 = tight, separate
    clusters, 0 = overlapping, negative = points nearer another class than their own."""
    array = check_vectors(vectors)
    y = np.asarray(labels).astype(str)
    if len(y) != len(array):
        raise AnalysisError(f"{len(y)} labels for {len(array)} vectors: they must be aligned")
    n_classes = len(np.unique(y))
    if not 2 <= n_classes <= len(y) - 1:
        raise AnalysisError(
            f"the silhouette needs 2 to n-1 classes, got {n_classes} classes for {len(y)} points"
        )
    sample = None if max_points is None or len(y) <= max_points else max_points
    return float(silhouette_score(array, y, sample_size=sample, random_state=seed))


@dataclass
class Embedding:
    """Vectors with their labels and a t-SNE picture of (a deterministic subsample of) them."""

    name: str  # "acnn" or "autoencoder"
    description: str  # what the vectors are, for figure titles
    vectors: np.ndarray  # [n, d] all vectors (the probes use all of them)
    labels: pd.DataFrame  # n rows aligned with vectors: emotion, arousal/valence class, speaker, gender
    index: np.ndarray  # rows of vectors shown in the picture
    points: np.ndarray  # [len(index), 2]
    perplexity: float  # the perplexity t-SNE used (lowered for few points)


def embed(
    name: str,
    description: str,
    vectors: np.ndarray,
    labels: pd.DataFrame,
    seed: int = 0,
    perplexity: float = _PAPER("perplexity"),
    max_points: int = _PAPER("max_points"),
) -> Embedding:
    """t-SNE of at most ``max_points`` vectors (a seeded subsample), kept with all vectors and labels."""
    array = check_vectors(vectors)
    if len(labels) != len(array):
        raise AnalysisError(
            f"{len(labels)} label rows for {len(array)} vectors ({description}): align them by id"
        )
    index = subsample(len(array), max_points, seed)
    points = tsne(array[index], seed=seed, perplexity=perplexity)
    used = min(perplexity, max(1.0, (len(index) - 1) / 3.0))
    return Embedding(
        name, description, array.astype(np.float32), labels.reset_index(drop=True), index, points, used
    )


def embed_configured(
    name: str, description: str, vectors: np.ndarray, labels: pd.DataFrame, config: Any
) -> Embedding:
    """``embed`` with the seed, perplexity and point limit of ``config.tsne``."""
    chosen = config.tsne
    return embed(name, description, vectors, labels, chosen.seed, chosen.perplexity, chosen.max_points)


def _classes(panel: Panel, values: pd.Series) -> list[str]:
    present = [v for v in pd.unique(values) if v != "" and v not in panel.exclude]
    ordered = [v for v in panel.order if v in present]
    return ordered + sorted(v for v in present if v not in ordered)


def _groups_for(panel: Panel, labels: pd.DataFrame, mask: np.ndarray) -> np.ndarray | None:
    """Speakers as probe groups when grouping makes sense for this label (never for speaker itself)."""
    if panel.column == "speaker" or "speaker" not in labels:
        return None
    speakers = labels.loc[mask, "speaker"].astype(str).to_numpy()
    if (speakers == "").any() or len(np.unique(speakers)) < 2:
        return None
    if panel.column == "gender":
        per_class = labels.loc[mask].groupby("gender")["speaker"].nunique()
        if (per_class < 2).any():  # a single speaker per gender: grouping would test on an unseen class
            return None
    return speakers


def probe_panel(
    embedding: Embedding, panel: Panel, k: int = 10, folds: int = 5, seed: int = 0
) -> dict[str, Any]:
    """The k-NN probe and the silhouette of one panel's label, on all the embedding's vectors."""
    values = (
        embedding.labels[panel.column].fillna("").astype(str) if panel.column in embedding.labels else None
    )
    row: dict[str, Any] = {"representation": embedding.description, "panel": panel.column}
    if values is None:
        return row | {
            "points": 0,
            "classes": 0,
            "knn_uar": math.nan,
            "chance": math.nan,
            "silhouette": math.nan,
            "cross_validation": "",
            "note": f"no {panel.column} labels",
        }
    classes = _classes(panel, values)
    mask = values.isin(classes).to_numpy()
    row |= {
        "points": int(mask.sum()),
        "classes": len(classes),
        "chance": 1.0 / len(classes) if classes else math.nan,
    }
    try:
        groups = _groups_for(panel, embedding.labels, mask)
        _, _, score, description = _probe(embedding.vectors[mask], values[mask], groups, k, folds, seed)
        row |= {"knn_uar": score, "cross_validation": description}
        row["silhouette"] = silhouette(embedding.vectors[mask], values[mask], max_points=5000, seed=seed)
        row["note"] = ""
    except AnalysisError as error:
        row |= {
            "knn_uar": row.get("knn_uar", math.nan),
            "silhouette": math.nan,
            "cross_validation": row.get("cross_validation", ""),
            "note": f"not computed: {error}",
        }
    return row


def _style(n: int) -> list[tuple[Any, str]]:
    """(colour, marker) per class: the seaborn colour-blind palette, with markers once colours repeat."""
    colours = sns.color_palette("colorblind", 10)
    return [(colours[i % 10], _MARKERS[(i // 10) % len(_MARKERS)]) for i in range(n)]


def tsne_figure(
    embedding: Embedding,
    panels: Iterable[str] = EMOTION_PANELS,
    title: str | None = None,
    k: int = 10,
    seed: int = 0,
) -> tuple[Any, pd.DataFrame]:
    """A row of t-SNE panels, one per label, each titled with its k-NN UAR and silhouette.

    Returns the matplotlib figure and one probe row per panel (columns of ``PROBE_COLUMNS``).
    """
    chosen = [PANELS[name] for name in panels]
    fig, axes = plt.subplots(
        1, len(chosen), figsize=(5.2 * len(chosen), 5.6), squeeze=False, layout="constrained"
    )
    rows = []
    shown = embedding.labels.iloc[embedding.index].reset_index(drop=True)
    for letter, (axis, panel) in zip("abcdefgh", zip(axes[0], chosen, strict=True), strict=False):
        row = probe_panel(embedding, panel, k=k, seed=seed)
        rows.append(row)
        values = (
            shown[panel.column].fillna("").astype(str)
            if panel.column in shown
            else pd.Series([""] * len(shown))
        )
        classes = _classes(panel, values)
        # A class keeps its colour in every figure: its place in the panel's fixed order decides it.
        positions = [
            panel.order.index(v) if v in panel.order else len(panel.order) + i for i, v in enumerate(classes)
        ]
        styles = _style(max(positions, default=-1) + 1)
        for position, value in zip(positions, classes, strict=True):
            colour, marker = styles[position]
            colour = panel.colours.get(value, colour)
            at = (values == value).to_numpy()
            axis.scatter(
                *embedding.points[at].T,
                s=14,
                color=colour,
                marker=marker,
                alpha=0.8,
                linewidths=0,
                label=f"{panel.name(value)} ({int(at.sum())})",
            )
        if math.isnan(row.get("knn_uar", math.nan)):
            numbers = row.get("note", "") or "no probe"
        else:
            numbers = f"k-NN UAR {row['knn_uar']:.2f} (chance {row['chance']:.2f}), silhouette {row['silhouette']:.2f}"
        axis.set_title(f"({letter}) {panel.title}\n{numbers}", fontsize=10)
        axis.set_xlabel("t-SNE dimension 1")
        axis.set_ylabel("t-SNE dimension 2")
        axis.set_xticks([])
        axis.set_yticks([])
        if classes:
            axis.legend(
                loc="upper center",
                bbox_to_anchor=(0.5, -0.06),
                ncol=min(len(classes), 3 if len(classes) <= 6 else 4),
                fontsize=8,
                frameon=False,
                markerscale=1.5,
            )
    caption = f"{len(embedding.index)} of {len(embedding.vectors)} points shown, perplexity {embedding.perplexity:.3g}"
    fig.suptitle(
        f"{title or f't-SNE of {embedding.description}'}\n({caption}; probes on all points)", fontsize=12
    )
    probes = pd.DataFrame(rows)
    probes.insert(0, "figure", "")
    return fig, probes.reindex(columns=list(PROBE_COLUMNS))


def figures_for(
    embedding: Embedding, config: Any, k: int = 10, save: bool = True
) -> tuple[list[Any], pd.DataFrame]:
    """Both figures of one representation (emotion/arousal/valence, then speaker/gender), saved as
    PNG+PDF under the names of ``FIGURE_STEMS``; returns the figures and their probe rows."""
    figures, tables = [], []
    for kind, panels, label in (
        ("emotion", EMOTION_PANELS, "emotion, arousal and valence"),
        ("speaker", SPEAKER_PANELS, "speaker and gender"),
    ):
        stem = FIGURE_STEMS[(embedding.name, kind)]
        prefix = {"figure3_tsne_acnn": "Figure 3: ", "figure4_tsne_autoencoder": "Figure 4: "}.get(stem, "")
        fig, probes = tsne_figure(
            embedding,
            panels,
            f"{prefix}t-SNE of {embedding.description}, by {label}",
            k=k,
            seed=config.tsne.seed,
        )
        probes["figure"] = stem
        if save:
            plots.save_figure(fig, stem, plots.figure_folders(config))
        figures.append(fig)
        tables.append(probes)
    return figures, pd.concat(tables, ignore_index=True)


def write_probes(probes: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write the probe table as CSV (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    probes.reindex(columns=list(PROBE_COLUMNS)).to_csv(tmp, index=False, float_format="%.4f")
    os.replace(tmp, path)
    return path


LABEL_COLUMNS = ("utterance_id", "emotion", "arousal_class", "valence_class", "speaker", "gender", "session")


def labels_for(manifest: pd.DataFrame, ids: Sequence[str]) -> pd.DataFrame:
    """The label columns of the manifest rows with these ids, in the ids' order."""
    table = manifest.drop_duplicates("utterance_id").set_index("utterance_id")
    missing = [i for i in ids if i not in table.index]
    if missing:
        raise AnalysisError(
            f"{len(missing)} vectors have ids that are not in the manifest (e.g. {missing[:3]}): were they "
            "computed with another configuration? Re-run the earlier notebooks with this one"
        )
    columns = [c for c in LABEL_COLUMNS[1:] if c in table.columns]
    return table.loc[list(ids), columns].fillna("").astype(str).reset_index()

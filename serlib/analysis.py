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

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

log = logging.getLogger(__name__)

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


# -- the three numbers ----------------------------------------------------------------------------
def _check_vectors(vectors: np.ndarray, name: str = "vectors") -> np.ndarray:
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


def tsne(vectors: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """2-D t-SNE embedding ``[n, 2]`` (scikit-learn, PCA initialisation): same seed, same picture.

    The perplexity is lowered to ``(n - 1) / 3`` when there are too few points for the one asked
    (t-SNE needs more than 3 x perplexity neighbours); a warning says so.
    """
    from sklearn.manifold import TSNE

    array = _check_vectors(vectors)
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
    from sklearn.model_selection import GroupKFold, StratifiedKFold

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
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    array = _check_vectors(vectors)
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
    from sklearn.metrics import silhouette_score

    array = _check_vectors(vectors)
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


# -- embeddings and figures -----------------------------------------------------------------------
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
    perplexity: float = 30.0,
    max_points: int = 2000,
) -> Embedding:
    """t-SNE of at most ``max_points`` vectors (a seeded subsample), kept with all vectors and labels."""
    array = _check_vectors(vectors)
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
    import seaborn as sns

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
    import matplotlib.pyplot as plt

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


def save_figure(fig: Any, stem: str, folders: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """PNG and PDF of ``fig`` in every folder (``serlib.plots.save_figure``: temp file, then rename)."""
    from serlib import plots

    return plots.save_figure(fig, stem, [Path(f) for f in folders])


def figure_folders(config: Any) -> list[Path]:
    """Where figures go (``plots.figure_folders``): ``<output_dir>/figures`` and ``config.figures_dir``."""
    from serlib import plots

    return plots.figure_folders(config)


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
            save_figure(fig, stem, figure_folders(config))
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


# -- where the vectors come from ------------------------------------------------------------------
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


def settings(config: Any) -> list[str]:
    """The protocol's settings that are configured: ``within`` and/or ``cross``."""
    protocol = config.protocol
    chosen = ["within"] if protocol.within_corpus is not None else []
    if protocol.cross_corpus_train is not None and protocol.cross_corpus_test is not None:
        chosen.append("cross")
    return chosen


def finished_hidden_runs(config: Any, setting: str = "within") -> pd.DataFrame:
    """Finished ACNN runs (``metrics.json`` present) that stored a ``hidden.h5``: condition, seed, fold, path."""
    root = config.output_path / "results" / setting
    rows = []
    for path in sorted(root.glob("*/seed*/fold*/hidden.h5")):
        if not (path.parent / "metrics.json").is_file():
            continue
        condition, seed, fold = path.parts[-4], path.parts[-3], path.parts[-2]
        rows.append(
            {
                "condition": condition,
                "seed": int(seed.removeprefix("seed")),
                "fold": int(fold.removeprefix("fold")),
                "path": path,
            }
        )
    return pd.DataFrame(rows, columns=["condition", "seed", "fold", "path"])


def baseline_condition(config: Any) -> str:
    """The condition whose ACNN has no AE vector (BL in the paper): the ACNN alone, as in Figure 3."""
    for condition in config.protocol.conditions:
        if condition.autoencoder_corpus == "none":
            return condition.name
    if not config.protocol.conditions:
        raise AnalysisError("protocol.conditions is empty: configure at least one condition")
    return config.protocol.conditions[0].name


def acnn_hidden(
    config: Any,
    setting: str = "within",
    condition: str | None = None,
    seed: int | None = None,
    fold: int | None = None,
) -> tuple[list[str], np.ndarray, str]:
    """Last-hidden-layer vectors of ONE trained ACNN for its test utterances: (ids, vectors, description).

    Each fold trains its own ACNN, and the hidden spaces of two models are not aligned (their units are
    permuted and scaled differently), so the vectors of several folds must not share one picture. By
    default: the baseline condition, the lowest seed, and the fold with the most test utterances.
    """
    from serlib import experiments

    runs = finished_hidden_runs(config, setting)
    condition = condition or baseline_condition(config)
    runs = runs[runs["condition"] == condition]
    if seed is not None:
        runs = runs[runs["seed"] == seed]
    if fold is not None:
        runs = runs[runs["fold"] == fold]
    if runs.empty:
        raise AnalysisError(
            f"no finished ACNN run with hidden.h5 under {config.output_path / 'results' / setting}/{condition}: "
            "run notebook 04 (experiments.run_protocol) with this configuration first"
        )
    runs = runs[runs["seed"] == runs["seed"].min()].sort_values("fold")
    loaded = [
        (experiments.read_hidden(path), int(f)) for path, f in zip(runs["path"], runs["fold"], strict=True)
    ]
    # The largest test fold; the first such fold on ties (max keeps the first maximum).
    (ids, vectors), chosen = max(loaded, key=lambda item: len(item[0][0]))
    corpus = config.protocol.within_corpus if setting == "within" else config.protocol.cross_corpus_test
    test = f"test session {chosen}" if setting == "within" else "all test utterances"
    description = f"the ACNN's last hidden layer ({corpus}, condition {condition}, seed {int(runs['seed'].min())}, {test})"
    return list(ids), _check_vectors(vectors, f"hidden layer of {condition}").astype(np.float32), description


def autoencoder_jobs(config: Any) -> pd.DataFrame:
    """Each distinct autoencoder the protocol needs, once: corpus key, epochs and the conditions using it."""
    from serlib import experiments

    jobs: dict[tuple[str, int], list[str]] = {}
    for setting in settings(config):
        for condition in config.protocol.conditions:
            key = experiments.autoencoder_corpus(config, setting, condition)
            if key is None:
                continue
            epochs = int(condition.autoencoder_epochs or config.autoencoder.epochs)
            jobs.setdefault((key, epochs), []).append(f"{condition.name} ({setting})")
    rows = [{"corpus": k, "epochs": e, "used_by": ", ".join(users)} for (k, e), users in jobs.items()]
    return pd.DataFrame(rows, columns=["corpus", "epochs", "used_by"])


def largest_autoencoder_condition(config: Any) -> Any:
    """The condition whose AE saw the most unlabeled utterances (full TED-LIUM, fT, in the paper)."""
    from serlib import corpora, experiments

    setting = settings(config)[0] if settings(config) else "within"
    best, best_count = None, -1
    for condition in config.protocol.conditions:
        key = experiments.autoencoder_corpus(config, setting, condition)
        if key is None:
            continue
        count = len(corpora.load_configured(config, key))
        if count >= best_count:  # ties go to the later condition, as fT comes last in the paper
            best, best_count = condition, count
    if best is None:
        raise AnalysisError("no condition of protocol.conditions trains an autoencoder: nothing to show")
    return best


def autoencoder_model(config: Any, condition: Any = None) -> tuple[Path, str]:
    """The trained AE of ``condition`` (default: the most unlabeled data) for the within-corpus setting,
    trained now or found in the cache: (model path, corpus key it was trained on)."""
    from serlib import autoencoder, experiments

    condition = condition or largest_autoencoder_condition(config)
    setting = settings(config)[0]
    key = experiments.autoencoder_corpus(config, setting, condition)
    if key is None:
        raise AnalysisError(f"condition {condition.name} trains no autoencoder (autoencoder_corpus: none)")
    return autoencoder.train_configured(config, key, epochs=condition.autoencoder_epochs), key


def autoencoder_vectors(config: Any, condition: Any = None) -> tuple[list[str], np.ndarray, str]:
    """AE representations of the 4-class utterances of the within corpus: (ids, vectors, description).

    ``condition`` defaults to the one with the most unlabeled data; its AE is trained (or found in the
    cache) and the corpus encoded (or found) exactly as the protocol does it.
    """
    from serlib import autoencoder, corpora, experiments

    condition = condition or largest_autoencoder_condition(config)
    model, key = autoencoder_model(config, condition)
    target = experiments.corpora_of(config, settings(config)[0])[1]
    representations = autoencoder.encode_configured(config, model, target)
    manifest = corpora.load_configured(config, target)
    labeled = set(manifest.loc[manifest["emotion"].isin(corpora.EMOTIONS), "utterance_id"])
    keep = [i for i, utterance in enumerate(representations.ids) if utterance in labeled]
    ids = [representations.ids[i] for i in keep]
    description = f"the AE representation ({target}, AE of condition {condition.name} trained on {key})"
    return ids, _check_vectors(representations.vectors[keep]).astype(np.float32), description


# -- notebook 01: the corpora ---------------------------------------------------------------------
def corpus_roles(config: Any) -> dict[str, list[str]]:
    """What each configured corpus is used for in the protocol (labeled training/test, which AE)."""
    from serlib import experiments

    roles: dict[str, list[str]] = {key: [] for key in config.corpora}
    protocol = config.protocol
    if protocol.within_corpus:
        roles[protocol.within_corpus].append("within-corpus (LOSO)")
    if "cross" in settings(config):
        roles[protocol.cross_corpus_train].append("cross-corpus training")
        roles[protocol.cross_corpus_test].append("cross-corpus test")
    for setting in settings(config):
        for condition in protocol.conditions:
            key = experiments.autoencoder_corpus(config, setting, condition)
            if key is not None:
                label = f"AE of {condition.name}"
                if label not in roles[key]:
                    roles[key].append(label)
    return roles


def durations(manifest: pd.DataFrame) -> np.ndarray:
    """Seconds per utterance: segment times where given, else the audio file's header."""
    import soundfile

    seconds = np.array(manifest["end_s"] - manifest["start_s"], dtype=float)  # a writable copy
    for row in np.flatnonzero(np.isnan(seconds)):
        info = soundfile.info(str(manifest["path"].iloc[row]))
        seconds[row] = info.frames / info.samplerate
    return seconds


def corpus_summary(config: Any, manifests: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per corpus: its role, utterances, 4-class labeled utterances, speakers, sessions, hours."""
    from serlib import corpora

    roles = corpus_roles(config)
    rows = []
    for key, manifest in manifests.items():
        seconds = durations(manifest)
        rows.append(
            {
                "corpus": key,
                "type": config.corpora[key].type,
                "used as": ", ".join(roles.get(key, [])) or "(not used by the protocol)",
                "utterances": len(manifest),
                "4-class labeled": int(manifest["emotion"].isin(corpora.EMOTIONS).sum()),
                "speakers": int(manifest["speaker"].nunique()),
                "sessions": int(manifest["session"].nunique()),
                "hours": round(float(np.sum(seconds)) / 3600.0, 3),
                "mean seconds": round(float(np.mean(seconds)), 2) if len(seconds) else math.nan,
            }
        )
    return pd.DataFrame(rows)


def paper_counts(config: Any, manifests: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Class counts of configured IEMOCAP / MSP-IMPROV corpora next to the paper's (empty otherwise)."""
    from serlib import corpora

    papers = {
        "iemocap": getattr(corpora, "IEMOCAP_PAPER_COUNTS", {}),
        "msp_improv": getattr(corpora, "MSP_IMPROV_PAPER_COUNTS", {}),
    }
    rows = []
    for key, manifest in manifests.items():
        paper = papers.get(config.corpora[key].type)
        if not paper:
            continue
        counts = manifest["emotion"].value_counts()
        for emotion in corpora.EMOTIONS:
            ours = int(counts.get(emotion, 0))
            rows.append(
                {
                    "corpus": key,
                    "emotion": emotion,
                    "serlib": ours,
                    "paper": paper[emotion],
                    "difference": ours - paper[emotion],
                }
            )
    return pd.DataFrame(rows, columns=["corpus", "emotion", "serlib", "paper", "difference"])


def plot_label_distributions(manifests: dict[str, pd.DataFrame]) -> Any:
    """Bar charts of emotion, arousal class and valence class per labeled corpus (counts on the bars)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from serlib import corpora

    labeled = {k: m for k, m in manifests.items() if m["emotion"].isin(corpora.EMOTIONS).any()}
    if not labeled:
        raise AnalysisError("no configured corpus has emotion labels: nothing to plot")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), layout="constrained")
    specs = (
        ("emotion", corpora.EMOTIONS, "Emotion"),
        ("arousal_class", corpora.LEVELS, "Arousal class"),
        ("valence_class", corpora.LEVELS, "Valence class"),
    )
    colours = sns.color_palette("colorblind", len(labeled))
    width = 0.8 / len(labeled)
    for axis, (column, classes, title) in zip(axes, specs, strict=True):
        for number, (key, manifest) in enumerate(labeled.items()):
            subset = manifest[manifest["emotion"].isin(corpora.EMOTIONS)]
            counts = subset[column].value_counts()
            heights = [int(counts.get(c, 0)) for c in classes]
            positions = np.arange(len(classes)) + (number - (len(labeled) - 1) / 2) * width
            bars = axis.bar(positions, heights, width, color=colours[number], label=key)
            axis.bar_label(bars, fontsize=8)
        axis.set_xticks(np.arange(len(classes)), [c.capitalize() for c in classes])
        axis.set_title(f"{title} (4-class utterances)")
        axis.set_xlabel(title)
        axis.set_ylabel("Utterances")
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, title="Corpus", loc="outside right upper", frameon=False)
    return fig


def plot_durations(seconds: dict[str, np.ndarray], config: Any) -> Any:
    """Histogram of utterance durations per corpus, with the ACNN's cut and the AE's fixed length marked."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, axis = plt.subplots(figsize=(9, 4), layout="constrained")
    colours = sns.color_palette("colorblind", max(3, len(seconds) + 2))
    top = max((float(np.max(v)) for v in seconds.values() if len(v)), default=1.0)
    bins = np.linspace(0, top * 1.02, 40).tolist()
    for colour, (key, values) in zip(colours, seconds.items(), strict=False):
        axis.hist(
            values, bins=bins, histtype="step", linewidth=1.8, color=colour, label=f"{key} ({len(values)})"
        )
    logmel = config.features.logmel
    cut = logmel.max_frames * logmel.shift_s
    axis.axvline(cut, color="black", linestyle="--", label=f"ACNN input: cut/padded to {cut:.2f} s")
    fixed = config.features.spectrogram.fixed_length_s
    if fixed is not None:
        axis.axvline(
            fixed, color="grey", linestyle=":", linewidth=2, label=f"AE input: fixed length {fixed:.2f} s"
        )
    axis.set_xlabel("Utterance duration (s)")
    axis.set_ylabel("Utterances")
    axis.set_title("Utterance durations per corpus")
    axis.legend(frameon=False, fontsize=8)
    return fig


def examples(manifest: pd.DataFrame, per_class: int = 1) -> pd.DataFrame:
    """The first ``per_class`` utterances of each emotion (for listening and pictures)."""
    from serlib import corpora

    picked = [manifest[manifest["emotion"] == e].head(per_class) for e in corpora.EMOTIONS]
    return pd.concat(picked, ignore_index=True)


def load_utterance(row: Any) -> tuple[np.ndarray, int]:
    """The audio of one manifest row (a dict or named tuple), its segment only where times are given."""
    get = row.get if isinstance(row, dict) else lambda name: getattr(row, name)
    start, end = get("start_s"), get("end_s")
    from serlib import audio

    return audio.load(
        str(get("path")),
        None if start is None or pd.isna(start) else float(start),
        None if end is None or pd.isna(end) else float(end),
    )


def feature_plan(config: Any) -> pd.DataFrame:
    """Which (corpus, extractor) stores the protocol reads: log-Mel for the labeled corpora, auDeep
    spectrograms for every AE's training corpus and for the labeled corpora it encodes."""
    from serlib import experiments

    plan: dict[tuple[str, str], None] = {}
    labeled = [key for setting in settings(config) for key in experiments.corpora_of(config, setting)]
    for key in labeled:
        plan[(key, "logmel")] = None
    jobs = autoencoder_jobs(config)
    for key in jobs["corpus"]:
        plan[(key, "spectrogram")] = None
    if len(jobs):
        for key in labeled:
            plan[(key, "spectrogram")] = None
    return pd.DataFrame(list(plan), columns=["corpus", "extractor"])


def plot_features(
    signal: np.ndarray, sample_rate: int, config: Any, title: str = "", clip_below_db: Any = "config"
) -> Any:
    """One utterance three ways: the waveform, the ACNN's 26 log-Mel bands, the AE's auDeep spectrogram.

    ``clip_below_db`` overrides the configured clipping threshold of the auDeep spectrogram (try -30).
    """
    import matplotlib.pyplot as plt

    from serlib import features

    logmel_settings = config.features.logmel
    logmel = features.logmel(
        signal,
        sample_rate,
        logmel_settings.bands,
        logmel_settings.low_hz,
        logmel_settings.high_hz,
        logmel_settings.frame_s,
        logmel_settings.shift_s,
        logmel_settings.engine,
    )
    spectrogram_settings = config.features.spectrogram.model_dump()
    if clip_below_db != "config":
        spectrogram_settings["clip_below_db"] = clip_below_db
    spectrogram = np.asarray(features.audeep_spectrogram(signal, sample_rate, **spectrogram_settings))
    if spectrogram.ndim == 3:  # chunked: show the chunks one after another
        spectrogram = spectrogram.reshape(-1, spectrogram.shape[-1])
    fig, axes = plt.subplots(3, 1, figsize=(10, 8.5), layout="constrained")
    time_axis = np.arange(len(signal)) / sample_rate
    axes[0].plot(time_axis, signal, linewidth=0.5, color="#0173b2")
    axes[0].set_xlim(0, time_axis[-1])
    axes[0].set_xlabel("Time (s)")
    axes[0].set_ylabel("Amplitude")
    axes[0].set_title(f"Waveform {title}".strip())
    shift = logmel_settings.shift_s
    image = axes[1].imshow(
        logmel.T,
        origin="lower",
        aspect="auto",
        cmap="magma",
        extent=(0, len(logmel) * shift, 0, logmel.shape[1]),
    )
    fig.colorbar(image, ax=axes[1], label="ln energy")
    axes[1].set_xlabel("Time (s)")
    axes[1].set_ylabel("Mel band (0-6.5 kHz)")
    axes[1].set_title(
        f"ACNN input: {logmel.shape[1]} log-Mel bands, {logmel.shape[0]} frames of 10 ms (openSMILE)"
    )
    hop = config.features.spectrogram.window_s - config.features.spectrogram.overlap_s
    image = axes[2].imshow(
        spectrogram.T,
        origin="lower",
        aspect="auto",
        cmap="magma",
        vmin=-1,
        vmax=1,
        extent=(0, len(spectrogram) * hop, 0, spectrogram.shape[1]),
    )
    fig.colorbar(image, ax=axes[2], label="normalised dB")
    clip = spectrogram_settings["clip_below_db"]
    axes[2].set_xlabel("Time (s)")
    axes[2].set_ylabel("Mel band")
    axes[2].set_title(
        f"AE input: auDeep spectrogram, {spectrogram.shape[1]} mel bands, {spectrogram.shape[0]} frames of "
        f"{hop * 1000:.0f} ms, clipped below {clip} dB"
    )
    return fig


# -- notebook 02: autoencoders --------------------------------------------------------------------
def loss_history(model_path: str | os.PathLike[str]) -> list[float]:
    """Reconstruction RMSE per epoch stored next to a trained AE (``loss_history.csv``)."""
    from serlib import autoencoder

    path = Path(model_path).parent / autoencoder.HISTORY_CSV
    if not path.is_file():
        raise AnalysisError(f"{path} does not exist: was {model_path} trained by serlib.autoencoder?")
    return pd.read_csv(path)["loss"].astype(float).tolist()


def _decoder_model(model: Any) -> tuple[Any, Any]:
    """(spectrogram -> decoder input, [spectrogram, decoder input] -> reconstruction) from a trained AE."""
    import keras

    decoder_input = model.get_layer("decoder_input").output
    return keras.Model(model.inputs[0], decoder_input), keras.Model(
        [model.inputs[0], decoder_input], model.outputs[0]
    )


def reconstruct(model: Any, spectrograms: np.ndarray) -> np.ndarray:
    """Reconstructions ``[n, T, F]`` in the input's time order (the AE itself outputs reversed time)."""
    x = np.asarray(spectrograms, dtype=np.float32)
    if x.ndim == 2:
        x = x[np.newaxis]
    return np.asarray(model(x, training=False))[:, ::-1]


def decoder_leakage(
    model: Any, spectrogram: np.ndarray, offsets: Iterable[int] = range(-3, 5)
) -> pd.DataFrame:
    """How much the reconstruction of each frame depends on each decoder input: the target-leakage test.

    The decoder reconstructs target frame t (the reversed input) from its inputs [0, target[0], ...],
    so in auDeep's bidirectional decoder, decoder input t+1 IS target[t], and the backward direction
    reads it (spec 2.4, "target leakage"). For every offset k, decoder input t+k is blanked (set to 0,
    the middle of the [-1, 1] range) in copy t of the utterance, and output frame t is compared with
    the output when nothing is blanked. One row per offset: ``change`` (RMS change of output frame t:
    how much frame t depends on that input), ``rmse`` (reconstruction error of frame t with the input
    blanked) and ``baseline_rmse`` (nothing blanked). A causal decoder has ``change`` 0 for all k >= 1.
    """
    x = np.asarray(spectrogram, dtype=np.float32)
    if x.ndim != 2:
        raise AnalysisError(f"decoder_leakage takes one spectrogram [T, F], got shape {x.shape}")
    frames = len(x)
    inputs_of, decode_layer_layout = _decoder_model(model)
    # The AE may run time-major inside ([T, batch, F], auDeep's layout): the decoder-input layer then
    # holds time first, while the model's input and output stay batch-major.
    time_major = any(layer.name == "time_major" for layer in model.layers)

    def decode(arrays: list[np.ndarray], training: bool = False) -> Any:
        spectrograms, inputs = arrays
        if time_major:
            inputs = np.transpose(inputs, (1, 0, 2))
        return decode_layer_layout([spectrograms, inputs], training=training)

    decoder_inputs = np.asarray(inputs_of(x[np.newaxis]))
    decoder_inputs = decoder_inputs[:, 0] if time_major else decoder_inputs[0]
    target = x[::-1]
    baseline = np.asarray(decode([x[np.newaxis], decoder_inputs[np.newaxis]], training=False))[0]
    rows = []
    for offset in offsets:
        positions = [t for t in range(frames) if 0 <= t + offset < frames]
        if not positions:
            continue
        batch = np.repeat(decoder_inputs[np.newaxis], len(positions), axis=0)
        for row, t in enumerate(positions):
            batch[row, t + offset] = 0.0
        copies = np.repeat(x[np.newaxis], len(positions), axis=0)
        output = np.asarray(decode([copies, batch], training=False))
        frame_out = np.stack([output[row, t] for row, t in enumerate(positions)])
        rows.append(
            {
                "offset": int(offset),
                "change": float(np.sqrt(np.mean(np.square(frame_out - baseline[positions])))),
                "rmse": float(np.sqrt(np.mean(np.square(frame_out - target[positions])))),
                "baseline_rmse": float(np.sqrt(np.mean(np.square(baseline[positions] - target[positions])))),
            }
        )
    return pd.DataFrame(rows, columns=["offset", "change", "rmse", "baseline_rmse"])


def plot_leakage(table: pd.DataFrame, title: str = "") -> Any:
    """Bar chart of ``decoder_leakage``: how much output frame t changes when decoder input t+k is blanked."""
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(8, 4.2), layout="constrained")
    offsets = table["offset"].to_numpy()
    colours = ["#d55e00" if k == 1 else ("#0173b2" if k <= 0 else "#949494") for k in offsets]
    axis.bar(offsets, table["change"], color=colours)
    axis.set_xticks(offsets, [f"{k:+d}" if k else "0" for k in offsets])
    axis.set_xlabel(
        "Blanked decoder input t+k (k <= 0: seen by teacher forcing; +1: the target frame itself)"
    )
    axis.set_ylabel("RMS change of output frame t")
    axis.set_title(title or "Which decoder inputs does the reconstruction of frame t use?")
    return fig


def plot_reconstruction(original: np.ndarray, reconstruction: np.ndarray, title: str = "") -> Any:
    """Original and reconstructed auDeep spectrogram one above the other, with their RMSE."""
    import matplotlib.pyplot as plt

    rmse = float(np.sqrt(np.mean(np.square(np.asarray(original) - np.asarray(reconstruction)))))
    fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True, layout="constrained")
    for axis, data, name in zip(
        axes, (original, reconstruction), ("Original", "Reconstruction"), strict=True
    ):
        image = axis.imshow(np.asarray(data).T, origin="lower", aspect="auto", cmap="magma", vmin=-1, vmax=1)
        axis.set_ylabel("Mel band")
        axis.set_title(name)
    axes[1].set_xlabel("Frame (40 ms hop)")
    fig.colorbar(image, ax=axes, label="normalised dB")
    fig.suptitle(f"{title} (RMSE {rmse:.3f})".strip())
    return fig


# -- notebook 03: representations -----------------------------------------------------------------
def encode_all(config: Any) -> pd.DataFrame:
    """Train (or find) every condition's AE and encode its training and test corpora, exactly as the
    protocol will (``experiments.prepare_sources``); one row per encoded corpus with the file path."""
    from serlib import experiments

    rows = []
    for setting in settings(config):
        for condition in config.protocol.conditions:
            sources = experiments.prepare_sources(config, setting, condition)
            if not sources.get("autoencoder_corpus"):
                continue
            for role in ("train", "test"):
                rows.append(
                    {
                        "condition": condition.name,
                        "setting": setting,
                        "AE trained on": sources["autoencoder_corpus"],
                        "role": role,
                        "encoded corpus": sources[f"{role}_corpus"],
                        "path": sources[f"{role}_representations"],
                    }
                )
    return pd.DataFrame(
        rows, columns=["condition", "setting", "AE trained on", "role", "encoded corpus", "path"]
    )


def representation_overview(encoded: pd.DataFrame) -> pd.DataFrame:
    """Shape and value statistics of each distinct representation file listed by ``encode_all``."""
    from serlib import autoencoder

    rows = []
    for entry in encoded.drop_duplicates("path").to_dict("records"):
        vectors = autoencoder.load_representations(entry["path"]).vectors
        rows.append(
            {
                "AE trained on": entry["AE trained on"],
                "encoded corpus": entry["encoded corpus"],
                "utterances": vectors.shape[0],
                "dimensions": vectors.shape[1],
                "min": float(vectors.min()),
                "max": float(vectors.max()),
                "mean |v|": float(np.abs(vectors).mean()),
                "saturated (|v| > 0.99)": float(np.mean(np.abs(vectors) > 0.99)),
                "finite": bool(np.isfinite(vectors).all()),
            }
        )
    return pd.DataFrame(rows)


def plot_vectors(
    vectors: np.ndarray, labels: pd.DataFrame, dimensions: int = 64, title: str = "", standardise: bool = True
) -> Any:
    """Two heat maps of the first ``dimensions`` dimensions, one row per utterance, grouped by emotion:
    the raw values, and (``standardise``) each dimension z-scored across utterances, which shows the
    small per-utterance differences that the raw values' large per-dimension offsets hide."""
    import matplotlib.pyplot as plt

    from serlib import corpora

    order = np.argsort(
        [corpora.EMOTIONS.index(e) if e in corpora.EMOTIONS else 99 for e in labels["emotion"]], kind="stable"
    )
    raw = np.asarray(vectors, dtype=np.float64)
    panels = [("Raw values (tanh output)", raw, -1.0, 1.0, "value")]
    if standardise:
        z = (raw - raw.mean(axis=0)) / np.maximum(raw.std(axis=0), 1e-12)
        panels.append(("Each dimension standardised across utterances", z, -2.5, 2.5, "z-score"))
    fig, axes = plt.subplots(
        1, len(panels), figsize=(7.5 * len(panels), 5), squeeze=False, layout="constrained"
    )
    emotions = labels["emotion"].to_numpy()[order]
    edges = [0] + [i for i in range(1, len(emotions)) if emotions[i] != emotions[i - 1]] + [len(emotions)]
    for axis, (name, data, low, high, unit) in zip(axes[0], panels, strict=True):
        shown = data[order][:, :dimensions]
        image = axis.imshow(shown, aspect="auto", cmap="RdBu_r", vmin=low, vmax=high, interpolation="nearest")
        fig.colorbar(image, ax=axis, label=unit)
        for start, end in zip(edges[:-1], edges[1:], strict=True):
            axis.axhline(start - 0.5, color="black", linewidth=0.8)
            axis.text(
                -0.8,
                (start + end) / 2,
                f"{emotions[start].capitalize()} ",
                ha="right",
                va="center",
                fontsize=9,
            )
        axis.set_yticks([])
        axis.set_xlabel(f"Dimension (first {shown.shape[1]} of {raw.shape[1]})")
        axis.set_ylabel("Utterances, grouped by emotion", labelpad=45)
        axis.set_title(name)
    fig.suptitle(title or "AE representations")
    return fig


# -- notebook 04: results -------------------------------------------------------------------------
def plot_uar(runs: pd.DataFrame, chance: float = 0.25) -> Any:
    """UAR of every run per condition and setting (each dot is one seed's fold or cross-corpus run)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    if runs.empty:
        raise AnalysisError("no finished runs to plot: run experiments.run_protocol first")
    frame = runs.assign(UAR=100.0 * runs["uar"].astype(float))
    fig, axis = plt.subplots(figsize=(8, 4.2), layout="constrained")
    sns.stripplot(
        data=frame,
        x="condition",
        y="UAR",
        hue="setting",
        dodge=True,
        palette="colorblind",
        ax=axis,
        jitter=0.15,
        size=6,
        alpha=0.8,
    )
    axis.axhline(100.0 * chance, color="grey", linestyle=":", label=f"chance ({100 * chance:.0f} %)")
    axis.set_xlabel("Condition")
    axis.set_ylabel("UAR (%) per run")
    axis.set_title("Every ACNN run: unweighted average recall on its test data")
    axis.legend(frameon=False, title="Setting", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig

"""The widgets of notebook 05's views by ear (issue 45), thin over the tables of ``listening``.

``TsneExplorer``: the t-SNE pictures of Figures 3 and 4 as a plotly ``FigureWidget``; hovering a point
shows its utterance id, corpus, speaker, gender, true and predicted emotion with the probability,
clicking it plays the utterance; a colour menu and a filter for the label families. ``ConfusionExplorer``:
Figure 2's confusion matrix for a chosen setting, condition and seed (or pooled over seeds); clicking a
cell lists its utterances with a player each. The players are ``ipywidgets.Audio`` widgets holding the
clip's WAV bytes (``listening.clip_wav``), so nothing is served from disk and everything works offline.

Why plotly and ipywidgets (docs/notebooks.md): plotly's ``FigureWidget`` (an anywidget since plotly 6)
runs in JupyterLab 4 from its pip package alone, with no separately built extension, and sends clicks
back to Python; hover labels are drawn in the browser. No JavaScript is written here.

``tsne_view`` and ``confusion_view`` return the widget where a person looks (``listening.interactive``)
and a small static table otherwise (``serlib reproduce``'s papermill kernels), without building widgets.
"""

from __future__ import annotations

import copy
import html
import logging
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from serlib.analysis import listening
from serlib.analysis.tsne import PANELS, AnalysisError
from serlib.data import loaders
from serlib.data.audio import AudioError
from serlib.data.manifest import EMOTIONS

log = logging.getLogger(__name__)

FAMILIES = {
    "emotion": "true emotion",
    "predicted": "predicted emotion",
    "correct": "prediction right or wrong",
    "arousal_class": "arousal class",
    "valence_class": "valence class",
    "speaker": "speaker",
    "gender": "gender",
}
"""The label families a t-SNE view can be coloured and filtered by (columns of ``listening.POINT_COLUMNS``)."""

FIXED_COLOURS = {"right": "#029e73", "wrong": "#d55e00"}
PALETTE = (
    "#0173b2",
    "#de8f05",
    "#029e73",
    "#d55e00",
    "#cc78bc",
    "#ca9161",
    "#fbafe4",
    "#949494",
    "#ece133",
    "#56b4e9",
)
PLAYER_CLASS = "serlib-player"  # every audio widget of these views (the browser test finds them by it)
POOLED = -1  # the seed menu's value for "pooled over seeds" (a widget's None reads as no choice)
PAGE_SIZE = 8  # players drawn at once for a confusion cell (each holds its clip's bytes)


def _audio(clip: bytes, autoplay: bool = False) -> widgets.Audio:
    audio = widgets.Audio(
        value=clip, format="wav", autoplay=autoplay, controls=True, layout=widgets.Layout(width="320px")
    )
    audio.add_class(PLAYER_CLASS)
    return audio


def player(row: Any, seconds: float, autoplay: bool = False) -> widgets.Audio:
    """An audio widget playing one utterance (``row`` with path/start_s/end_s) as the model heard it."""
    return _audio(listening.clip_wav(row, seconds), autoplay)


def utterance_html(row: Any, extra: str = "") -> str:
    """The utterance's id (in a ``data-utterance`` span, for tests) with speaker and labels."""
    uid = html.escape(str(row["utterance_id"]))
    return (
        f'<span class="serlib-utterance" data-utterance="{uid}"><code>{uid}</code></span> '
        f"speaker {html.escape(str(row['speaker']))} ({html.escape(str(row['gender']) or '?')}){extra}"
    )


def _classes(column: str, values: pd.Series) -> list[str]:
    """The values of a family in a fixed order (the static figures' order), the rest sorted."""
    order = PANELS[column].order if column in PANELS else EMOTIONS if column == "predicted" else ()
    present = set(values)
    return [v for v in order if v in present] + sorted(v for v in present if v not in order)


def _colour(column: str, value: str, position: int) -> str:
    panel = PANELS.get("emotion" if column == "predicted" else column)
    if panel is not None and value in panel.colours:
        return panel.colours[value]
    return FIXED_COLOURS.get(value, PALETTE[position % len(PALETTE)])


def _publish(figure: go.FigureWidget) -> None:
    """Give the figure's whole state to the browser, as displaying it alone would
    (``BaseFigureWidget._repr_mimebundle_``): a FigureWidget inside a box is rendered from that state, and
    the edits sent before its view exists are lost (plotly.py issue 4998, anywidget-based plotly >= 6)."""
    figure._widget_layout = copy.deepcopy(figure._layout_obj._props)
    figure._widget_data = copy.deepcopy(figure._data)


def _draw_again_when_short(box: widgets.Box, figure: go.FigureWidget, tries: int = 3) -> None:
    """Draw the figure's view again when it was drawn with fewer traces than the figure holds.

    Under load the browser may draw a new FigureWidget before its state has reached it (an empty plot;
    seen with plotly 7.1 and anywidget 0.11 in JupyterLab 4.6). Each view reports the traces it drew
    (plotly's ``_js2py_traceDeltas``); when they are fewer, the state is sent again and the view rebuilt
    by taking the figure out of its box and putting it back (at most ``tries`` times). A guard: in the
    browser test's runs it never had to act, and one run in six under heavy load (load average 12 on 2
    cores) still showed an empty plot, so it does not catch every case."""
    left = [tries]

    def drawn(change: dict[str, Any]) -> None:
        shown = (change["new"] or {}).get("trace_deltas")
        if shown is None or len(shown) >= len(figure.data) or left[0] <= 0:
            return
        left[0] -= 1
        figure.send_state(["_widget_data", "_widget_layout"])
        children = box.children
        box.children = tuple(child for child in children if child is not figure)
        box.children = children

    figure.observe(drawn, names="_js2py_traceDeltas")


class TsneExplorer(widgets.VBox):  # type: ignore[misc]
    """One or more t-SNE point tables (``listening.point_table``), one shown at a time, by ear."""

    def __init__(self, tables: dict[str, pd.DataFrame], seconds: float, colour: str = "emotion") -> None:
        if not tables:
            raise AnalysisError("no t-SNE point tables to show: build them with listening.point_table")
        self.tables, self.seconds = tables, seconds
        self.projection = widgets.Dropdown(options=list(tables), description="picture")
        self.colour = widgets.Dropdown(
            options=[(v, k) for k, v in FAMILIES.items()], value=colour, description="colour"
        )
        self.family = widgets.Dropdown(
            options=[("(all points)", "")] + [(v, k) for k, v in FAMILIES.items()], description="filter"
        )
        self.keep = widgets.SelectMultiple(options=[], rows=4, description="keep")
        self.info = widgets.HTML("Hover a point for its utterance; click it to hear it.")
        # the player appears with the first click (an empty clip would be an error in the browser's console)
        self.player: widgets.Audio | None = None
        self.listen = widgets.HBox([self.info])
        self.figure = go.FigureWidget(
            layout={"height": 520, "width": 760, "hovermode": "closest", "template": "simple_white"}
        )
        self.figure.update_xaxes(showticklabels=False, title="t-SNE dimension 1")
        self.figure.update_yaxes(showticklabels=False, title="t-SNE dimension 2")
        self.clicked: str | None = None  # the utterance last played
        for control in (self.projection, self.colour, self.family, self.keep):
            control.observe(self._changed, names="value")
        super().__init__(
            children=[
                widgets.HBox([self.projection, self.colour]),
                widgets.HBox([self.family, self.keep]),
                self.figure,
                self.listen,
            ]
        )
        self.add_class("serlib-tsne")
        _draw_again_when_short(self, self.figure)
        self._changed({"owner": self.family})

    @property
    def table(self) -> pd.DataFrame:
        """The points shown now: the chosen picture's, filtered."""
        table = self.tables[self.projection.value]
        if self.family.value and self.keep.value:
            table = table[table[self.family.value].isin(self.keep.value)]
        return table

    def _changed(self, change: dict[str, Any]) -> None:
        if change["owner"] in (self.family, self.projection) and self.family.value:
            values = self.tables[self.projection.value][self.family.value]
            self.keep.options = _classes(self.family.value, values[values != ""])
        elif change["owner"] is self.family:
            self.keep.options = []
        self.redraw()

    def redraw(self) -> None:
        """One trace per class of the colour family (its legend entry hides or shows it)."""
        table, column = self.table, self.colour.value
        values = table[column].where(table[column] != "", "(none)")
        with self.figure.batch_update():
            self.figure.data = []
            for position, value in enumerate(_classes(column, values)):
                rows = table[values == value]
                self.figure.add_scatter(
                    x=rows["x"],
                    y=rows["y"],
                    mode="markers",
                    name=f"{value} ({len(rows)})",
                    marker={"size": 8, "color": _colour(column, value, position), "opacity": 0.85},
                    customdata=rows["utterance_id"].tolist(),
                    hovertext=[listening.hover_text(row) for _, row in rows.iterrows()],
                    hoverinfo="text",
                )
            self.figure.layout.title = (
                f"{self.projection.value}: {len(table)} points, colour by {FAMILIES[column]}"
            )
        _publish(self.figure)
        for trace in self.figure.data:
            trace.on_click(self._clicked)

    def _clicked(self, trace: Any, points: Any, state: Any) -> None:
        if points.point_inds:
            self.play(str(trace.customdata[points.point_inds[0]]))

    def play(self, utterance_id: str) -> None:
        """Show one point's utterance and play it (what a click does)."""
        table = self.tables[self.projection.value]
        row = table[table["utterance_id"] == utterance_id].iloc[0]
        try:
            clip = listening.clip_wav(row, self.seconds)
        except AudioError as error:
            self.info.value = f"cannot play {html.escape(utterance_id)}: {html.escape(str(error))}"
            return
        if self.player is None:
            self.player = _audio(clip, autoplay=True)
            self.listen.children = [self.info, self.player]
        else:
            self.player.value = clip
        self.clicked = utterance_id
        truth = html.escape(row["emotion"] or "unlabelled")
        said = (
            f", predicted {html.escape(row['predicted'])} (p = {row['probability']:.2f})"
            if row["predicted"]
            else ""
        )
        self.info.value = utterance_html(row, f", true {truth}{said}: playing up to {self.seconds:.2f} s")


class ConfusionExplorer(widgets.VBox):  # type: ignore[misc]
    """Figure 2 by ear: a run folder's confusion matrix for one setting, condition and seed (or pooled);
    a click on a cell lists its utterances, ``PAGE_SIZE`` players at a time."""

    def __init__(self, output_dir: str | Path, manifests: dict[str, pd.DataFrame], seconds: float) -> None:
        self.output_dir, self.manifests, self.seconds = Path(output_dir), manifests, seconds
        self.predictions = {setting: listening.run_predictions(output_dir, setting) for setting in manifests}
        self.setting = widgets.Dropdown(options=list(manifests), description="setting")
        self.condition = widgets.Dropdown(description="condition")
        self.seed = widgets.Dropdown(description="seed")
        self.heading = widgets.HTML("Click a cell to list its utterances.")
        self.rows = widgets.VBox([])
        self.previous, self.next = widgets.Button(description="previous"), widgets.Button(description="next")
        self.previous.on_click(lambda _: self._page(-1))
        self.next.on_click(lambda _: self._page(+1))
        self.figure = go.FigureWidget(layout={"height": 430, "width": 520, "template": "simple_white"})
        self.figure.update_xaxes(title="predicted", side="top")
        self.figure.update_yaxes(title="true", autorange="reversed")
        self.cell = pd.DataFrame(columns=list(listening.CELL_COLUMNS))
        self.page = 0
        self._settle = False
        self.setting.observe(lambda _: self._conditions(), names="value")
        self.condition.observe(lambda _: self._seeds(), names="value")
        self.seed.observe(lambda _: self.redraw(), names="value")
        super().__init__(
            children=[
                widgets.HBox([self.setting, self.condition, self.seed]),
                self.figure,
                self.heading,
                self.rows,
                widgets.HBox([self.previous, self.next]),
            ]
        )
        self.add_class("serlib-confusion")
        _draw_again_when_short(self, self.figure)
        self._conditions()

    def _conditions(self) -> None:
        frame = self.predictions[self.setting.value]
        names = list(dict.fromkeys(frame["condition"]))
        self.condition.options = names
        if self.condition.value != names[0]:
            self.condition.value = names[0]  # observed: lists the seeds and redraws
        else:
            self._seeds()

    def _seeds(self) -> None:
        frame = self.predictions[self.setting.value]
        seeds = sorted(int(s) for s in frame.loc[frame["condition"] == self.condition.value, "seed"].unique())
        self.seed.options = [("pooled over seeds", POOLED)] + [(str(s), s) for s in seeds]
        self.seed.value = POOLED
        self.redraw()  # also when the seed stayed "pooled"

    def selected(self) -> pd.DataFrame:
        """The predictions of the chosen setting, condition and seed (all seeds when pooled)."""
        frame = self.predictions[self.setting.value]
        frame = frame[frame["condition"] == self.condition.value]
        return frame if self.seed.value == POOLED else frame[frame["seed"] == self.seed.value]

    def redraw(self) -> None:
        if self.condition.value is None:
            return
        counts = listening.confusion_counts(self.selected())
        share = 100.0 * counts.div(counts.sum(axis=1).where(lambda s: s > 0), axis=0).fillna(0.0)
        seed = "pooled over seeds" if self.seed.value == POOLED else f"seed {self.seed.value}"
        with self.figure.batch_update():
            self.figure.data = []
            self.figure.add_heatmap(
                z=share.to_numpy(),
                x=list(EMOTIONS),
                y=list(EMOTIONS),
                text=counts.to_numpy(),
                texttemplate="%{text}",
                zmin=0,
                zmax=100,
                colorscale="Blues",
                colorbar={"title": "% of row"},
                hovertemplate="true %{y}, predicted %{x}: %{text} (%{z:.0f} % of the row)<extra></extra>",
            )
            self.figure.layout.title = f"{self.setting.value}, {self.condition.value}, {seed}: counts"
        _publish(self.figure)
        self.figure.data[0].on_click(self._clicked)

    def _clicked(self, trace: Any, points: Any, state: Any) -> None:
        if points.xs and points.ys:
            self.select(str(points.ys[0]), str(points.xs[0]))

    def select(self, true: str, predicted: str) -> None:
        """List the utterances of one cell (what a click on it does)."""
        manifest = self.manifests[self.setting.value]
        self.cell = listening.cell_utterances(self.selected(), manifest, true, predicted)
        self.page = 0
        self._page(0)

    def _page(self, step: int) -> None:
        pages = max(1, -(-len(self.cell) // PAGE_SIZE))
        self.page = min(max(0, self.page + step), pages - 1)
        shown = self.cell.iloc[self.page * PAGE_SIZE : (self.page + 1) * PAGE_SIZE]
        if self.cell.empty:
            self.heading.value = "No utterance in this cell."
        else:
            first = self.page * PAGE_SIZE
            true, predicted = self.cell.loc[0, "true"], self.cell.loc[0, "predicted"]
            self.heading.value = (
                f"<b>true {true}, predicted {predicted}</b>: {len(self.cell)} predictions, "
                f"{first + 1}-{first + len(shown)} shown (most confident first; up to {self.seconds:.2f} s each)"
            )
        self.rows.children = [self._row(row) for _, row in shown.iterrows()]

    def _row(self, row: pd.Series) -> widgets.Widget:
        extra = f", seed {row['seed']}, fold {row['fold']}, p({row['predicted']}) = {row['probability']:.2f}"
        label = widgets.HTML(utterance_html(row, extra), layout=widgets.Layout(width="560px"))
        try:
            sound: widgets.Widget = player(row, self.seconds)
        except AudioError as error:
            sound = widgets.HTML(f"cannot play: {html.escape(str(error))}")
        box = widgets.HBox([label, sound])
        box.add_class("serlib-cell-row")
        return box


# -- the notebook's entry points ------------------------------------------------------------------------
def _static_note(what: str) -> None:
    print(f"{what}: interactive in JupyterLab; this headless run shows a static table instead.")


def tsne_view(tables: dict[str, pd.DataFrame], config: Any, colour: str = "emotion") -> Any:
    """The t-SNE explorer where a person looks; else the first points' hover fields (a table)."""
    if not listening.interactive():
        _static_note("t-SNE by ear")
        first = next(iter(tables.values()))
        return first.loc[:, list(listening.HOVER_COLUMNS)].head(8).round(3)
    return TsneExplorer(tables, listening.heard_seconds(config), colour)


def confusion_view(config: Any, settings: tuple[str, ...] = ("within", "cross")) -> Any:
    """Figure 2 by ear for the configuration's run folder; headless: the pooled counts of each
    condition's most frequent confusion (a table)."""
    present = []
    for setting in settings:
        try:
            listening.run_predictions(config.output_path, setting)
        except AnalysisError:
            continue
        present.append(setting)
    if not present:
        raise AnalysisError(f"{config.output_path}: no finished ACNN run: run notebook 04 first")
    if not listening.interactive():
        _static_note("Figure 2 by ear")
        return _most_confused(config.output_path, present)
    manifests = {
        s: loaders.load_configured(config, listening.tested_corpus(config.output_path, s)) for s in present
    }
    return ConfusionExplorer(config.output_path, manifests, listening.heard_seconds(config))


def _most_confused(output_dir: Path, settings: list[str]) -> pd.DataFrame:
    """Per setting and condition, the off-diagonal cell with the most predictions (pooled over seeds)."""
    rows = []
    for setting in settings:
        predictions = listening.run_predictions(output_dir, setting)
        for condition, frame in predictions.groupby("condition", sort=False):
            counts = listening.confusion_counts(frame)
            off = counts.mask(np.eye(len(EMOTIONS), dtype=bool), 0)
            true, predicted = off.stack().idxmax()
            row = {"setting": setting, "condition": condition, "true": true, "predicted": predicted}
            rows.append(row | {"predictions": int(off.loc[true, predicted]), "of": len(frame)})
    return pd.DataFrame(rows)


def players(table: pd.DataFrame, config: Any) -> Any:
    """A player per row of ``table`` (a cell's utterances or points) where a person looks; None headless."""
    if not listening.interactive():
        return None
    seconds = listening.heard_seconds(config)
    rows = []
    for _, row in table.iterrows():
        box = widgets.HBox([widgets.HTML(utterance_html(row)), player(row, seconds)])
        box.add_class("serlib-cell-row")
        rows.append(box)
    return widgets.VBox(rows)

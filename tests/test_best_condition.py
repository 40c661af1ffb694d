"""One rule for "the best AE condition" (serlib.evidence.best_condition), used by Figure 2 and by the
exported predict models: never an AE that heard the test corpus, ties to the first configured."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from serlib.app import model_folder
from serlib.evidence import figure2 as figure2_module
from serlib.evidence.best_condition import best_ae_condition

PAPER_ROWS = [("BL", "none"), ("C", "target"), ("sT", "tedlium_small"), ("Li", "librispeech_100h")]


def test_c_ties_with_li_and_li_is_chosen() -> None:
    assert best_ae_condition({"BL": 0.2, "C": 0.25, "Li": 0.25}, PAPER_ROWS, "msp_improv") == "Li"


def test_c_is_never_chosen_even_when_best_and_ties_follow_the_configured_order() -> None:
    assert best_ae_condition({"C": 0.9, "sT": 0.3, "Li": 0.3}, PAPER_ROWS, "msp_improv") == "sT"
    reordered = [PAPER_ROWS[0], PAPER_ROWS[1], PAPER_ROWS[3], PAPER_ROWS[2]]
    assert best_ae_condition({"C": 0.9, "sT": 0.3, "Li": 0.3}, reordered, "msp_improv") == "Li"
    assert best_ae_condition({"C": 0.9, "sT": 0.3, "Li": 0.31}, PAPER_ROWS, "msp_improv") == "Li"
    assert best_ae_condition({"BL": 0.5, "C": 0.9}, PAPER_ROWS, "msp_improv") is None
    assert best_ae_condition({"Li": float("nan"), "sT": 0.1}, PAPER_ROWS, "msp_improv") == "sT"


def test_an_ae_named_after_the_test_corpus_is_excluded() -> None:
    rows = [("BL", "none"), ("M", "msp_improv"), ("Li", "librispeech_100h")]
    assert best_ae_condition({"M": 0.6, "Li": 0.3}, rows, "msp_improv") == "Li"
    assert best_ae_condition({"M": 0.6, "Li": 0.3}, rows, "iemocap") == "M"


def _finished_run(out: Path, uars: dict[str, float]) -> None:
    """A finished cross-corpus protocol's files, as export_models reads them (no training)."""
    conditions = [{"name": n, "autoencoder_corpus": s} for n, s in PAPER_ROWS]
    protocol = {"conditions": conditions, "seeds": [0], "settings": {"cross": {"test_corpus": "msp_improv"}}}
    (out / "results").mkdir(parents=True)
    (out / "results" / "protocol.json").write_text(json.dumps(protocol))
    for name, uar in uars.items():
        run = out / "results" / "cross" / name / "seed0" / "fold0"
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps({"uar": uar}))
        (run / model_folder.MODEL_FILE).write_bytes(b"model")
        ae = run / "ae.keras"
        ae.write_bytes(b"ae")
        metadata = {"autoencoder": None if name == "BL" else {"model": str(ae)}}
        (run / model_folder.METADATA_FILE).write_text(json.dumps(metadata))


def test_predicts_default_model_never_heard_the_test_corpus(tmp_path: Path) -> None:
    _finished_run(tmp_path, {"BL": 0.2, "C": 0.25, "sT": 0.22, "Li": 0.25})
    index = json.loads((model_folder.export_models(tmp_path) / model_folder.INDEX_FILE).read_text())
    assert index["default"] == "Li" and set(index["models"]) == {"BL", "Li"}
    assert "never heard the test corpus" in index["note"]


def test_predicts_default_is_bl_when_only_c_has_an_ae(tmp_path: Path) -> None:
    _finished_run(tmp_path, {"BL": 0.2, "C": 0.25})
    index = json.loads((model_folder.export_models(tmp_path) / model_folder.INDEX_FILE).read_text())
    assert index["default"] == "BL" and set(index["models"]) == {"BL"}


def test_figure2_uses_the_same_rule(caplog: pytest.LogCaptureFixture) -> None:
    protocol = {"conditions": [{"name": n, "autoencoder_corpus": s} for n, s in PAPER_ROWS]}
    table = pd.DataFrame({"condition": ["BL", "C", "sT", "Li"], "cross_mean": [0.2, 0.25, 0.22, 0.25]})
    drawn = ["BL", "C", "sT", "Li"]
    assert figure2_module._best(protocol, table, "cross", drawn, "msp_improv") == "Li"
    with caplog.at_level(logging.WARNING):
        assert figure2_module._best(protocol, table, "cross", ["BL", "C"], "msp_improv") is None
    assert "baseline alone" in caplog.text


def test_figure2_of_a_baseline_only_grid_draws_bl_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """A grid of BL alone (notebook 04's single-view exercise) has no AE panel to explain: no warning, which
    papermill would show as the notebook's stderr."""
    protocol = {"conditions": [{"name": "BL", "autoencoder_corpus": "none"}]}
    table = pd.DataFrame({"condition": ["BL"], "within_mean": [0.4]})
    with caplog.at_level(logging.WARNING):
        assert figure2_module._best(protocol, table, "within", ["BL"], "iemocap") is None
    assert "baseline alone" not in caplog.text

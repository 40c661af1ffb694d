"""Configuration: presets, YAML round trip, and clear errors that name the bad key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from serlib.base import config, config_yaml

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("name", config.PRESETS)
def test_configs_yaml_is_the_shipped_preset(name: str) -> None:
    """configs/<name>.yaml is the hand-written preset the installed package reads (one file, linked)."""
    shown, shipped = CONFIGS / f"{name}.yaml", config.PRESETS_DIR / f"{name}.yaml"
    assert shown.read_bytes() == shipped.read_bytes()
    assert shown.resolve() == shipped.resolve(), (
        f"configs/{name}.yaml should link to serlib/presets/{name}.yaml"
    )
    assert config.load(shown) == config.load_preset(name)


def test_paper_yaml_states_every_key_and_the_schema_defaults_are_its_values() -> None:
    """A student reads every hyperparameter in paper.yaml; a file that omits a key gets the same value."""
    written = config.read_config(config.PRESETS_DIR / "paper.yaml")
    defaults = {
        section: model().model_dump(mode="json")
        for section, model in (
            ("audio", config.AudioConfig),
            ("features", config.FeaturesConfig),
            ("autoencoder", config.AutoencoderConfig),
            ("acnn", config.ACNNConfig),
            ("tsne", config.TSNEConfig),
        )
    }
    for section in ("audio", "features", "autoencoder", "acnn", "tsne"):
        assert set(written[section]) == set(defaults[section]), section
    paper = config.load_preset("paper").model_dump(mode="json")
    assert paper["features"]["spectrogram"].pop("store_decimals") == PAPER_NOT_DEFAULT["store_decimals"]
    for section in ("audio", "features", "autoencoder", "acnn", "tsne"):
        assert paper[section] == defaults[section], f"{section}: schema defaults differ from paper.yaml"


PAPER_NOT_DEFAULT = {"store_decimals": 4}
"""features.spectrogram.store_decimals: the default (None, lossless) is what every configuration written
before the key existed meant, and keeps their hashes; the paper preset rounds its stores to fit the disks
(docs/configuration.md#spectrogram-store-decimals)."""


def test_the_paper_presets_store_rounding_is_the_documented_one() -> None:
    decimals = config.load_preset("paper").features.spectrogram.store_decimals
    assert decimals == PAPER_NOT_DEFAULT["store_decimals"]
    assert config.load_preset("demo").features.spectrogram.store_decimals is None  # the demo stays lossless
    docs = (CONFIGS.parent / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert f"## `features.spectrogram.store_decimals: {decimals}`" in docs
    performance = (CONFIGS.parent / "docs" / "performance.md").read_text(encoding="utf-8")
    assert f"store_decimals: {decimals}" in performance
    assert config.SpectrogramConfig().store_decimals is None


def test_demo_preset_is_an_overlay_on_paper() -> None:
    text = (config.PRESETS_DIR / "demo.yaml").read_text(encoding="utf-8")
    assert "\nbase: paper.yaml\n" in text and "kernel_frames" not in text  # only what differs
    demo = config.load_preset("demo")
    assert (
        demo.acnn.kernel_frames == 10
        and demo.acnn.filters == 64
        and set(demo.corpora)
        == {
            "demo_emotion",
            "demo_cross",
            "demo_talks_small",
            "demo_talks",
            "demo_books",
        }
    )


def test_overlay_merges_sections_and_replaces_lists(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(
        f"base: {config.PRESETS_DIR / 'paper.yaml'}\nacnn: {{epochs: 3}}\nprotocol: {{seeds: [7]}}\n"
    )
    mine = config.load(tmp_path / "mine.yaml")
    assert (mine.acnn.epochs, mine.acnn.filters, mine.protocol.seeds) == (3, 200, [7])
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(config.ConfigError, match="loop.yaml.*back to it"):
        config.load(tmp_path / "loop.yaml")
    (tmp_path / "bad.yaml").write_text("base: absent.yaml\n")
    with pytest.raises(config.ConfigError, match="absent.yaml does not exist"):
        config.load(tmp_path / "bad.yaml")


def test_paper_preset_has_the_papers_numbers() -> None:
    paper = config.load_preset("paper")
    assert paper.features.logmel.bands == 26 and paper.features.logmel.high_hz == 6500
    assert paper.features.logmel.frame_s == 0.025 and paper.features.logmel.shift_s == 0.010
    assert paper.features.logmel.max_frames == 750
    assert paper.features.spectrogram.window_s == 0.08 and paper.features.spectrogram.overlap_s == 0.04
    assert paper.features.spectrogram.mel_bands == 128
    ae = paper.autoencoder
    assert (ae.layers, ae.units, ae.bidirectional_encoder, ae.bidirectional_decoder) == (2, 256, False, True)
    assert (ae.learning_rate, ae.dropout, ae.epochs) == (0.001, 0.2, 64)
    acnn = paper.acnn
    assert (acnn.filters, acnn.kernel_frames, acnn.conv_stride, acnn.pool_size) == (200, 10, 3, 30)
    assert (acnn.epochs, acnn.arousal_weight, acnn.valence_weight) == (100, 0.2, 0.2)
    assert [c.name for c in paper.protocol.conditions] == ["BL", "C", "sT", "Li", "fT"]
    assert paper.condition("fT").autoencoder_epochs == 32
    assert len(paper.protocol.seeds) == 10


def test_round_trip(tmp_path: Path) -> None:
    demo = config.load_preset("demo")
    path = config_yaml.save(demo, tmp_path / "demo.yaml")
    assert config.load(path) == demo


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_unknown_key_is_named(tmp_path: Path) -> None:
    data = config.load_preset("demo").model_dump(mode="json")
    data["acnn"]["filterz"] = 3
    with pytest.raises(config.ConfigError, match=r"acnn\.filterz: unknown key"):
        config.load(_write(tmp_path, data))


def test_wrong_type_is_named(tmp_path: Path) -> None:
    data = config.load_preset("demo").model_dump(mode="json")
    data["autoencoder"]["units"] = "many"
    with pytest.raises(config.ConfigError, match=r"autoencoder\.units"):
        config.load(_write(tmp_path, data))


def test_negative_epochs_rejected(tmp_path: Path) -> None:
    data = config.load_preset("demo").model_dump(mode="json")
    data["acnn"]["epochs"] = -3
    with pytest.raises(config.ConfigError, match=r"acnn\.epochs"):
        config.load(_write(tmp_path, data))


def test_condition_must_name_a_corpus() -> None:
    data = config.load_preset("demo").model_dump(mode="json")
    data["protocol"]["conditions"].append({"name": "X", "autoencoder_corpus": "nowhere"})
    with pytest.raises(config.ConfigError, match="nowhere"):
        config.from_dict(data)


def test_missing_file_and_unknown_preset(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="does not exist"):
        config.load(tmp_path / "absent.yaml")
    with pytest.raises(config.ConfigError, match="unknown preset"):
        config.load_preset("huge")


def test_override_revalidates() -> None:
    demo = config.load_preset("demo")
    assert config.override(demo, **{"acnn.epochs": 2}).acnn.epochs == 2
    with pytest.raises(config.ConfigError):
        config.override(demo, **{"acnn.epochs": 0})


def test_serlib_data_must_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SERLIB_DATA", raising=False)
    with pytest.raises(config.ConfigError, match="SERLIB_DATA"):
        config.expand("${SERLIB_DATA}/emodb")


def test_unset_corpus_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IEMOCAP_ROOT", raising=False)
    with pytest.raises(config.ConfigError, match="IEMOCAP_ROOT"):
        config.load_preset("paper").corpus_root("iemocap")
    monkeypatch.setenv("IEMOCAP_ROOT", "/data/IEMOCAP_full_release")
    assert str(config.load_preset("paper").corpus_root("iemocap")) == "/data/IEMOCAP_full_release"


def test_paper_yaml_comments_are_short_and_link_their_evidence() -> None:
    """One-line reasons; the evidence (p-values, measurements) lives in docs/configuration.md."""
    root = CONFIGS.parent
    text = (CONFIGS / "paper.yaml").read_text(encoding="utf-8")
    comments = config_yaml.comments(CONFIGS / "paper.yaml")
    assert comments["acnn.dropout"].startswith("Keras rate")
    assert all(len(line) <= 120 for line in text.splitlines())
    anchors = {
        line.split('"')[1]
        for line in (root / "docs" / "configuration.md").read_text().splitlines()
        if line.startswith('<a id="')
    }
    linked = set(re.findall(r"docs/configuration\.md#([a-z-]+)", text))
    assert linked and linked <= anchors, f"paper.yaml links to missing anchors {linked - anchors}"


def test_shown_yaml_names_the_papers_value_where_it_departs() -> None:
    """``serlib config show`` marks each value that departs from the paper preset with the paper's."""
    lines = _lines_by_key(config_yaml.dumps(config.load_preset("demo")))
    assert lines["features.logmel.max_frames"].startswith("    max_frames: 400  # paper: 750")
    rate = lines["acnn.learning_rate"]
    assert rate.count("#") == 1 and "paper: 0.001" in rate
    paper = config.load_preset("paper").model_dump(mode="json")
    demo = config.load_preset("demo").model_dump(mode="json")
    for section in ("features", "autoencoder", "acnn", "tsne"):
        for key, value in demo[section].items():
            if isinstance(value, dict):
                continue
            if value != paper[section][key]:
                line = lines[f"{section}.{key}"]
                assert "paper: " in line, f"{section}.{key} departs from the paper without saying so"
    custom = config.override(config.load_preset("paper"), **{"acnn.epochs": 30})
    line = next(
        line for line in config_yaml.dumps(custom).splitlines() if line.strip().startswith("epochs: 30")
    )
    assert "# paper: 100 (all trained" in line


def _lines_by_key(text: str) -> dict[str, str]:
    """Each YAML line of a generated configuration under its dotted key (sections by indentation)."""
    lines, path = {}, []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith(("#", "-")):
            continue
        depth = (len(line) - len(line.lstrip())) // 2
        key = line.strip().split(":")[0]
        path = [*path[:depth], key]
        lines[".".join(path)] = line
    return lines


def test_base_names_a_preset_or_a_file_beside_the_overlay(tmp_path: Path) -> None:
    for base in ("paper", "paper.yaml"):
        (tmp_path / "mine.yaml").write_text(f"base: {base}\nacnn: {{epochs: 3}}\n")
        mine = config.load(tmp_path / "mine.yaml")
        assert (mine.acnn.epochs, mine.acnn.filters, mine.name) == (3, 200, "paper")
    (tmp_path / "mine.yaml").write_text("base: demo\n")
    assert config.load(tmp_path / "mine.yaml").name == "demo"  # demo is itself an overlay on paper
    (tmp_path / "paper.yaml").write_text("base: paper\nacnn: {filters: 7}\n")  # a local copy wins
    (tmp_path / "mine.yaml").write_text("base: paper.yaml\n")
    assert config.load(tmp_path / "mine.yaml").acnn.filters == 7
    (tmp_path / "mine.yaml").write_text("base: papr\n")
    with pytest.raises(config.ConfigError, match="neither a preset"):
        config.load(tmp_path / "mine.yaml")


def test_readme_researcher_overlay_loads(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- researcher-overlay -->", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "my-lab.yaml").write_text(block)
    mine = config.load(tmp_path / "my-lab.yaml")
    assert mine.corpora["iemocap"].root == "/data/IEMOCAP_full_release"
    assert mine.corpora["tedlium_small"].options == {"talks": 400}
    assert set(mine.corpora) == set(config.load_preset("paper").corpora)
    assert (mine.protocol.seeds, mine.protocol.n_jobs, mine.features.n_jobs) == ([0, 1, 2, 3, 4], 2, 8)
    assert mine.acnn == config.load_preset("paper").acnn  # the rest is the paper's

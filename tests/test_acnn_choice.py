"""``acnn.implementation: auto``: each calibration outcome is built, cached, kept per folder and recorded.

No real timings: ``acnn_choice.cpu_seconds`` (the calibration's clock) is replaced by a fake that still
runs the training batches but reports the time the test chooses for each path.
"""

from __future__ import annotations

import json
import types
from pathlib import Path

import keras
import pytest
from test_experiments import _features, _manifest

from serlib.base import config as config_module
from serlib.base import provenance
from serlib.evidence import migration, summaries
from serlib.models.acnn import choice as acnn_choice
from serlib.models.acnn import kernels as acnn_kernels
from serlib.models.acnn import model as acnn
from serlib.models.acnn import run as acnn_run
from serlib.models.acnn.kernels import FastMaxPooling1D, PaddingAwareConv1D
from serlib.protocol import conditions, implementation, labeled, run_files

FRAMES, BANDS = 60, 26
SMALL = {"filters": 8, "pool_size": 5, "pool_stride": 3, "batch_size": 8, "epochs": 2}
OTHER = {"fast": "reference", "reference": "fast"}


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """No forced path, an empty machine cache in tmp, no answer remembered by this process."""
    monkeypatch.delenv(acnn_choice.VARIABLE, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    monkeypatch.setattr(acnn_choice, "_memo", {})
    return types.SimpleNamespace(cache=tmp_path / "user-cache" / "serlib" / "acnn-implementation.json")


def fake_clock(monkeypatch, winner: str) -> list[str]:
    """The calibration's clock says ``winner`` takes half the CPU time of the other path; returns the
    paths it timed, in order."""
    timed: list[str] = []

    def cpu_seconds(path, work):
        work()
        timed.append(path)
        return 1.0 if path == winner else 2.0

    monkeypatch.setattr(acnn_choice, "cpu_seconds", cpu_seconds)
    return timed


def no_calibration(monkeypatch) -> None:
    def refuse(path, work):
        raise AssertionError("calibrated although the answer was known")

    monkeypatch.setattr(acnn_choice, "cpu_seconds", refuse)


def _layers(model: keras.Model) -> tuple[type, type]:
    return type(model.get_layer("conv")), type(model.get_layer("pool"))


def _acnn(**changes) -> config_module.ACNNConfig:
    return config_module.ACNNConfig(**{**SMALL, **changes})


@pytest.mark.parametrize("winner", ["fast", "reference"])
def test_auto_resolves_to_the_path_the_calibration_finds_faster_and_the_machine_keeps_it(
    machine, monkeypatch, winner
):
    timed = fake_clock(monkeypatch, winner)
    choice = acnn_choice.resolve(_acnn(implementation="auto"), FRAMES, BANDS)
    assert (choice.implementation, choice.source) == (winner, "calibration")
    model = acnn.build_acnn(_acnn(), FRAMES, BANDS, **acnn_kernels.layers_for(_acnn(implementation=winner)))
    expected = (
        (PaddingAwareConv1D, FastMaxPooling1D)
        if winner == "fast"
        else (
            keras.layers.Conv1D,
            keras.layers.MaxPooling1D,
        )
    )
    assert _layers(model) == expected
    if winner == "reference":  # the fast layers are subclasses of the Keras ones
        assert not isinstance(model.get_layer("conv"), PaddingAwareConv1D)
    # interleaved: both paths timed in every round, the order alternating
    rounds = [timed[i : i + 2] for i in range(0, len(timed), 2)]
    assert len(rounds) == acnn_choice.ROUNDS and all(sorted(r) == ["fast", "reference"] for r in rounds)
    assert rounds[0] != rounds[1]
    # the machine keeps its choice: a new process reads the cache and does not measure again
    entries = json.loads(machine.cache.read_text())["entries"]
    (entry,) = entries.values()
    assert entry["implementation"] == winner and entry["key"]["shape"]["frames"] == FRAMES
    monkeypatch.setattr(acnn_choice, "_memo", {})
    no_calibration(monkeypatch)
    choice = acnn_choice.resolve(_acnn(implementation="auto"), FRAMES, BANDS)
    assert (choice.implementation, choice.source) == (winner, "cache")
    # another model shape is another key: measured again
    fake_clock(monkeypatch, OTHER[winner])
    other = acnn_choice.resolve(_acnn(implementation="auto"), FRAMES + 9, BANDS)
    assert (other.implementation, other.source) == (OTHER[winner], "calibration")
    assert len(json.loads(machine.cache.read_text())["entries"]) == 2


# the pinned demo BL fingerprint (commit 36fdf3c) and what `serlib migrate` rewrites it to (issue 43)
MIGRATED = {"fb31cf5f9226ce66": "29f67329d4780497"}


def test_the_calibration_trains_through_the_runs_own_function(machine, monkeypatch):
    """The calibration times the protocol's ACNN run (``run.train``) of each path, one epoch of
    ``BATCHES_PER_ROUND`` batches, after one untimed run each; its clock sees only the training."""
    trained = []
    original = acnn_run.train

    def train(acnn_config, inputs, targets, **options):
        result = original(acnn_config, inputs, targets, **options)
        trained.append((acnn_config.implementation, result.model, options["epochs"], len(inputs["logmel"])))
        return result

    monkeypatch.setattr(acnn_run, "train", train)
    timed = fake_clock(monkeypatch, "fast")
    acnn_choice.calibrate(_acnn(implementation="auto"), FRAMES, BANDS)
    assert [path for path, *_ in trained] == ["fast", "reference", *timed]
    assert len(trained) == 2 + 2 * acnn_choice.ROUNDS
    assert {(epochs, count) for *_, epochs, count in trained} == {(1, acnn_choice.BATCHES_PER_ROUND * 8)}
    for path, model, *_ in trained:
        assert isinstance(model.get_layer("conv"), PaddingAwareConv1D) == (path == "fast")


def test_build_acnn_on_a_fresh_machine_times_nothing_and_writes_nothing(tmp_path, monkeypatch):
    """A student building the paper's network: plain Keras layers, no calibration, no cache file, even for
    ``implementation: auto`` with nothing forced and an empty home (only a protocol resolves auto)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv(acnn_choice.VARIABLE, raising=False)
    monkeypatch.setattr(acnn_choice, "_memo", {})
    assert acnn_choice.cache_file().is_relative_to(home)

    def refuse(*args, **kwargs):
        raise AssertionError("build_acnn timed or calibrated")

    for name in ("resolve", "calibrate", "cpu_seconds"):
        monkeypatch.setattr(acnn_choice, name, refuse)
    monkeypatch.setattr(acnn_run, "train", refuse)
    paper = config_module.load_preset("paper")
    assert paper.acnn.implementation == "auto"
    for model in (
        acnn.build_acnn(_acnn(implementation="auto"), FRAMES, BANDS),
        acnn.build_acnn(paper.acnn, paper.features.logmel.max_frames, paper.features.logmel.bands),
        acnn.build_configured(paper),
    ):
        assert _layers(model) == (keras.layers.Conv1D, keras.layers.MaxPooling1D)
    assert list(home.rglob("*")) == []
    # a run does need a resolved path: auto is refused there with the place where it is resolved
    with pytest.raises(acnn_kernels.ImplementationNotResolved, match="resolve_implementation"):
        acnn_kernels.layers_for(_acnn(implementation="auto"))


def test_the_environment_and_explicit_values_skip_the_calibration(machine, monkeypatch):
    no_calibration(monkeypatch)
    for value in ("fast", "reference"):
        assert acnn_choice.resolve(_acnn(implementation=value), FRAMES, BANDS).source == "config"
        monkeypatch.setenv(acnn_choice.VARIABLE, value)
        choice = acnn_choice.resolve(_acnn(implementation="auto"), FRAMES, BANDS)
        assert (choice.implementation, choice.source) == (value, "environment")
    monkeypatch.setenv(acnn_choice.VARIABLE, "fastest")
    with pytest.raises(acnn_choice.ImplementationError, match="SERLIB_ACNN_IMPLEMENTATION"):
        acnn_choice.resolve(_acnn(implementation="auto"), FRAMES, BANDS)
    monkeypatch.delenv(acnn_choice.VARIABLE)
    choice = acnn_choice.resolve(_acnn(implementation="auto", jit_compile=True), FRAMES, BANDS)
    assert (choice.implementation, choice.source) == ("reference", "jit_compile")
    assert not machine.cache.exists()


# -- the protocol: one path per output folder, recorded in every run -------------------------------------
@pytest.fixture
def corpus(tmp_path, monkeypatch):
    synth = _manifest(tmp_path / "synth.csv", "S", 2, seed=1)
    other = _manifest(tmp_path / "other.csv", "O", 1, seed=2)
    feature_sets = {"synth": _features(synth, seed=3), "other": _features(other, seed=3)}
    for key, feature_set in feature_sets.items():
        feature_set.path = tmp_path / f"{key}.h5"
        feature_set.path.write_bytes(b"")
    monkeypatch.setattr(
        labeled, "extract_features", lambda config, key, extractor="logmel": feature_sets[key]
    )

    def sources(config, setting, condition):
        train_key, test_key = conditions.corpora_of(config, setting)
        return {"train_corpus": train_key, "test_corpus": test_key, "autoencoder_corpus": None}

    monkeypatch.setattr(conditions, "prepare_sources", sources)
    return types.SimpleNamespace(tmp=tmp_path, lengths=feature_sets["synth"].lengths)


def _config(tmp: Path, implementation_value: str, seeds: list[int]) -> config_module.Config:
    return config_module.from_dict(
        {
            "name": "auto",
            "output_dir": str(tmp / "out"),
            "figures_dir": str(tmp / "figures"),
            "corpora": {
                "synth": {
                    "type": "manifest",
                    "root": str(tmp / "synth.csv"),
                    "options": {"check_files": False},
                },
                "other": {
                    "type": "manifest",
                    "root": str(tmp / "other.csv"),
                    "options": {"check_files": False},
                },
            },
            "features": {"logmel": {"max_frames": FRAMES}},
            "acnn": {**SMALL, "implementation": implementation_value},
            "protocol": {
                "within_corpus": None,
                "cross_corpus_train": "synth",
                "cross_corpus_test": "other",
                "seeds": seeds,
                "conditions": [{"name": "BL", "autoencoder_corpus": "none"}],
            },
        }
    )


@pytest.mark.parametrize("winner", ["fast", "reference"])
def test_a_grid_uses_records_and_keeps_the_calibrated_path(machine, corpus, monkeypatch, winner):
    fake_clock(monkeypatch, winner)
    config = _config(corpus.tmp, "auto", seeds=[0])
    out = Path(config.output_dir)
    provenance.record(out, config)
    summaries.evaluate(config, progress=False)
    folder = run_files.run_folder(out, "cross", "BL", 0, 0)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["acnn_implementation"] == {
        "implementation": winner,
        "source": "calibration",
        "cpu_seconds_per_utterance": pytest.approx(
            {
                winner: 1.0 / (acnn_choice.BATCHES_PER_ROUND * 8),
                OTHER[winner]: 2.0 / (acnn_choice.BATCHES_PER_ROUND * 8),
            }
        ),
        "key": metrics["acnn_implementation"]["key"],
    }
    assert (
        json.loads((out / "provenance.json").read_text())["acnn_implementation"]["implementation"] == winner
    )
    assert json.loads(implementation.record_path(out).read_text())["implementation"] == winner
    # calibrated on the training corpus' lengths: the cache keeps one answer per length profile
    (entry,) = json.loads(machine.cache.read_text())["entries"].values()
    assert entry["key"]["fill"] == acnn_choice.fill_profile(corpus.lengths, FRAMES) != "0.4-1.0"
    # the run trained the chosen layers (its saved model) and carries the explicit path's fingerprint
    saved = acnn.load_acnn(folder / "model.keras")
    assert isinstance(saved.get_layer("conv"), PaddingAwareConv1D) == (winner == "fast")
    explicit = _config(corpus.tmp, winner, seeds=[0])
    assert metrics["fingerprint"] == conditions.fingerprint(explicit, "cross", explicit.condition("BL"))
    assert json.loads((folder / "model.json").read_text())["acnn"]["implementation"] == winner

    # resumed with another seed after the machine's cache was lost and the clock now favours the other
    # path: the folder keeps the path of its first runs, and the finished run is not repeated
    machine.cache.unlink()
    monkeypatch.setattr(acnn_choice, "_memo", {})
    no_calibration(monkeypatch)
    resumed = _config(corpus.tmp, "auto", seeds=[0, 1])
    summaries.evaluate(resumed, progress=False)
    second = json.loads((run_files.run_folder(out, "cross", "BL", 1, 0) / "metrics.json").read_text())
    assert second["acnn_implementation"]["implementation"] == winner
    assert second["acnn_implementation"]["source"] == "output folder"
    assert json.loads((folder / "metrics.json").read_text()) == metrics

    # a folder of runs made before auto existed (no record): their fingerprints name the path
    implementation.record_path(out).unlink()
    resolved, choice = conditions.resolve_implementation(resumed)
    assert (resolved.acnn.implementation, choice.source) == (winner, "finished runs in the output folder")


def test_explicit_implementations_keep_the_fingerprints_of_stored_runs(corpus, monkeypatch):
    """A configuration naming fast or reference hashes as before auto existed: the stored ACNN parameters
    are the same dictionary, so its runs are not repeated."""
    monkeypatch.setenv(acnn_choice.VARIABLE, "reference")  # must not matter for explicit values
    for value in ("fast", "reference"):
        config = _config(corpus.tmp, value, seeds=[0])
        assert config.acnn.model_dump(mode="json")["implementation"] == value
        resolved, choice = conditions.resolve_implementation(config)
        assert resolved is config and choice.source == "config"
    fast = _config(corpus.tmp, "fast", seeds=[0])
    reference = _config(corpus.tmp, "reference", seeds=[0])
    assert conditions.fingerprint(fast, "cross", fast.condition("BL")) != conditions.fingerprint(
        reference, "cross", reference.condition("BL")
    )


def test_a_pinned_fingerprint_is_unchanged_for_fast_and_auto_resolved_to_fast(monkeypatch):
    # the demo preset pins fast since issue 42; auto is set back to test its resolution
    demo = config_module.override(
        config_module.load_preset("demo"), **{"acnn.shuffle": "once", "acnn.implementation": "auto"}
    )
    identity = {"demo/logmel": "store.h5"}

    def of(config: config_module.Config) -> str:
        """The fingerprint as stored before issue 43's key migration (the pin below) and today's must
        be one migration apart: ``serlib migrate`` maps the first to the second."""
        old = migration.old_fingerprint(config, "within", config.condition("BL"), identity)
        new = conditions.fingerprint(config, "within", config.condition("BL"), identity)
        return old if new == MIGRATED.get(old, new) else f"{old} (not migrated to {new})"

    # the demo preset's BL fingerprint at commit 36fdf3c, when fast was the only default
    def now(config: config_module.Config) -> str:
        return conditions.fingerprint(config, "within", config.condition("BL"), identity)

    fast = config_module.override(demo, **{"acnn.implementation": "fast"})
    monkeypatch.setenv(acnn_choice.VARIABLE, "fast")
    assert demo.acnn.implementation == "auto" and now(demo) == now(fast)  # auto resolved to fast
    assert of(fast) == "fb31cf5f9226ce66"  # the pin, one migration from today's
    monkeypatch.setenv(acnn_choice.VARIABLE, "reference")
    assert now(demo) == now(config_module.override(demo, **{"acnn.implementation": "reference"}))
    assert now(demo) != now(fast)


def test_the_calibration_batch_is_padded_after_the_given_lengths():
    config = _acnn(batch_size=64)
    inputs, _ = acnn_choice.calibration_batch(config, FRAMES, BANDS, lengths=[12, 30])
    real = (inputs["logmel"] != 0).any(axis=-1).sum(axis=1)
    assert set(real) == {12, 30}
    inputs, _ = acnn_choice.calibration_batch(config, FRAMES, BANDS)
    real = (inputs["logmel"] != 0).any(axis=-1).sum(axis=1)
    assert real.min() >= round(acnn_choice.SHORTEST * FRAMES) and real.max() <= FRAMES
    assert acnn_choice.fill_profile([30, 30, 60, 60], FRAMES) == "0.8"
    assert acnn_choice.fill_profile([600], FRAMES) == "1.0"  # cut at max_frames like the features

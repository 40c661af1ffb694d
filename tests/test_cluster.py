"""serlib.cluster: Dask runs give exactly the serial results; AE training under MirroredStrategy.

One 2-worker ``LocalCluster`` (processes, one Dask thread each) serves the module. The tiny corpus is
real audio (tones whose pitch and loudness depend on the emotion) so workers run the same code path as
the serial run: manifest CSV -> openSMILE log-Mel store -> ACNN -> result files. Bit-identity holds by
construction: every task runs TensorFlow with the submitting process's thread count and op
determinism (serlib.runtime; the contract is docs/reliability.md, section 3).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from serlib.base import cluster, runtime
from serlib.base import config as config_module
from serlib.data import loaders
from serlib.data.manifest import EMOTIONS
from serlib.evidence import summaries
from serlib.features import extraction, store
from serlib.models import autoencoder
from serlib.protocol import conditions

RATE = 16000
PITCH = {"angry": 320.0, "happy": 260.0, "neutral": 180.0, "sad": 130.0}
LOUDNESS = {"angry": 0.5, "happy": 0.35, "neutral": 0.2, "sad": 0.12}


def _corpus(folder: Path, prefix: str, sessions: int, seed: int) -> Path:
    """A manifest CSV of short tone-plus-noise WAVs, 2 speakers x 8 utterances per session."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for session in range(1, sessions + 1):
        for gender in ("F", "M"):
            for i in range(8):
                emotion = EMOTIONS[i % 4]
                seconds = float(rng.uniform(0.35, 0.5))
                t = np.arange(int(seconds * RATE)) / RATE
                pitch = PITCH[emotion] * (1.4 if gender == "F" else 1.0) * rng.uniform(0.95, 1.05)
                signal = LOUDNESS[emotion] * np.sin(2 * np.pi * pitch * t) + 0.01 * rng.standard_normal(
                    t.size
                )
                name = f"{prefix}{session}{gender}_{i:02d}"
                sf.write(folder / f"{name}.wav", signal.astype(np.float32), RATE, subtype="PCM_16")
                rows.append(
                    {
                        "utterance_id": name,
                        "path": f"{name}.wav",
                        "speaker": f"{prefix}{session}{gender}",
                        "session": str(session),
                        "gender": "female" if gender == "F" else "male",
                        "emotion": emotion,
                    }
                )
    path = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _config(tmp: Path, output: str, n_jobs: int) -> config_module.Config:
    return config_module.from_dict(
        {
            "name": "cluster-test",
            "output_dir": str(tmp / output),
            "cache_dir": str(tmp / "cache"),
            "figures_dir": str(tmp / output / "figures"),
            "corpora": {
                "synth": {"type": "manifest", "root": str(tmp / "synth" / "manifest.csv")},
                "other": {"type": "manifest", "root": str(tmp / "other" / "manifest.csv")},
            },
            "features": {"logmel": {"max_frames": 50}, "n_jobs": 1},
            "acnn": {
                "filters": 6,
                "kernel_frames": 5,
                "conv_stride": 2,
                "pool_size": 4,
                "pool_stride": 2,
                "epochs": 3,
                "batch_size": 16,
                "learning_rate": 0.02,
            },
            "protocol": {
                "within_corpus": "synth",
                "cross_corpus_train": "synth",
                "cross_corpus_test": "other",
                "seeds": [0],
                "conditions": [{"name": "BL", "autoencoder_corpus": "none"}],
                "n_jobs": n_jobs,
            },
        }
    )


@pytest.fixture(scope="module")
def client():
    """One 2-worker LocalCluster (processes=True, threads_per_worker=1) for the module."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        ) as local,
        Client(local) as connected,
    ):
        yield connected


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cluster")
    _corpus(tmp / "synth", "S", sessions=2, seed=1)
    _corpus(tmp / "other", "O", sessions=1, seed=2)
    return tmp


def _predictions(output: Path) -> dict[str, str]:
    files = sorted((output / "results").rglob("predictions.csv"))
    return {str(f.relative_to(output)): f.read_text(encoding="utf-8") for f in files}


def _run_metrics(output: Path) -> dict[str, tuple]:
    metrics = {}
    for path in sorted((output / "results").rglob("metrics.json")):
        stored = json.loads(path.read_text(encoding="utf-8"))
        metrics[str(path.relative_to(output))] = (
            stored["uar"],
            stored["final_loss"],
            stored["loss_history"],
            stored["tensorflow"],
        )
    return metrics


def test_dask_grid_gives_exactly_the_serial_results(corpus, client, monkeypatch):
    serial = summaries.evaluate(_config(corpus, "serial", n_jobs=1), progress=False)
    calls = []
    run_tasks = cluster.run_tasks

    def counted(client, function, arguments, *rest, **options):
        calls.append((len(arguments), options.get("groups")))
        return run_tasks(client, function, arguments, *rest, **options)

    monkeypatch.setattr(cluster, "run_tasks", counted)
    parallel = summaries.evaluate(_config(corpus, "dask", n_jobs=2), progress=False, client=client)
    # 2 within folds + 1 cross run, all on Dask, grouped by ACNN architecture (setting, AE vector or not)
    assert calls == [(3, [("within", False), ("within", False), ("cross", False)])]
    serial_predictions = _predictions(corpus / "serial")
    assert len(serial_predictions) == 3
    assert _predictions(corpus / "dask") == serial_predictions
    assert _run_metrics(corpus / "dask") == _run_metrics(corpus / "serial")
    settings = {record[3]["intra_op_threads"] for record in _run_metrics(corpus / "dask").values()}
    assert settings == {runtime.requested_threads()}  # the workers ran with the submitter's threads
    pd.testing.assert_frame_equal(parallel, serial)


def test_dask_extraction_matches_the_serial_store(corpus, client, monkeypatch):
    config = config_module.override(
        _config(corpus, "extract", n_jobs=1), cache_dir=str(corpus / "extract-cache")
    )
    tasks = []
    map_in_order = cluster.map_in_order

    def counted(client, function, arguments):
        tasks.append(len(arguments))
        return map_in_order(client, function, arguments)

    monkeypatch.setattr(cluster, "map_in_order", counted)
    manifest = loaders.load_configured(config, "synth")
    with_dask = store.extract_manifest(
        manifest, "logmel", config, progress=False, corpus_key="synth", client=client
    )
    assert tasks == [-(-len(manifest) // extraction.TASK_SIZE)]  # every chunk of files went to Dask
    serial_config = config_module.override(config, cache_dir=str(corpus / "serial-cache"))
    serial = store.extract_manifest(manifest, "logmel", serial_config, progress=False, corpus_key="synth")
    assert with_dask.ids == serial.ids == manifest["utterance_id"].tolist()
    np.testing.assert_array_equal(with_dask.features, serial.features)
    np.testing.assert_array_equal(with_dask.lengths, serial.lengths)


def test_unreachable_scheduler_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 2)
    with pytest.raises(cluster.ClusterError, match="protocol.scheduler_address"):
        with cluster.dask_client("tcp://127.0.0.1:1"):
            pass


def test_multi_worker_without_tf_config_names_the_variable(monkeypatch):
    config = "multi_worker"  # autoencoder.distribution
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(cluster.ClusterError, match="TF_CONFIG"):
        cluster.distribution_strategy(config)
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(cluster.ClusterError, match="not valid JSON"):
        cluster.distribution_strategy(config)
    monkeypatch.setenv("TF_CONFIG", '{"task": {"type": "worker", "index": 0}}')
    with pytest.raises(cluster.ClusterError, match="'cluster' and 'task'"):
        cluster.distribution_strategy(config)


def test_grid_dispatch_rule(monkeypatch):
    assert not cluster.uses_dask(None, 1)
    assert cluster.uses_dask(None, 2)
    assert cluster.uses_dask("tcp://somewhere:8786", 1)
    monkeypatch.setenv(runtime.THREADS_VARIABLE, "1")
    assert cluster.worker_count(0) == runtime.available_cores()  # 0 = as many 1-thread workers as cores
    monkeypatch.setenv(runtime.THREADS_VARIABLE, str(runtime.available_cores()))
    assert cluster.worker_count(0) == 1


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    from serlib.base import cluster
    from serlib.base import config as config_module
    from serlib.models import autoencoder

    config = config_module.override(
        config_module.load_preset("demo"),
        **{
            "autoencoder.distribution": "mirrored",
            "autoencoder.units": 8,
            "autoencoder.layers": 1,
            "autoencoder.batch_size": 8,
            "autoencoder.learning_rate": 0.01,
            "autoencoder.dropout": 0.0,
            "features.spectrogram.mel_bands": 6,
        },
    )
    strategy = cluster.distribution_strategy(config.autoencoder.distribution)
    rng = np.random.default_rng(0)
    base = np.sin(np.linspace(0, 6, 12))[None, :, None] * rng.uniform(0.2, 0.8, size=(1, 1, 6))
    data = np.tanh(base + 0.05 * rng.standard_normal((32, 12, 6))).astype(np.float32)
    path = autoencoder.train(config.autoencoder, data, sys.argv[1], epochs=3, seed=3, progress=False, strategy=strategy)
    state = json.loads((path.parent / "training_state.json").read_text())
    model = autoencoder.load_model(path)
    vectors = autoencoder.encode(model, data, batch_size=16)
    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "kind": type(strategy).__name__,
        "loss": state["loss"],
        "shape": list(vectors.shape),
        "dim": autoencoder.representation_dim(config.autoencoder),
    }))
    """
)


def test_autoencoder_trains_under_mirrored_strategy_on_two_logical_cpus(tmp_path):
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, str(tmp_path / "model")],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["kind"] == "MirroredStrategy" and result["replicas"] == 2
    losses = result["loss"]
    assert len(losses) == 3 and all(np.isfinite(losses))
    assert losses[-1] < losses[0]
    assert result["shape"] == [32, result["dim"]] == [32, 16]


def test_autoencoders_trained_on_dask_workers_equal_the_serial_ones(corpus, client, monkeypatch):
    """Notebook 02's independent AEs on Dask workers (the demo's one per core): the same weights and
    losses as trained one after another here."""
    tiny_ae = {
        "autoencoder.layers": 1,
        "autoencoder.units": 4,
        "autoencoder.epochs": 2,
        "autoencoder.batch_size": 8,
        "features.spectrogram.fixed_length_s": 0.5,
        "features.spectrogram.mel_bands": 16,
    }
    results = {}
    run_tasks = cluster.run_tasks
    for name, options in (("serial", {"n_jobs": 1}), ("dask", {"client": client})):
        config = config_module.override(
            _config(corpus, name, n_jobs=1), cache_dir=str(corpus / f"ae-{name}"), **tiny_ae
        )
        calls: list[int] = []
        monkeypatch.setattr(
            cluster, "run_tasks", lambda *a, calls=calls, **k: calls.append(len(a[2])) or run_tasks(*a, **k)
        )
        jobs = [("synth", 2), ("other", 1)]
        paths = conditions.train_autoencoders(config, jobs, progress=False, **options)
        assert calls == ([] if name == "serial" else [2])
        assert [p.parent.name.split("-")[0] for p in paths] == ["synth", "other"]
        states = [json.loads((p.parent / "training_state.json").read_text()) for p in paths]
        assert [len(state["loss"]) for state in states] == [2, 1]
        weights = [autoencoder.load_model(p, compile=False).get_weights() for p in paths]
        results[name] = ([state["loss"] for state in states], weights)
    assert results["dask"][0] == results["serial"][0]
    for model_a, model_b in zip(results["dask"][1], results["serial"][1], strict=True):
        assert len(model_a) == len(model_b) > 0
        for a, b in zip(model_a, model_b, strict=True):
            np.testing.assert_array_equal(a, b)


def test_grid_on_workers_that_trained_autoencoders_gives_the_serial_results(corpus, client):
    """``serlib reproduce`` keeps one set of workers for notebooks 02 and 04 (``cluster.shared_workers``):
    ACNN runs on workers that trained AEs before (and ran other runs) still give the serial results."""
    tiny_ae = {"autoencoder.layers": 1, "autoencoder.units": 4, "autoencoder.epochs": 1}
    tiny_ae |= {"autoencoder.batch_size": 8, "features.spectrogram.fixed_length_s": 0.5}
    tiny_ae |= {"features.spectrogram.mel_bands": 16}
    ae_config = config_module.override(
        _config(corpus, "ae-first", n_jobs=1), cache_dir=str(corpus / "ae-first"), **tiny_ae
    )
    conditions.train_autoencoders(ae_config, [("synth", 1), ("other", 1)], progress=False, client=client)
    if not (corpus / "serial" / "results").is_dir():  # this test alone
        summaries.evaluate(_config(corpus, "serial", n_jobs=1), progress=False)
    summaries.evaluate(_config(corpus, "after-ae", n_jobs=2), progress=False, client=client)
    assert len(_predictions(corpus / "serial")) == 3
    assert _predictions(corpus / "after-ae") == _predictions(corpus / "serial")
    assert _run_metrics(corpus / "after-ae") == _run_metrics(corpus / "serial")


def test_shared_workers_serve_child_clients_until_closed(monkeypatch):
    """``shared_workers`` names its scheduler in SHARED_VARIABLE; ``dask_client`` without an address
    connects there when the workers are as many as asked (and leaves them running), starts its own
    cluster otherwise; the warm-up has imported the training code on every worker before their first
    task; the CPU count covers the workers; the variable is gone afterwards."""
    from serlib.app import reproduce

    def imported(name: str) -> bool:  # pickled by value: the workers need not import this module
        import sys

        return name in sys.modules

    monkeypatch.delenv(cluster.SHARED_VARIABLE, raising=False)
    own_clusters = []
    monkeypatch.setattr(cluster, "_local_client", _recording(cluster._local_client, own_clusters))
    with cluster.shared_workers(2, warm=reproduce.warm_worker) as shared:
        assert own_clusters == [2]
        address = os.environ[cluster.SHARED_VARIABLE]
        assert address == shared.scheduler.address
        for _ in range(2):  # a notebook's client, closed, then the next notebook's
            with cluster.dask_client(None, 2) as child:
                assert child.scheduler.address == address
                workers = list(child.scheduler_info()["workers"])
                # one task per worker, queued behind its warm-up (one thread each)
                futures = [
                    child.submit(imported, "serlib.protocol.runs", workers=[w], pure=False) for w in workers
                ]
                assert [f.result() for f in futures] == [True, True]
        assert own_clusters == [2]  # no second cluster
        assert cluster.pool_cpu_seconds(shared) > 0
        monkeypatch.setattr(cluster, "_local_client", lambda workers: _refused(own_clusters, workers))
        with pytest.raises(RuntimeError, match="own cluster of 3"):
            with cluster.dask_client(None, 3):  # 3 workers wanted: not these
                pass
    assert cluster.SHARED_VARIABLE not in os.environ


def _recording(function, calls):
    def recorded(workers):
        calls.append(workers)
        return function(workers)

    return recorded


def _refused(calls, workers):
    calls.append(workers)
    raise RuntimeError(f"own cluster of {workers}")


def test_shared_workers_need_more_than_one_worker(monkeypatch):
    monkeypatch.delenv(cluster.SHARED_VARIABLE, raising=False)
    with cluster.shared_workers(1) as shared:
        assert shared is None
        assert cluster.SHARED_VARIABLE not in os.environ


def test_reproduce_shares_workers_only_where_a_notebook_may_train(tmp_path, monkeypatch):
    """``serlib reproduce`` starts shared workers unless a scheduler is configured, one worker is asked
    for or only notebook 01 runs; it warms them only for an output folder without Table 1."""
    from serlib.app import reproduce
    from serlib.app.notebooks import NOTEBOOKS

    calls = []
    monkeypatch.setattr(cluster, "shared_workers", lambda n_jobs, warm=None: calls.append((n_jobs, warm)))
    config = _config(tmp_path, "out", n_jobs=2)
    reproduce._shared_workers(config, list(NOTEBOOKS))
    assert calls == [(2, reproduce.warm_worker)]
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "table1.md").write_text("| a |\n", encoding="utf-8")
    reproduce._shared_workers(config, list(NOTEBOOKS[3:]))
    assert calls[-1] == (2, None)
    remote = config_module.override(config, **{"protocol.scheduler_address": "tcp://127.0.0.1:1"})
    for unshared, selected in ((remote, list(NOTEBOOKS)), (config, [NOTEBOOKS[0]])):
        with reproduce._shared_workers(unshared, selected) as pool:
            assert pool is None
    assert len(calls) == 2


def test_affine_workers_give_each_worker_whole_groups_but_for_the_cuts():
    """Tasks of one group (an ACNN architecture) go to as few workers as an even split allows: the demo's
    4 architectures on 2 workers make 5 (architecture, worker) pairs, each a trace, instead of 8."""
    groups = ["wb"] * 10 + ["wa"] * 40 + ["cb"] * 2 + ["ca"] * 8
    groups = [groups[i] for i in np.random.default_rng(0).permutation(len(groups))]  # as the grid interleaves
    order, preferred = cluster.affine_workers(groups, ["w1", "w2"])
    assert sorted(order) == list(range(60))
    assert [preferred.count("w1"), preferred.count("w2")] == [30, 30]
    pairs = {(groups[i], preferred[i]) for i in range(60)}
    assert len(pairs) == 5 and {g for g, _ in pairs} == {"wb", "wa", "cb", "ca"}
    sorted_groups = [groups[i] for i in order]  # submitted group by group, in their own order within
    runs_of_groups = [g for i, g in enumerate(sorted_groups) if i == 0 or g != sorted_groups[i - 1]]
    assert runs_of_groups == list(dict.fromkeys(groups))  # each group once, in order of first appearance
    assert [i for i in order if groups[i] == "wa"] == [i for i in range(60) if groups[i] == "wa"]
    three = cluster.affine_workers(groups, ["w1", "w2", "w3"])[1]
    assert len({(groups[i], three[i]) for i in range(60)}) <= 4 + 3 - 1
    assert cluster.affine_workers(["a", "b"], []) == ([0, 1], [None, None])

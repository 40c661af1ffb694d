"""Peak memory does not grow with corpus size: the feature store writer and the AE input pipeline stream.

Each measurement runs in a fresh subprocess and reports ``ru_maxrss`` (the process's peak resident
memory) before and after the work; the 1x and 4x corpora run side by side. If the store or the AE
pipeline held the corpus in memory, the peak increase of 4x the data would be about 4x that of 1x
(and at least the 4x data size); streaming keeps both near the batch and buffer sizes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np

SCALE = 4
STORE_ROWS = 500  # 1x: 500 log-Mel rows of 750 x 26 float32 = 37 MiB
AE_ROWS, AE_FRAMES, AE_BANDS = 1000, 40, 128  # 1x: 20 MiB of spectrograms
MIB = 2**20

STORE_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np
    from serlib.base import config as config_module
    from serlib.data import manifest as manifests
    from serlib.features import extraction, store

    rows, folder = int(sys.argv[1]), sys.argv[2]
    config = config_module.override(
        config_module.load_preset("paper"), output_dir=folder, **{"features.n_jobs": 1}
    )
    manifest = manifests.make_manifest(
        [{"utterance_id": f"u{i:06d}", "corpus": "mem", "path": f"{folder}/u{i:06d}.wav"} for i in range(rows)]
    )

    def synthetic_task(extractor, parameters, task):
        # stands in for decoding + openSMILE: one fresh [750, 26] matrix per utterance
        out = []
        for row in task:
            seed = int(row["utterance_id"][1:])
            matrix = np.random.default_rng(seed).standard_normal((1, 750, 26), dtype=np.float32)
            out.append({"utterance_id": row["utterance_id"], "path": row["path"], "error": None,
                        "features": matrix, "lengths": [750]})
        return out

    extraction.extract_task = synthetic_task
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    features = store.extract_manifest(manifest, "logmel", config, progress=False, corpus_key="mem")
    streamed = 0.0
    with store.open_features(features.path) as handle:  # read back in blocks, as consumers should
        for start in range(0, handle["features"].shape[0], 256):
            streamed += float(handle["features"][start : start + 256].sum())
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"before": before, "after": after, "rows": len(features.ids),
                      "bytes": features.path.stat().st_size}))
    """
)

AE_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np
    from serlib.base import config as config_module
    from serlib.models import autoencoder

    path, folder = sys.argv[1], sys.argv[2]
    config = config_module.override(
        config_module.load_preset("demo"),
        **{"autoencoder.units": 8, "autoencoder.layers": 1, "autoencoder.batch_size": 64,
           "autoencoder.dropout": 0.0, "features.spectrogram.mel_bands": 128},
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    model = autoencoder.train(config.autoencoder, path, folder + "/model", epochs=1, seed=0, progress=False)
    import h5py
    with h5py.File(path, "r") as handle:
        vectors = autoencoder.encode(autoencoder.load_model(model), handle["features"], batch_size=500)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"before": before, "after": after, "rows": int(vectors.shape[0])}))
    """
)


def _run_side_by_side(commands: list[list[str]]) -> list[dict]:
    """Start the measurements together (two cores), wait for all, parse each one's JSON line."""
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
        for command in commands
    ]
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr[-3000:]
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    return results


def _spectrogram_store(path: Path, rows: int) -> int:
    """A store-like HDF5 file of ``rows`` spectrograms, written in blocks (1 MiB chunks like serlib's)."""
    rows_per_chunk = max(1, min(64, MIB // (4 * AE_FRAMES * AE_BANDS)))
    rng = np.random.default_rng(rows)
    with h5py.File(path, "w") as handle:
        data = handle.create_dataset(
            "features",
            shape=(rows, AE_FRAMES, AE_BANDS),
            dtype="float32",
            chunks=(rows_per_chunk, AE_FRAMES, AE_BANDS),
        )
        for start in range(0, rows, 500):
            stop = min(rows, start + 500)
            data[start:stop] = rng.uniform(-1, 1, (stop - start, AE_FRAMES, AE_BANDS)).astype(np.float32)
    return rows * AE_FRAMES * AE_BANDS * 4


def _check(small: dict, large: dict, small_bytes: int, large_bytes: int) -> None:
    """Loading the corpus would add at least the extra data to the peak (and ~4x the 1x increase)."""
    grow_small = (small["after"] - small["before"]) / MIB
    grow_large = (large["after"] - large["before"]) / MIB
    extra = (large_bytes - small_bytes) / MIB
    message = (
        f"peak increase {grow_small:.1f} MiB with {small_bytes / MIB:.0f} MiB of data vs {grow_large:.1f} MiB "
        f"with {large_bytes / MIB:.0f} MiB"
    )
    print(message)
    assert grow_large - grow_small < 0.2 * extra, message
    assert grow_large < 1.5 * grow_small + 0.2 * extra, message


def test_feature_store_writing_and_reading_does_not_grow_with_corpus_size(tmp_path: Path) -> None:
    commands = [
        [sys.executable, "-c", STORE_SCRIPT, str(rows), str(tmp_path / f"x{rows}")]
        for rows in (STORE_ROWS, SCALE * STORE_ROWS)
    ]
    small, large = _run_side_by_side(commands)
    assert (small["rows"], large["rows"]) == (STORE_ROWS, SCALE * STORE_ROWS)
    _check(small, large, small["bytes"], large["bytes"])


def test_autoencoder_training_and_encoding_stream_from_the_store(tmp_path: Path) -> None:
    sizes = {}
    commands = []
    for rows in (AE_ROWS, SCALE * AE_ROWS):
        path = tmp_path / f"spectrograms{rows}.h5"
        sizes[rows] = _spectrogram_store(path, rows)
        commands.append([sys.executable, "-c", AE_SCRIPT, str(path), str(tmp_path / f"ae{rows}")])
    small, large = _run_side_by_side(commands)
    assert (small["rows"], large["rows"]) == (AE_ROWS, SCALE * AE_ROWS)
    _check(small, large, sizes[AE_ROWS], sizes[SCALE * AE_ROWS])

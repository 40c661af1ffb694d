"""Where a training step of the paper's ACNN spends its time, op by op (TensorFlow profiler, 1 thread).

``python -m benchmarks.profile_acnn [full|realistic|short] [reference,fast]``: trains each implementation
for one untimed epoch, then profiles two epochs of 256 random log-Mel-shaped utterances (the inputs of
``bench_acnn``), reads the profiler's XSpace file and prints, per op, its time per batch of 32 and its
share of the epochs' CPU seconds. The op times are wall time on the executing threads: under load they
grow with the waiting, so read the shares, not the milliseconds. Exploratory: not part of the suite.
"""

from __future__ import annotations

import collections
import glob
import os
import sys
import tempfile
import time

os.environ["SERLIB_TF_THREADS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

UTTERANCES, EPOCHS, BATCH = 256, 2, 32


def main() -> None:
    from serlib.base import runtime

    runtime.configure(1)
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    from benchmarks import bench_acnn
    from serlib.base import config as config_module
    from serlib.models.acnn import feed as acnn_feed

    profile = sys.argv[1] if len(sys.argv) > 1 else "full"
    implementations = sys.argv[2].split(",") if len(sys.argv) > 2 else ["reference", "fast"]
    config = config_module.load_preset("paper")
    inputs, targets, _ = bench_acnn._data(config, UTTERANCES, profile)
    batches = EPOCHS * UTTERANCES / BATCH
    for implementation in implementations:
        model = bench_acnn._model(config, implementation)

        def fit(epochs: int, model=model) -> None:
            acnn_feed.fit_acnn(
                model,
                inputs,
                targets,
                batch_size=BATCH,
                epochs=epochs,
                seed=0,
                shuffle="every_epoch",
                callbacks=[],
            )

        fit(1)  # traces the step
        folder = tempfile.mkdtemp(prefix="serlib-profile-acnn-")
        tf.profiler.experimental.start(folder)
        cpu = time.process_time()
        fit(EPOCHS)
        cpu = time.process_time() - cpu
        tf.profiler.experimental.stop()
        (path,) = glob.glob(f"{folder}/**/*.xplane.pb", recursive=True)
        space = xplane_pb2.XSpace()
        with open(path, "rb") as handle:
            space.ParseFromString(handle.read())
        totals: collections.Counter[str] = collections.Counter()
        for plane in space.planes:
            if not plane.name.startswith("/host:CPU"):
                continue
            names = {key: value.name for key, value in plane.event_metadata.items()}
            for line in plane.lines:
                if line.name.startswith("tf_Compute") or line.name == "python":
                    for event in line.events:
                        totals[names.get(event.metadata_id, "?")] += event.duration_ps / 1e12
        print(
            f"== {implementation}, {profile} lengths: {cpu:.2f} CPU-s for {EPOCHS} epochs of {UTTERANCES} "
            f"utterances = {1e3 * cpu / batches:.1f} CPU ms per batch of {BATCH}"
        )
        for name, seconds in totals.most_common(40):
            short = name.split("StatefulPartitionedCall/")[-1]
            print(f"  {1e3 * seconds / batches:8.2f} ms/batch {100 * seconds / cpu:6.1f} %  {short[:100]}")


if __name__ == "__main__":
    main()

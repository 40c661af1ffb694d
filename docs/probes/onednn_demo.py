"""oneDNN's custom operations on and off for the demo's ACNN runs (issue 34; docs/reliability.md, section 7).

The demo preset's 2 seeds (60 ACNN runs, 2 Dask workers at 1 thread), with the feature stores,
autoencoders and AE vectors of the demo reference grid (``cache_dir``), so that only the ACNN's
kernels change. Run it once with ``TF_ENABLE_ONEDNN_OPTS=0`` and once without, into two folders, and
compare their Table 1 (``serlib check``, ``table1.md``) and the printed times:

    TF_ENABLE_ONEDNN_OPTS=0 SERLIB_TF_THREADS=1 python docs/probes/onednn_demo.py runs/onednn-off-demo
    SERLIB_TF_THREADS=1 python docs/probes/onednn_demo.py runs/onednn-on-demo
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from serlib.base import config as config_module
from serlib.base import provenance
from serlib.evidence import summaries


def main(out: str, cache: str = "runs/demo-reference/cache") -> None:
    config = config_module.override(config_module.load_preset("demo"), output_dir=out, cache_dir=cache)
    provenance.record(out, config, command=f"python docs/probes/onednn_demo.py {out}")
    started = time.time()
    summaries.evaluate(config, progress=False)
    wall = time.time() - started
    seconds = [
        json.loads(path.read_text(encoding="utf-8"))["train_seconds"]
        for path in Path(out).glob("results/*/*/seed*/fold*/metrics.json")
    ]
    print(
        f"{out}: TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')}, wall {wall:.1f} s, "
        f"{len(seconds)} runs, training {sum(seconds):.1f} s, load average {os.getloadavg()}"
    )


if __name__ == "__main__":  # the Dask workers import this file again
    main(*sys.argv[1:3])

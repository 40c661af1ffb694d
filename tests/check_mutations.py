"""Changes to a finished run folder that `serlib check` must notice (issue 42): another CPU family in its
provenance, and a shift of one cell's UAR made by turning wrong predictions right."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from serlib.base import metrics, provenance
from serlib.evidence import references

# "another CPU family", derived from this host: the other vendor, and AVX2 where this host has AVX-512
# (else AVX-512), so it differs from this machine on whichever CPU the tests run
_HERE = provenance.cpu_info()
_FLAGS = _HERE["features"].split() if isinstance(_HERE["features"], str) else list(_HERE["features"] or [])
_OTHER_VENDOR = "AMD" if references.cpu_family(_HERE["model"], _FLAGS).startswith("Intel") else "Intel"
_WIDE = any(flag.startswith("avx512") for flag in _FLAGS)
OTHER = {
    "model": f"{_OTHER_VENDOR} test processor",
    "features": ["sse4_2", "avx", "avx2", *([] if _WIDE else ["avx512f"])],
}
OTHER_FAMILY = references.cpu_family(OTHER["model"], OTHER["features"])


def as_other_family(run: Path) -> Path:
    """The run folder, its provenance saying another CPU family computed it."""
    path = run / provenance.FILE_NAME
    record = json.loads(path.read_text(encoding="utf-8"))
    record["machine"]["cpu"].update(OTHER)
    path.write_text(json.dumps(record), encoding="utf-8")
    return run


def shift_cell(
    run: Path,
    condition: str,
    points: float,
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4),
    setting: str = "within",
) -> None:
    """Turn wrong predictions of ``condition``'s runs right until each fold's UAR rose by ``points``."""
    for seed in seeds:
        for path in sorted(
            (run / "results" / setting / condition / f"seed{seed}").glob("fold*/predictions.csv")
        ):
            frame = pd.read_csv(path, dtype={"utterance_id": str})
            before = metrics.uar(frame["true"], frame["predicted"])
            for index in frame.index[frame["true"] != frame["predicted"]]:
                frame.loc[index, "predicted"] = frame.loc[index, "true"]
                if metrics.uar(frame["true"], frame["predicted"]) - before >= points / 100:
                    break
            assert metrics.uar(frame["true"], frame["predicted"]) - before >= points / 100
            frame.to_csv(path, index=False)

"""The classic reference features: the 88 eGeMAPSv02 functionals of openSMILE (Eyben et al. 2016), and
the 25 frame-level descriptors (LLDs) they summarise, an alternative input of the ACNN."""

from __future__ import annotations

import functools
import warnings

import numpy as np

from serlib.data.audio import AudioError
from serlib.features.smile import to_opensmile

EGEMAPS_DIMS = 88
EGEMAPS_LLD_DIMS = 25  # frame-level descriptors of eGeMAPSv02, one row per 10 ms


FUNCTIONALS = "Functionals"
DESCRIPTORS = "LowLevelDescriptors"


@functools.lru_cache(maxsize=2)
def egemaps_smile(level: str = FUNCTIONALS):
    """openSMILE's eGeMAPSv02 extractor at ``level``: the functionals or the frame-level descriptors."""
    import opensmile  # noqa: PLC0415 - only after features.smile bound openSMILE's library

    return opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02,
        feature_level=opensmile.FeatureLevel[level],
        loglevel=0,
    )


def egemaps_names() -> list[str]:
    """The 88 eGeMAPSv02 functional names, in the order of ``egemaps``."""
    return list(egemaps_smile().feature_names)


def egemaps(signal: np.ndarray, sample_rate: int) -> np.ndarray:
    """The 88 eGeMAPSv02 functionals of one utterance (openSMILE, one call), float32 ``[88]``."""
    x = to_opensmile(signal)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Segment too short")  # turned into an error below
        output = egemaps_smile()(x, sample_rate)  # [1, 88, 1]
    values = np.asarray(output, dtype=np.float32).reshape(-1)
    if values.shape[0] != EGEMAPS_DIMS:
        raise RuntimeError(f"openSMILE returned {values.shape[0]} eGeMAPS values instead of {EGEMAPS_DIMS}")
    if not np.isfinite(values).all():
        raise AudioError(
            f"signal of {x.shape[1] / sample_rate * 1000:.0f} ms is too short for eGeMAPS (openSMILE gives no "
            "values below about 60 ms)"
        )
    return values


def egemaps_lld_names() -> list[str]:
    """The 25 eGeMAPSv02 descriptor names, in the column order of ``egemaps_lld``."""
    return list(egemaps_smile(DESCRIPTORS).feature_names)


def egemaps_lld(signal: np.ndarray, sample_rate: int) -> np.ndarray:
    """The 25 eGeMAPSv02 frame-level descriptors of one utterance, float32 ``[frames, 25]`` (10 ms hop;
    openSMILE, one call)."""
    x = to_opensmile(signal)
    output = egemaps_smile(DESCRIPTORS)(x, sample_rate)  # [1, 25, frames]
    values = np.asarray(output, dtype=np.float32)[0].T
    if values.ndim != 2 or values.shape[1] != EGEMAPS_LLD_DIMS:
        raise RuntimeError(
            f"openSMILE returned eGeMAPS descriptors of shape {values.shape}, not [frames, 25]"
        )
    if values.shape[0] == 0:
        raise AudioError(
            f"signal of {x.shape[1] / sample_rate * 1000:.0f} ms is too short for eGeMAPS descriptors"
        )
    if not np.isfinite(values).all():
        raise AudioError("openSMILE gave non-finite eGeMAPS descriptors for this signal")
    return values

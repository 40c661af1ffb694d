"""serlib.normalisation: per-group standardisation over real frames, groups independent of each other."""

from __future__ import annotations

import numpy as np
import pytest

from serlib.features import normalisation


def _frames(seed: int, n: int = 12, frames: int = 40):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(5, frames + 1, n)
    values = rng.normal(-12.0, 4.0, (n, frames, 6)).astype(np.float32)
    for i, length in enumerate(lengths):
        values[i, length:] = 0.0
    return values, lengths


def test_each_group_is_standardised_by_itself_and_padding_stays_zero():
    values, lengths = _frames(0)
    groups = np.array(["a"] * 5 + ["b"] * 7)
    out = normalisation.standardise_frames(values, lengths, groups)
    for group in ("a", "b"):
        rows = np.flatnonzero(groups == group)
        real = np.concatenate([out[i, : lengths[i]] for i in rows])
        np.testing.assert_allclose(real.mean(axis=0), 0.0, atol=1e-4)
        np.testing.assert_allclose(real.std(axis=0), 1.0, atol=1e-4)
    assert all((out[i, lengths[i] :] == 0).all() for i in range(len(values)))
    changed = values.copy()
    changed[groups == "b"] = changed[groups == "b"] * 5 + 3  # another speaker or corpus changes ...
    again = normalisation.standardise_frames(changed, lengths, groups)
    np.testing.assert_array_equal(again[groups == "a"], out[groups == "a"])  # ... group a does not


def test_vectors_per_group_and_group_names():
    rng = np.random.default_rng(1)
    vectors = rng.normal(5.0, 2.0, (10, 3))
    groups = normalisation.groups_for("speaker", ["s1"] * 4 + ["s2"] * 6, "nemo")
    assert groups[0] == "nemo/s1"
    out = normalisation.standardise_vectors(vectors, groups)
    for group in set(groups):
        rows = groups == group
        np.testing.assert_allclose(out[rows].mean(axis=0), 0.0, atol=1e-12)
    assert set(normalisation.groups_for("corpus", ["x", "y"], "emodb")) == {"emodb"}
    with pytest.raises(normalisation.NormalisationError, match="choose one of"):
        normalisation.groups_for("train", ["x"], "emodb")

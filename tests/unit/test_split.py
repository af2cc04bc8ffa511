"""Stratified splits that fit the data: proportional scaling, per-class minimums, determinism, refusals."""

import numpy as np
import pytest

from insitu.data.split import plan
from insitu.errors import DataError

ASK = {"train": 3000, "pool": 9000, "test": 2000}


def _check_disjoint(s, n):
    allidx = np.concatenate(list(s.parts.values()))
    assert len(np.unique(allidx)) == len(allidx) and (allidx < n).all()


def test_smaller_data_is_scaled_in_proportion_and_stratified():
    y = np.repeat(np.arange(10), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])  # sklearn digits' counts
    s = plan(y, ASK, seed=0)
    used = {p: len(i) for p, i in s.parts.items()}
    assert s.scaled and sum(used.values()) == 1797 and used == {"train": 385, "pool": 1155, "test": 257}
    _check_disjoint(s, len(y))
    for part, idx in s.parts.items():
        share = np.bincount(y[idx], minlength=10) / len(idx)
        assert np.abs(share - np.bincount(y) / len(y)).max() < 0.02, part  # stratified
    assert "scaled in proportion" in s.describe()["note"]


def test_enough_data_keeps_the_asked_sizes_and_is_deterministic():
    y = np.random.default_rng(0).integers(0, 3, 20000)
    a, b = plan(y, ASK, seed=4), plan(y, ASK, seed=4)
    assert not a.scaled and {p: len(i) for p, i in a.parts.items()} == ASK
    assert all(np.array_equal(a.parts[p], b.parts[p]) for p in ASK)
    assert not all(np.array_equal(a.parts[p], plan(y, ASK, seed=5).parts[p]) for p in ASK)
    _check_disjoint(a, len(y))
    assert "note" not in a.describe()


@pytest.mark.parametrize("counts", [[200, 60, 12], [500, 3, 2], [2, 2], [1000, 2, 40, 7]])
def test_every_class_reaches_train_and_test(counts):
    y = np.repeat(np.arange(len(counts)), counts)
    s = plan(y, {"train": 240, "pool": 360, "test": 120}, seed=1)
    _check_disjoint(s, len(y))
    for k in range(len(counts)):
        assert (y[s.parts["train"]] == k).sum() >= 1 and (y[s.parts["test"]] == k).sum() >= 1
    assert sum(len(i) for i in s.parts.values()) <= len(y)


def test_empty_pool_and_refusals():
    y = np.repeat([0, 1], [50, 50])
    s = plan(y, {"train": 240, "pool": 0, "test": 120}, seed=0)
    assert len(s.parts["pool"]) == 0 and len(s.parts["train"]) + len(s.parts["test"]) == 100
    with pytest.raises(DataError, match="'T8' has 1 image"):
        plan(np.array([0, 0, 1, 1, 2]), ASK, seed=0, class_names=["B", "T4", "T8"], source="cells.npz")
    single = plan(np.array([0]), {"test": 2000}, seed=0)  # a test file with one image
    assert len(single.parts["test"]) == 1

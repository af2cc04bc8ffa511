"""Contradiction codes and failure clusters on a hand-built scene."""

import numpy as np
import pytest

from insitu.errors import DataError
from insitu.lidar.contradiction import (BOTH_DYNAMIC, BOTH_STATIC, ONLY_SELF_SUPERVISED, ONLY_SUPERVISED, codes,
                                        failure_flags)


def test_the_four_codes():
    sup = np.array([0, 1, 0, 1], bool)
    ssl = np.array([0, 1, 1, 0], bool)
    assert codes(sup, ssl).tolist() == [BOTH_STATIC, BOTH_DYNAMIC, ONLY_SELF_SUPERVISED, ONLY_SUPERVISED]
    with pytest.raises(DataError, match="number of points"):
        codes(sup, ssl[:3])


def test_dense_contradicting_clusters_are_flagged_and_isolated_points_are_not():
    rng = np.random.default_rng(0)
    ground = np.c_[rng.uniform(-20, 20, (400, 2)), np.zeros(400)]
    animal = rng.normal([8, 2, 0.5], 0.3, (40, 3))  # moves, unknown to the segmenter: only motion says dynamic
    parked = rng.normal([-6, -3, 0.8], 0.4, (60, 3))  # a car the segmenter calls dynamic, but it does not move
    stray = np.array([[15.0, 15.0, 0.2], [-15.0, 12.0, 0.3]])  # isolated disagreements: noise
    xyz = np.vstack([ground, animal, parked, stray])
    sup = np.r_[np.zeros(400), np.zeros(40), np.ones(60), [1, 0]].astype(bool)
    ssl = np.r_[np.zeros(400), np.ones(40), np.zeros(60), [0, 1]].astype(bool)
    c = codes(sup, ssl)
    flags = failure_flags(xyz, c)
    assert flags[400:440].all() and flags[440:500].all()
    assert not flags[:400].any() and not flags[500:].any()
    assert (c[400:440] == ONLY_SELF_SUPERVISED).all() and (c[440:500] == ONLY_SUPERVISED).all()

"""SemanticKITTI reader/writer: round trips and every corrupt-file case named in the issue."""

import numpy as np
import pytest

from insitu.data import kitti
from insitu.errors import DataError


def _seq(tmp_path, n_scans=3, points=50, labels=True, poses=True):
    rng = np.random.default_rng(0)
    (tmp_path / "velodyne").mkdir(parents=True)
    if labels:
        (tmp_path / "labels").mkdir()
    for i in range(n_scans):
        pts = rng.normal(size=(points, 4)).astype(np.float32)
        kitti.write_scan(tmp_path / "velodyne" / f"{i:06d}.bin", pts)
        if labels:
            kitti.write_label(tmp_path / "labels" / f"{i:06d}.label", rng.integers(0, 260, points),
                              rng.integers(0, 9, points))
    if poses:
        p = np.repeat(np.eye(4)[None], n_scans, 0)
        p[:, 0, 3] = np.arange(n_scans) * 1.25
        kitti.write_poses(tmp_path / "poses.txt", p)
    return tmp_path


def test_round_trips(tmp_path):
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(100, 4)).astype(np.float32)
    kitti.write_scan(tmp_path / "a.bin", pts)
    np.testing.assert_array_equal(kitti.read_scan(tmp_path / "a.bin"), pts)
    sem, inst = rng.integers(0, 65536, 100), rng.integers(0, 65536, 100)
    kitti.write_label(tmp_path / "a.label", sem, inst)
    s2, i2 = kitti.read_label(tmp_path / "a.label", 100)
    np.testing.assert_array_equal(s2, sem)
    np.testing.assert_array_equal(i2, inst)
    poses = np.repeat(np.eye(4)[None], 4, 0)
    poses[:, :3, 3] = rng.normal(size=(4, 3))
    kitti.write_poses(tmp_path / "poses.txt", poses)
    np.testing.assert_allclose(kitti.read_poses(tmp_path / "poses.txt", 4), poses, rtol=1e-8)


def test_sequence_opens_with_and_without_labels_and_poses(tmp_path):
    seq = kitti.open_sequence(_seq(tmp_path / "a"))
    assert len(seq) == 3 and seq.labels is not None and seq.poses.shape == (3, 4, 4)
    seq = kitti.open_sequence(_seq(tmp_path / "b", labels=False, poses=False))
    assert seq.labels is None and seq.poses is None


def test_scan_size_not_a_multiple_of_16(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"\0" * 20)
    with pytest.raises(DataError, match="not a multiple of 16"):
        kitti.read_scan(tmp_path / "x.bin")


def test_empty_and_nan_scans(tmp_path):
    (tmp_path / "e.bin").write_bytes(b"")
    with pytest.raises(DataError, match="is empty"):
        kitti.read_scan(tmp_path / "e.bin")
    pts = np.ones((10, 4), np.float32)
    pts[3, 1] = np.nan
    pts[7, 0] = np.inf
    kitti.write_scan(tmp_path / "n.bin", pts)
    with pytest.raises(DataError, match="2 points with NaN/inf .first at index 3"):
        kitti.read_scan(tmp_path / "n.bin")


def test_label_count_differs_from_scan(tmp_path):
    kitti.write_label(tmp_path / "l.label", np.zeros(9, int))
    with pytest.raises(DataError, match="has 9 labels but its scan has 10 points"):
        kitti.read_label(tmp_path / "l.label", 10)
    (tmp_path / "t.label").write_bytes(b"\0" * 7)
    with pytest.raises(DataError, match="not a multiple of 4"):
        kitti.read_label(tmp_path / "t.label", 1)


def test_missing_or_malformed_poses(tmp_path):
    seq = _seq(tmp_path / "s")
    (seq / "poses.txt").write_text("1 0 0 0 0 1 0 0 0 0 1 0\n1 0 0\n1 0 0 0 0 1 0 0 0 0 1 0\n")
    with pytest.raises(DataError, match="line 2: 3 values, expected 12"):
        kitti.open_sequence(seq)
    (seq / "poses.txt").write_text("1 0 0 0 0 1 0 0 0 0 1 x\n")
    with pytest.raises(DataError, match="line 1: not numbers"):
        kitti.read_poses(seq / "poses.txt")
    (seq / "poses.txt").write_text("1 0 0 0 0 1 0 0 0 0 1 0\n")
    with pytest.raises(DataError, match="1 poses for 3 scans"):
        kitti.open_sequence(seq)


def test_missing_label_file_and_empty_sequence(tmp_path):
    seq = _seq(tmp_path / "s")
    (seq / "labels" / "000001.label").unlink()
    with pytest.raises(DataError, match="lacks 1 label files .first: 000001.label"):
        kitti.open_sequence(seq)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no velodyne"):
        kitti.open_sequence(tmp_path / "empty")

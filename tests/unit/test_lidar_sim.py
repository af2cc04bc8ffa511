"""The synthetic spinning lidar, beam estimation, the motion stream on a hand-built pair of scans."""

import numpy as np
import pytest

from insitu.data import kitti
from insitu.data.lidar_sensor import estimate_table, require_beams, sequence_table
from insitu.data.lidar_sim import SensorSpec, read_anomaly, simulate_sequence
from insitu.data.range_image import project, sim_table
from insitu.errors import DataError
from insitu.lidar.motion import MotionParams, motion


def test_simulated_sequence_is_valid_kitti_and_deterministic(tmp_path):
    for name in ("a", "b"):
        simulate_sequence(tmp_path / name, (3, 1, 4), SensorSpec(beams=16, columns=128), 3, 2)
    seq = kitti.open_sequence(tmp_path / "a")
    assert len(seq) == 3 and seq.labels is not None and seq.poses.shape == (3, 4, 4)
    for p in seq.scans:
        assert p.read_bytes() == (tmp_path / "b" / "velodyne" / p.name).read_bytes()
    pts = kitti.read_scan(seq.scans[1])
    sem, inst = kitti.read_label(seq.labels[1], len(pts))
    assert 500 < len(pts) <= 16 * 128 and np.isin(sem, [40, 48]).any() and (inst > 0).any()
    assert (pts[:, 3] >= 0).all() and (pts[:, 3] <= 1).all()
    anomaly = read_anomaly(seq.folder, "000001", len(pts))
    assert (sem[anomaly > 0] == 0).all()  # anomalies are unlabelled in the label files
    # every point lies on its ray: the projection puts it on a distinct cell
    proj = project(pts, sim_table(16), 128)
    assert len(np.unique(proj.beam * 128 + proj.column)) == len(pts)
    assert estimate_table([pts], "scan").beams == 16


def test_mixed_beam_counts_are_refused(tmp_path):
    simulate_sequence(tmp_path / "s16", (1,), SensorSpec(beams=16, columns=128), 2, 0)
    simulate_sequence(tmp_path / "s32", (1,), SensorSpec(beams=32, columns=128), 1, 0)
    seq = kitti.open_sequence(tmp_path / "s16")
    table = sequence_table(seq, None)
    assert table.beams == 16 and table.source == "estimated"
    require_beams(table, 16, "s16", trained=True)
    with pytest.raises(DataError, match="16-beam sensor .* takes 32 beams") as err:
        require_beams(table, 32, "s16", trained=True)
    assert "lidar.data.beams=16" in err.value.fix
    (tmp_path / "s16" / "velodyne" / "000001.bin").write_bytes((tmp_path / "s32" / "velodyne" / "000000.bin").read_bytes())
    with pytest.raises(DataError, match="different beam counts"):
        sequence_table(kitti.open_sequence(tmp_path / "s16"), None)


def _box(center, size, step=0.1):
    g = [np.arange(-s / 2, s / 2 + 1e-9, step) for s in size]
    xs, ys, zs = np.meshgrid(*g, indexing="ij")
    surf = (np.abs(xs) >= size[0] / 2 - 1e-9) | (np.abs(ys) >= size[1] / 2 - 1e-9) | (np.abs(zs) >= size[2] / 2 - 1e-9)
    return np.column_stack([xs[surf], ys[surf], zs[surf]]) + center


def test_motion_stream_on_a_hand_built_pair():
    ground = np.column_stack([g.ravel() for g in np.meshgrid(np.arange(-20, 20, 0.5), np.arange(-20, 20, 0.5))]
                             + [np.full(6400, -1.7)])
    static = _box([8, 5, -0.9], [2, 2, 1.6])
    prev = np.vstack([ground, static, _box([10, -4, -1.0], [4, 1.8, 1.4])])
    cur = np.vstack([ground, static, _box([11, -4, -1.0], [4, 1.8, 1.4])])  # the car moved 1 m: 36 km/h
    r = motion(cur, prev, MotionParams())
    n_g, n_s = len(ground), len(static)
    assert not r.considered[:n_g].any()  # ground removed
    assert not r.dynamic[n_g:n_g + n_s].any()
    seen = r.considered[n_g + n_s:]  # the car's lowest 0.25 m goes with the ground
    assert seen.mean() > 0.6 and r.dynamic[n_g + n_s:][seen].all()
    assert np.median(r.speed_kmh[n_g + n_s:]) == pytest.approx(36, abs=3)
    fast = np.vstack([ground, static, _box([14, -4, -1.0], [4, 1.8, 1.4])])  # 4 m in 0.1 s: above 80 km/h
    assert not motion(fast, prev, MotionParams()).dynamic[n_g + n_s:].any()


def test_semantickitti_root_splits_and_refusals(tmp_path):
    from insitu.config_lidar import LidarDataConfig
    from insitu.data.lidar import from_semantickitti

    root = tmp_path / "kitti"
    for k in range(3):
        simulate_sequence(root / "sequences" / f"{k:02d}", (k,), SensorSpec(beams=16, columns=128), 2, 0)
    ds = from_semantickitti(LidarDataConfig(source="semantickitti", path=root, beams=16, columns=128))
    assert ds.splits == {"train": ["00", "01"], "pool": ["00", "01"], "test": ["02"]} and not ds.synthetic
    for k in ("00", "01"):
        import shutil

        shutil.rmtree(root / "sequences" / k / "labels")
    with pytest.raises(DataError, match="no sequence besides the test one has labels"):
        from_semantickitti(LidarDataConfig(source="semantickitti", path=root, beams=16))
    with pytest.raises(DataError, match="no sequences/ folder"):
        from_semantickitti(LidarDataConfig(source="semantickitti", path=tmp_path, beams=16))

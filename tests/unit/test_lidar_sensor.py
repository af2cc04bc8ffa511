"""Beam tables of sensors nobody here built: estimated from the scans (beam order and elevation clustering),
given as presets, sensor files or angles in the config, and the refusals that name what to do."""

import json
import shutil

import numpy as np
import pytest

from insitu.config import build_config
from insitu.data import kitti
from insitu.data.lidar_sensor import (check_scan, estimate_table, given_table, read_sensor_file, require_beams,
                                      sequence_table, simulator_table)
from insitu.data.lidar_sim import SensorSpec, simulate_sequence
from insitu.data.range_image import PRESETS, BeamTable, assign_beams, preset
from insitu.errors import ConfigError, DataError

#: an uneven 16-beam sensor of no known make: dense near the horizon, sparse above and below
UNEVEN_16 = (12.0, 7.5, 4.0, 2.0, 1.0, 0.3, -0.4, -1.1, -1.8, -2.6, -3.5, -4.6, -6.0, -8.0, -11.5, -17.0)


def _sequence(tmp_path, name, angles, columns=256, scans=2, seed=3):
    folder = tmp_path / name
    simulate_sequence(folder, (seed,), SensorSpec(beams=len(angles), columns=columns, angles_deg=tuple(angles)),
                      scans, 1)
    return folder


@pytest.mark.parametrize("angles", [UNEVEN_16, PRESETS["vlp-32c"], PRESETS["hdl-64e"]],
                         ids=["uneven-16", "vlp-32c", "hdl-64e"])
def test_estimated_tables_match_the_sensor_by_order_and_by_clustering(tmp_path, angles):
    folder = _sequence(tmp_path, "s", angles, columns=512 if len(angles) > 16 else 256)
    scans = [kitti.read_scan(p) for p in kitti.open_sequence(folder).scans]
    by_order = estimate_table(scans, "s")
    shuffled = [s[np.random.default_rng(0).permutation(len(s))] for s in scans]
    by_cluster = estimate_table(shuffled, "s")
    assert by_order.name == "estimated (beam order)" and by_cluster.name == "estimated (elevation clustering)"
    for t in (by_order, by_cluster):
        assert t.beams == len(angles)
        np.testing.assert_allclose(t.angles_deg, angles, atol=1e-3)


def test_beam_order_survives_lasers_mounted_off_centre(tmp_path):
    """Lasers with vertical offsets (raw HDL-64E data) smear each ring's elevation at short range; the ring
    order still gives the count, and nearest-angle clustering of shuffled points refuses by name."""
    angles = PRESETS["vlp-32c"]
    scans = [kitti.read_scan(p) for p in kitti.open_sequence(_sequence(tmp_path, "s", angles, 512)).scans]
    offsets = np.random.default_rng(1).uniform(-0.1, 0.1, 32)
    table = BeamTable(angles)
    smeared = []
    for s in scans:
        b = assign_beams(np.arcsin(s[:, 2] / np.linalg.norm(s[:, :3], axis=1)), table)
        t = s.copy()
        t[:, 2] += offsets[b]
        smeared.append(t)
    assert estimate_table(smeared, "s").beams == 32
    with pytest.raises(DataError, match="do not form distinct rings") as err:
        estimate_table([s[np.random.default_rng(0).permutation(len(s))] for s in smeared], "s")
    assert "lidar.data.sensor" in err.value.fix and "beam_angles_deg" in err.value.fix


def test_a_pattern_without_rings_is_refused_with_the_fix():
    rng = np.random.default_rng(0)
    pts = np.column_stack([rng.normal(size=(20000, 2)) * 20, rng.normal(size=20000) * 2, np.ones(20000)])
    with pytest.raises(DataError, match="distinct ring") as err:
        estimate_table([pts.astype(np.float32)], "livox-like scan")
    assert "--sensor" in err.value.fix


def test_sensor_files_toml_and_json(tmp_path):
    (tmp_path / "s.toml").write_text('name = "bench"\nbeam_angles_deg = [-1.5, 2, 0.25]\n')
    t = read_sensor_file(tmp_path / "s.toml")
    assert t.angles_deg == (2.0, 0.25, -1.5) and t.name == "bench" and t.source == "file"
    (tmp_path / "s.json").write_text(json.dumps({"beam_angles_deg": list(UNEVEN_16)}))
    assert read_sensor_file(tmp_path / "s.json").angles_deg == UNEVEN_16
    assert given_table(str(tmp_path / "s.json"), None).beams == 16
    for text, msg in [("beam_angles_deg = 3", "no list"), ("beam_angles_deg = [1, 'a']", "numbers only"),
                      ("beam_angles_deg = [1, 1]", "sorted top first"), ("beam_angles = [1, 2]", "no list"),
                      ("beam_angles_deg = [1, 2", "not valid TOML"), ("beam_angles_deg = [true, 2]", "numbers")]:
        (tmp_path / "bad.toml").write_text(text)
        with pytest.raises(DataError, match=msg) as err:
            read_sensor_file(tmp_path / "bad.toml")
        assert "bad.toml" in str(err.value)
    with pytest.raises(DataError, match="does not exist"):
        read_sensor_file(tmp_path / "missing.toml")


def test_config_names_the_table(tmp_path):
    assert given_table("auto", None) is None
    assert given_table("hdl-64e", None).beams == 64
    assert given_table("auto", [1.0, -1.0, 3.0]).angles_deg == (3.0, 1.0, -1.0)
    with pytest.raises(ConfigError, match="neither a beam table preset nor a sensor file"):
        given_table("hdl-128", None)
    with pytest.raises(ConfigError, match="lidar.data.beam_angles_deg"):
        given_table("auto", [1.0, 1.0])
    assert simulator_table("auto", None, 32).name == "sim-32"
    with pytest.raises(ConfigError, match="lidar.data.beams=16"):
        simulator_table("vlp-32c", None, 16)
    with pytest.raises(DataError, match="no built-in beam table for a 24-beam"):
        simulator_table("auto", None, 24)
    cfg = build_config("tiny", {"lidar": {"data": {"sensor": "vlp-16"}}}, app="lidar")
    assert cfg.lidar.data.sensor == "vlp-16"


@pytest.mark.parametrize("labels,poses", [(True, True), (False, True), (True, False), (False, False)])
def test_uneven_sequences_with_and_without_labels_and_poses(tmp_path, labels, poses):
    folder = _sequence(tmp_path, "s", UNEVEN_16, scans=3)
    if not labels:
        shutil.rmtree(folder / "labels")
    if not poses:
        (folder / "poses.txt").unlink()
    seq = kitti.open_sequence(folder)
    assert (seq.labels is not None) == labels and (seq.poses is not None) == poses
    table = sequence_table(seq, None)
    np.testing.assert_allclose(table.angles_deg, UNEVEN_16, atol=1e-3)
    require_beams(table, 16, str(folder), trained=True)
    assert sequence_table(seq, BeamTable(UNEVEN_16)).angles_deg == UNEVEN_16


def test_a_given_table_must_describe_the_scans(tmp_path):
    folder = _sequence(tmp_path, "s", PRESETS["vlp-32c"], columns=512, scans=1)
    seq = kitti.open_sequence(folder)
    assert sequence_table(seq, preset("vlp-32c")).beams == 32
    with pytest.raises(DataError, match="does not fit the beam table 'vlp-16'") as err:
        sequence_table(seq, preset("vlp-16"))  # 32 rings in the file, 16 in the table; -25 degrees is outside
    assert "000000.bin" in str(err.value)
    check_scan(kitti.read_scan(seq.scans[0]), preset("vlp-32c"), "scan")


def test_user_sequences_get_their_own_tables(tmp_path):
    from insitu.config_lidar import LidarDataConfig
    from insitu.data.lidar import from_semantickitti

    root = tmp_path / "kitti"
    for k in range(3):
        _sequence(root / "sequences", f"{k:02d}", UNEVEN_16, seed=k)
    ds = from_semantickitti(LidarDataConfig(source="semantickitti", path=root, beams=16, columns=256))
    assert set(ds.tables) == {"00", "01", "02"}
    np.testing.assert_allclose(ds.table("02").angles_deg, UNEVEN_16, atol=1e-3)
    with pytest.raises(DataError, match="16-beam sensor .* but lidar.data.beams=32") as err:
        from_semantickitti(LidarDataConfig(source="semantickitti", path=root, beams=32, columns=256))
    assert "lidar.data.beams=16" in err.value.fix


def test_a_table_other_than_the_training_one_is_flagged():
    from insitu.data.lidar_sensor import foreign_table_warning

    sim32, vlp = preset("sim-32"), preset("vlp-32c")
    assert foreign_table_warning(sim32, [preset("hdl-32e")]) is None  # the same angles
    assert foreign_table_warning(BeamTable(tuple(a + 0.01 for a in sim32.angles_deg)), [sim32]) is None
    w = foreign_table_warning(vlp, [sim32])
    assert w and "not validated" in w and "lidar.data.sensor" in w
    assert foreign_table_warning(preset("hdl-64e"), [sim32]) is None  # another count is refused elsewhere

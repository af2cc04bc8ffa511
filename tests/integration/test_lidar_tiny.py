"""Lidar end to end on the tiny preset through the real CLI, then `insitu lidar detect` on generated sequences,
including the bad inputs that must fail clearly and leave earlier predictions in place."""

import json
import shutil

import numpy as np
import pytest

from insitu.data import kitti
from insitu.data.lidar_sim import SensorSpec, simulate_sequence

from .cli import cli as _cli


@pytest.fixture(scope="module")
def lidar_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("lidar")
    env = {"INSITU_CACHE": str(base / "cache")}
    _cli("run", "lidar", "--preset", "tiny", "--out", str(base / "run"), env=env)
    return base / "run"


@pytest.mark.slow
def test_tiny_lidar_run_reports_every_stage_bit_exact(lidar_run):
    rep = json.loads((lidar_run / "report.json").read_text())
    for key in ("tp", "fp", "fn", "tn", "iou"):
        assert 0 <= rep["two_stream"][key] <= 1
    assert abs(sum(rep["two_stream"][k] for k in ("tp", "fp", "fn", "tn")) - 1) < 1e-9
    for key in ("auroc", "aupr", "fpr95", "iou", "params", "weight_bits"):
        assert key in rep["student"]
    assert rep["student"]["weight_bits"] == 4 and rep["student"]["params"] == 16 * 3 * 8 + 8 + 8 * 16 + 16
    assert rep["reference"]["vectors"] == rep["reference"]["bit_exact_vectors"] == 2 * 8 * 256  # every test column
    assert rep["csim"]["vectors"] == rep["csim"]["bit_exact_vectors"] == 60
    assert rep["rtl"]["vectors"] == rep["rtl"]["bit_exact_vectors"] == 60
    assert rep["rtl"]["ii_cycles"] == 1 and rep["rtl"]["architecture"] == "unrolled"
    assert 3 <= rep["rtl"]["latency_cycles"] <= 40
    impl = rep["impl"]
    assert impl["board"] == "ulx3s-85f" and impl["fmax_mhz"] > 20 and impl["lut"] > 100 and impl["ff"] > 50
    bit = lidar_run / "firmware" / "ulx3s-85f" / impl["bitstream"]
    assert __import__("hashlib").sha256(bit.read_bytes()).hexdigest() == impl["bitstream_sha256"]
    lat = rep["latency_us"]
    assert lat["clock"] == "bitstream" and lat["clock_mhz"] <= impl["fmax_mhz"] and impl["timing_met"]
    assert lat["per_column"] == pytest.approx(rep["rtl"]["latency_cycles"] / lat["clock_mhz"], rel=1e-3)
    assert lat["margin"] == pytest.approx(lat["column_period_us"] / lat["per_column"], rel=0.01)
    assert (lidar_run / "roc.png").stat().st_size > 1000 and (lidar_run / "bev.png").stat().st_size > 1000
    assert "bit-exact" in (lidar_run / "report.md").read_text()


@pytest.mark.slow
def test_detect_writes_predictions_and_handles_bad_sequences(lidar_run, tmp_path):
    seq = tmp_path / "seq"
    simulate_sequence(seq, (9, 9, 9), SensorSpec(beams=16, columns=256), 3, 2)
    _cli("lidar", "detect", str(seq), "--run", str(lidar_run))
    summary = json.loads((seq / "predictions" / "summary.json").read_text())
    assert summary["scans"] == 3 and summary["motion_stream"] and summary["ego_motion"] == "poses"
    assert summary["warnings"] == []  # the sensor the student was trained on
    for i in range(3):
        n = len(kitti.read_scan(seq / "velodyne" / f"{i:06d}.bin"))
        with np.load(seq / "predictions" / f"{i:06d}.npz") as z:
            assert len(z["score"]) == len(z["flag"]) == len(z["two_stream_flag"]) == len(z["code"]) == n
            assert np.array_equal(z["flag"], (z["score"] >= summary["threshold_logit"]).astype(np.uint8))
    before = (seq / "predictions" / "summary.json").read_bytes()

    # a truncated scan: clear error naming the file, earlier predictions kept
    bad = tmp_path / "bad"
    shutil.copytree(seq, bad)
    (bad / "velodyne" / "000001.bin").write_bytes((bad / "velodyne" / "000001.bin").read_bytes()[:-3])
    proc = _cli("lidar", "detect", str(bad), "--run", str(lidar_run), check=False)
    assert proc.returncode != 0 and "not a multiple of 16" in proc.stderr and "000001.bin" in proc.stderr
    assert (bad / "predictions" / "summary.json").read_bytes() == before

    # a scan from another sensor in the sequence
    mixed = tmp_path / "mixed"
    shutil.copytree(seq, mixed)
    simulate_sequence(tmp_path / "other", (1, 2, 3), SensorSpec(beams=32, columns=256), 1, 0)
    shutil.copy(tmp_path / "other" / "velodyne" / "000000.bin", mixed / "velodyne" / "000001.bin")
    shutil.rmtree(mixed / "labels")
    proc = _cli("lidar", "detect", str(mixed), "--run", str(lidar_run), check=False)
    assert proc.returncode != 0 and "different beam counts" in proc.stderr

    # without poses the ego-motion comes from scan registration
    nopose = tmp_path / "nopose"
    shutil.copytree(seq, nopose)
    (nopose / "poses.txt").unlink()
    shutil.rmtree(nopose / "predictions")
    _cli("lidar", "detect", str(nopose), "--run", str(lidar_run))
    assert json.loads((nopose / "predictions" / "summary.json").read_text())["ego_motion"] == "registration"

    # a single scan: the supervised stream and the student only, said so
    single = tmp_path / "single"
    simulate_sequence(single, (4, 4, 4), SensorSpec(beams=16, columns=256), 1, 1)
    proc = _cli("lidar", "detect", str(single), "--run", str(lidar_run))
    s = json.loads((single / "predictions" / "summary.json").read_text())
    assert not s["motion_stream"] and s["two_stream_flagged"] == 0 and "no motion stream" in proc.stdout + proc.stderr

    # malformed poses (below), after sensors of other makes:
    badpose = tmp_path / "badpose"
    shutil.copytree(seq, badpose)
    (badpose / "poses.txt").write_text("1 0 0\n")
    proc = _cli("lidar", "detect", str(badpose), "--run", str(lidar_run), check=False)
    assert proc.returncode != 0 and "poses" in proc.stderr


#: a 16-beam sensor with uneven spacing that is none of the built-in tables (dense at the horizon)
UNEVEN_16 = (12.0, 7.5, 4.0, 2.0, 1.0, 0.3, -0.4, -1.1, -1.8, -2.6, -3.5, -4.6, -6.0, -8.0, -11.5, -17.0)


@pytest.mark.slow
@pytest.mark.parametrize("labels,poses", [(True, True), (False, False)])
def test_detect_on_a_sensor_of_unknown_make(lidar_run, tmp_path, labels, poses):
    """The reported refusal: a valid sequence whose elevation angles are no built-in table. The table is
    estimated from the scans, with or without labels and poses; the student runs as long as the beam count fits."""
    seq = tmp_path / "uneven"
    simulate_sequence(seq, (7, 7), SensorSpec(beams=16, columns=256, angles_deg=UNEVEN_16), 3, 2)
    if not labels:
        shutil.rmtree(seq / "labels")
    if not poses:
        (seq / "poses.txt").unlink()
    proc = _cli("lidar", "detect", str(seq), "--run", str(lidar_run))
    assert "beam table: estimated" in proc.stdout + proc.stderr
    summary = json.loads((seq / "predictions" / "summary.json").read_text())
    assert summary["scans"] == 3 and summary["beam_table"]["source"] == "estimated"
    np.testing.assert_allclose(summary["beam_table"]["angles_deg"], UNEVEN_16, atol=1e-3)
    assert summary["ego_motion"] == ("poses" if poses else "registration")
    assert "not validated for this sensor" in " ".join(summary["warnings"])  # trained on the uniform sim-16
    # the same table given as a sensor file gives the same predictions
    sensor = tmp_path / "sensor.toml"
    sensor.write_text(f"name = 'uneven'\nbeam_angles_deg = {list(UNEVEN_16)}\n")
    first = {p.name: p.read_bytes() for p in (seq / "predictions").glob("*.npz")}
    _cli("lidar", "detect", str(seq), "--run", str(lidar_run), "--sensor", str(sensor))
    assert json.loads((seq / "predictions" / "summary.json").read_text())["beam_table"]["name"] == "uneven"
    assert {p.name: p.read_bytes() for p in (seq / "predictions").glob("*.npz")} == first


@pytest.mark.slow
def test_detect_refuses_only_a_beam_count_the_student_cannot_take(lidar_run, tmp_path):
    from insitu.data.range_image import PRESETS

    seq = tmp_path / "vlp32c"
    simulate_sequence(seq, (8,), SensorSpec(beams=32, columns=256, angles_deg=PRESETS["vlp-32c"]), 2, 1)
    proc = _cli("lidar", "detect", str(seq), "--run", str(lidar_run), check=False)
    msg = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "32-beam sensor" in msg and "takes 16 beams" in msg
    assert "lidar.data.beams=32" in msg and not (seq / "predictions").exists()
    proc = _cli("lidar", "detect", str(seq), "--run", str(lidar_run), "--sensor", "vlp-16", check=False)
    assert proc.returncode == 2 and "does not fit the beam table 'vlp-16'" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_training_on_user_sequences_of_an_uneven_sensor(tmp_path):
    """`insitu run lidar --data ROOT` on SemanticKITTI-layout sequences of the uneven sensor: every sequence
    gets its estimated table, the run goes to a report with bit-exact C and RTL simulation."""
    root = tmp_path / "kitti"
    for k in range(3):
        simulate_sequence(root / "sequences" / f"{k:02d}", (k, 5), SensorSpec(beams=16, columns=256,
                                                                              angles_deg=UNEVEN_16), 6, 2)
    out = tmp_path / "run"
    _cli("run", "lidar", "--preset", "tiny", "--data", str(root), "--set", "firmware.enabled=false",
         "--set", "rtl.sim_vectors=20", "--out", str(out))
    data = json.loads((out / "lidar" / "data.json").read_text())
    assert set(data["tables"]) == {"00", "01", "02"}
    for t in data["tables"].values():
        assert t["source"] == "estimated"
        np.testing.assert_allclose(t["angles_deg"], UNEVEN_16, atol=1e-3)
    rep = json.loads((out / "report.json").read_text())
    assert rep["csim"]["vectors"] == rep["csim"]["bit_exact_vectors"] == 60
    assert rep["rtl"]["vectors"] == rep["rtl"]["bit_exact_vectors"] == 20
    assert "estimated" in (out / "report.md").read_text()

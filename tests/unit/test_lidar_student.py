"""Column features, the per-column student's export (IR reference == Brevitas), lidar presets, and the
contradiction codes of a hand-built two-scan example run through the real motion stream."""

import numpy as np
import pytest
import torch

from insitu.config import build_config
from insitu.config_lidar import ColumnStudentConfig
from insitu.distill.export import export_quantmodel, verify_against_brevitas
from insitu.errors import ConfigError
from insitu.data.range_image import sim_table
from insitu.lidar import column_student as cs
from insitu.lidar import contradiction
from insitu.lidar.motion import MotionParams, motion


def test_feature_image_codes_and_context_columns():
    pts = np.array([[10.0, 0.0, -1.0, 0.5], [0.0, 5.0, 0.0, 1.0]], np.float32)
    img, proj = cs.feature_image(pts, sim_table(16), 8)
    b0, c0 = proj.beam[0], proj.column[0]
    assert tuple(img[b0, c0]) == (40, 30, 128)  # 10 m / 0.25, (-1 + 2.5) / 0.05, 0.5 * 255 rounded half-even
    assert (img[proj.index < 0] == 0).all()
    cols = cs.columns_of(img, 1)
    assert cols.shape == (8, 16, 9)
    assert np.array_equal(cols[0, :, 3:6], img[:, 0]) and np.array_equal(cols[0, :, 0:3], img[:, 7])  # wraps


def test_column_student_export_matches_brevitas():
    cfg = ColumnStudentConfig(context=1, hidden=6, weight_bits=4, act_bits=4)
    torch.manual_seed(0)
    model = cs.build(cfg, 16, quantized=True)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (300, 16, cs.input_width(cfg)), dtype=np.uint8)
    model.train()
    with torch.no_grad():
        for i in range(0, 300, 100):  # calibrate the activation scales
            model(torch.from_numpy(x[i:i + 100]).float().unsqueeze(1) / 256)
    qm = export_quantmodel(model.eval(), (16, cs.input_width(cfg)), cs.beam_names(16))
    assert [l.kind for l in qm.layers] == ["input", "flatten", "dense", "requant", "dense"]
    assert qm.input.shape == (1, 16, 9) and qm.n_params() == 16 * 9 * 6 + 6 + 6 * 16 + 16
    check = verify_against_brevitas(qm, model, x)
    assert check == {"vectors": 300, "bit_exact_vectors": 300}


def test_lidar_presets_and_apps():
    tiny = build_config("tiny", app="lidar")
    assert tiny.app == "lidar" and tiny.lidar.data.beams == 16 and tiny.rtl.architecture == "unrolled"
    assert build_config("default", app="lidar").lidar.data.beams == 32
    with pytest.raises(ConfigError, match="unknown application"):
        build_config("default", app="radar")
    with pytest.raises(ConfigError, match="lidar.data.beams"):
        build_config("default", {"lidar": {"data": {"beams": 300}}}, app="lidar")
    with pytest.raises(ConfigError, match="beam_angles_deg lists 3 angles but beams=20"):
        build_config("default", {"lidar": {"data": {"beams": 20, "beam_angles_deg": [1, 0, -1]}}}, app="lidar")
    assert build_config("default", {"lidar": {"data": {"beams": 20}}}, app="lidar").lidar.data.beams == 20
    assert build_config("default", {"lidar": {"data": {"beams": 64}}}, app="lidar").lidar.data.beams == 64


def _box(center, size, step=0.12):
    g = [np.arange(-s / 2, s / 2 + 1e-9, step) for s in size]
    xs, ys, zs = np.meshgrid(*g, indexing="ij")
    return np.column_stack([xs.ravel(), ys.ravel(), zs.ravel()]) + center


def test_two_scan_example_codes_and_failure_cluster():
    """A 'deer' crossing (moving, but the supervised stream calls it static) and a parked car the supervised
    stream wrongly calls dynamic: codes 2 and 3, both clustered as failures; the wall agrees (code 0)."""
    wall = _box([15, 0, 0.5], [0.3, 6, 3])
    parked = _box([8, 5, -0.6], [4, 1.8, 1.2])
    deer_prev, deer_cur = _box([9, -3.3, -0.8], [1.2, 0.5, 0.9]), _box([9, -3.0, -0.8], [1.2, 0.5, 0.9])
    ground = np.column_stack([g.ravel() for g in np.meshgrid(np.arange(-20, 20, 0.4), np.arange(-20, 20, 0.4))]
                             + [np.full(10000, -1.7)])
    prev = np.vstack([wall, parked, deer_prev, ground])
    cur = np.vstack([wall, parked, deer_cur, ground])
    m = motion(cur, prev, MotionParams(max_range_m=25))
    sup = np.zeros(len(cur), bool)
    sup[len(wall):len(wall) + len(parked)] = True  # the supervised stream's mistake on the parked car
    codes = contradiction.codes(sup, m.dynamic)[:-len(ground)]
    cur = cur[:-len(ground)]
    assert not m.considered[-len(ground):].any()
    w, p = len(wall), len(parked)
    assert (codes[:w] == contradiction.BOTH_STATIC).all()
    assert (codes[w:w + p] == contradiction.ONLY_SUPERVISED).all()
    assert (codes[w + p:] == contradiction.ONLY_SELF_SUPERVISED).mean() > 0.9
    flags = contradiction.failure_flags(cur, codes)
    assert not flags[:w].any() and flags[w:].mean() > 0.9


def test_metrics_on_a_known_example():
    from insitu.lidar import metrics

    truth = np.array([0, 0, 0, 0, 1, 1, 2, 0])
    flag = np.array([0, 1, 0, 0, 1, 0, 1, 0], bool)
    b = metrics.binary(flag, truth > 0)
    assert (b["tp"], b["fp"], b["fn"], b["tn"]) == (2 / 8, 1 / 8, 1 / 8, 4 / 8) and b["iou"] == 0.5
    score = np.array([0.1, 0.2, 0.3, 0.4, 0.9, 0.8, 0.35, 0.0])
    s = metrics.scores(score, truth > 0)
    assert s["auroc"] == pytest.approx(14 / 15) and s["fpr95"] == pytest.approx(1 / 5)
    cat = metrics.per_category(truth, flag, score)
    assert cat["animal"] == {"points": 2, "recall": 0.5, "auroc": 1.0}
    assert cat["lost_cargo"]["recall"] == 1.0 and cat["lost_cargo"]["auroc"] == pytest.approx(4 / 5)
    assert metrics.best_f1_threshold(score, truth > 0) == pytest.approx(0.35)

"""The FINN handoff end to end: a tiny student trained with round-half-up activations, bit-exact through every
backend, handed to FINN; a half-to-even student and a Lattice board are refused with the fix."""

import json
import shutil

import numpy as np
import onnx
import pytest

from insitu.ir import reference
from insitu.ir.model import QuantModel
from insitu.sim.vectors import load_vectors

from .cli import cli, tiny_cells


@pytest.fixture(scope="module")
def half_up_run(tmp_path_factory):
    return tiny_cells(tmp_path_factory, "finn", "student.act_rounding=half_up", "firmware.enabled=false")


@pytest.mark.slow
def test_a_half_up_student_is_bit_exact_in_every_backend_and_its_ties_matter(half_up_run, tmp_path):
    report = json.loads((half_up_run / "report.json").read_text())
    n = report["dataset"]["sizes"]["test"]
    assert report["csim"]["bit_exact_vectors"] == report["csim"]["vectors"] == n
    assert report["rtl"]["bit_exact_vectors"] == report["rtl"]["vectors"] > 0
    assert report["reference"]["qonnx"] == {"vectors": n, "bit_exact_vectors": n}
    types = json.loads((half_up_run / "export" / "check.json").read_text())["tensor_types"]
    assert any("AP_RND," in t for t in types) and not any("AP_RND_CONV" in t for t in types)
    # the same weights rounding half to even give other scores: the test set has ties, the checks see them
    even = tmp_path / "even"
    shutil.copytree(half_up_run / "export", even)
    doc = (even / "quantmodel.json").read_text()
    (even / "quantmodel.json").write_text(doc.replace('"RND"', '"RND_CONV"'))
    v = load_vectors(half_up_run / "export" / "vectors.npz")
    assert np.any(reference.run(QuantModel.load(even), v.images) != v.expected)


@pytest.mark.slow
def test_export_finn_writes_a_bundle_bit_exact_against_the_reference(half_up_run):
    proc = cli("export", "--out", str(half_up_run), "--finn", "--board", "zcu102", "--clock-mhz", "200")
    assert "model.onnx 120/120, threshold form 120/120" in proc.stdout + proc.stderr
    finn = half_up_run / "finn"
    cfg = json.loads((finn / "dataflow_build_config.json").read_text())
    assert cfg["board"] == "ZCU102" and cfg["synth_clk_period_ns"] == 5.0
    assert cfg["target_fps"] == int(200e6 * 2 / (24 * 24))  # the tiny preset's 2 lanes
    assert cfg["verify_input_npy"] == "input.npy" and "stitched_ip_rtlsim" in cfg["verify_steps"]
    v = load_vectors(half_up_run / "export" / "vectors.npz")
    x, y = np.load(finn / "input.npy"), np.load(finn / "expected_output.npy")
    assert x.shape == (1, 1, 24, 24) and np.array_equal(x[0, 0], v.images[0])
    assert np.array_equal(y[0], v.expected[0] * 2.0**-v.output_frac)
    model = onnx.load(finn / "model.onnx")
    quants = [n for n in model.graph.node if n.op_type == "Quant"]
    acts = [n for n in quants if n.input[0] not in {i.name for i in model.graph.initializer}]
    assert acts and all(a.s == b"HALF_UP" for n in acts for a in n.attribute if a.name == "rounding_mode")
    assert model.graph.node[0].op_type == "Mul"  # the input quantizer became its scale: integer inputs
    summary = json.loads((finn / "finn.json").read_text())
    assert summary["checked_here"]["threshold form"] == {"vectors": 120, "bit_exact_vectors": 120}
    readme = (finn / "README.md").read_text()
    assert "Not checked by insitu" in readme and "build_dataflow" in readme
    # a user's own QONNX import reads HALF_UP as the IR's round half up, and computes the same scores
    from insitu.api import from_qonnx

    qm = from_qonnx(half_up_run / "export" / "student.qonnx.onnx")
    assert np.array_equal(reference.run(qm, v.images), v.expected)


@pytest.mark.slow
def test_export_finn_refuses_a_lattice_board_and_loses_nothing(half_up_run):
    proc = cli("export", "--out", str(half_up_run), "--finn", check=False)
    assert proc.returncode == 2 and "FINN builds for AMD devices" in proc.stderr and "--board zcu102" in proc.stderr
    assert (half_up_run / "export" / "student.qonnx.onnx").exists()

"""QONNX frontend: Brevitas models through both exporters, bit for bit against qonnx's executor and Brevitas."""

import numpy as np
import pytest
import torch
from qonnx.custom_op.general.intquant import int_quant

import insitu
from insitu.config import StudentConfig
from insitu.distill.export import export_qonnx, export_quantmodel
from insitu.frontends.execute import input_quant, reference_outputs, run_qonnx
from insitu.frontends.inputs import InputQuant
from insitu.ir import reference
from tests.unit.brevitas_models import CNN, MLP, calibrated


def _brevitas(model, x):
    with torch.no_grad():
        y = model(torch.from_numpy(x.astype(np.float32)))
    return getattr(y, "value", y).numpy().astype(np.float64).reshape(len(x), -1)


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("make,shape,signed", [(MLP, (12,), True), (CNN, (1, 16, 16), False)], ids=["mlp", "cnn"])
def test_brevitas_models_bit_exact(tmp_path, make, shape, signed, dynamo):
    model = calibrated(make(), shape, signed=signed)
    path = tmp_path / "m" / "model.onnx"
    qm = insitu.from_brevitas(model, shape, path=path, dynamo=dynamo)
    x = input_quant(qm).random(300, shape, 3)
    _, ref = reference_outputs(qm, x)
    y = ref.reshape(len(x), -1) * 2.0 ** -qm.output_type.frac
    assert np.array_equal(y, run_qonnx(path, x))
    assert np.array_equal(y, _brevitas(model, x))
    assert len(np.unique(ref, axis=0)) > 50  # not a model with constant outputs
    kinds = {l.kind for l in qm.layers}
    if make is CNN:
        assert {"conv2d", "maxpool2d", "avgpool2d", "add", "globalavgpool", "dense"} <= kinds
        assert any(getattr(l, "groups", 1) > 1 for l in qm.layers)
        assert any(getattr(l, "stride", (1, 1)) == (2, 2) for l in qm.layers)


def test_cells_student_imports_to_the_same_ir(tmp_path, calibrated):
    """insitu's own student: its QONNX file imports to an IR computing exactly what the direct exporter's does."""
    m = calibrated(StudentConfig(channels=[6, 5], weight_bits=5, act_bits=4))
    own = export_quantmodel(m, 20, ["a", "b", "c"])
    path = export_qonnx(m, 20, tmp_path / "student.onnx")
    qm = insitu.from_qonnx(path, ["a", "b", "c"])
    images = np.random.default_rng(2).integers(0, 256, (200, 20, 20))
    x = images[:, None] / 256.0
    codes, ref = reference_outputs(qm, x)
    assert np.array_equal(codes[:, 0], images)
    assert np.array_equal(ref, reference.run(own, images))
    assert qm.n_params() == own.n_params()


QONNX_MODES = ("ROUND", "HALF_EVEN", "FLOOR", "CEIL", "DOWN", "UP", "HALF_UP", "HALF_DOWN")


def test_ap_fixed_rounding_names():
    """The names HGQ2 uses: RND = floor(x + 1/2), RND_CONV = half to even, TRN = floor; WRAP keeps the low bits."""
    x = (np.arange(-40, 41) * 0.25)[:, None]
    for mode, want in (("RND", np.floor(x * 2 + 0.5)), ("RND_CONV", np.round(x * 2)), ("TRN", np.floor(x * 2))):
        assert np.array_equal(InputQuant(1, 8, True, False, mode).codes(x), want.astype(np.int64))
    wrap = InputQuant(0, 4, True, False, "TRN", wrap=True).codes(np.array([[7.0], [8.0], [9.5], [-9.0]]))
    assert wrap.ravel().tolist() == [7, -8, -7, 7]


@pytest.mark.parametrize("mode", QONNX_MODES)
@pytest.mark.parametrize("signed,narrow", [(True, False), (False, False), (True, True), (False, True)])
def test_input_quantizer_is_qonnx(mode, signed, narrow):
    q = InputQuant(5, 6, signed, narrow, mode)
    x = q.random(4000, (3,), 0)
    x[:50, 0] = (np.arange(50) - 25) * 2.0 ** -6  # every half code: the ties of each rounding mode
    want = int_quant(x.astype(np.float32), np.float32(2.0 ** -5), np.float32(0), np.float32(6), signed, narrow, mode)
    assert np.array_equal(q.values(q.codes(x)), want.astype(np.float64))
    codes = q.codes(x)
    assert codes.min() == q.min_int and codes.max() == q.max_int  # random inputs cover the whole range

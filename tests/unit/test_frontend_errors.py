"""Every way a user's model or inputs can be wrong gets an error naming the problem and the fix."""

import brevitas.nn as qnn
import numpy as np
import onnx
import pytest
from brevitas.quant import Int8WeightPerTensorFloat, Int32Bias
from torch import nn

import insitu
from insitu.api import _export_brevitas
from insitu.errors import DataError, ModelImportError
from insitu.frontends.inputs import check_inputs, load_inputs
from tests.unit.brevitas_models import MLP, _s, _w, calibrated


def _export(tmp_path, model, shape, dynamo=False):
    return _export_brevitas(calibrated(model, shape, signed=True), shape, tmp_path / "m.onnx", dynamo)


def test_not_a_model(tmp_path):
    bad = tmp_path / "notes.onnx"
    bad.write_text("this is not a model\n" * 20)
    with pytest.raises(ModelImportError, match="not an ONNX model"):
        insitu.from_qonnx(bad)
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(ModelImportError, match="is empty"):
        insitu.from_qonnx(tmp_path / "empty.onnx")
    with pytest.raises(ModelImportError, match="does not exist"):
        insitu.from_qonnx(tmp_path / "missing.onnx")


def test_truncated_and_missing_external_data(tmp_path):
    path = _export(tmp_path, MLP(), (12,))
    ext = tmp_path / "ext.onnx"  # the same model with every weight in an external file
    onnx.save_model(onnx.load(str(path)), str(ext), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="ext.onnx.data", size_threshold=0)
    a, b = insitu.from_qonnx(path), insitu.from_qonnx(ext)
    assert [l.name for l in a.layers] == [l.name for l in b.layers] and a.n_params() == b.n_params()
    data = tmp_path / "ext.onnx.data"
    blob = data.read_bytes()
    data.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ModelImportError, match="external weights"):
        insitu.from_qonnx(ext)
    data.unlink()
    with pytest.raises(ModelImportError, match="external file that is missing: ext.onnx.data"):
        insitu.from_qonnx(ext)
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(ModelImportError, match="truncated|no graph"):
        insitu.from_qonnx(cut)


class _Sigmoid(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=_s(8), return_quant_tensor=True)
        self.fc = qnn.QuantLinear(4, 2, bias=True, weight_quant=_w(6), bias_quant=Int32Bias)

    def forward(self, x):
        return nn.functional.sigmoid(self.fc(self.inp(x)))


class _FloatScale(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=_s(8), return_quant_tensor=True)
        self.fc = qnn.QuantLinear(4, 2, bias=False, weight_quant=Int8WeightPerTensorFloat)

    def forward(self, x):
        return self.fc(self.inp(x))


class _NoInputQuant(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = qnn.QuantLinear(4, 2, bias=False, weight_quant=_w(6))

    def forward(self, x):
        return self.fc(x)


@pytest.mark.parametrize("model,match", [
    (_Sigmoid, r"\(Sigmoid\): op type 'Sigmoid' is not supported"),
    (_FloatScale, r"is not a power of two"),
    (_NoInputQuant, r"without a quantizer"),
])
def test_unsupported_is_named(tmp_path, model, match):
    path = _export(tmp_path, model(), (4,))
    with pytest.raises(ModelImportError, match=match) as err:
        insitu.from_qonnx(path)
    assert err.value.fix  # every refusal says what to do


def test_asymmetric_zero_point_is_refused(tmp_path):
    path = _export(tmp_path, MLP(), (12,))
    m = onnx.load(str(path))
    quant = next(n for n in m.graph.node if n.op_type == "Quant")
    zp = next(t for t in m.graph.initializer if t.name == quant.input[2])
    zp.CopyFrom(onnx.numpy_helper.from_array(np.asarray(3.0, np.float32), zp.name))
    onnx.save(m, str(path))
    with pytest.raises(ModelImportError, match="zero point"):
        insitu.from_qonnx(path)


def test_bad_inputs(tmp_path):
    with pytest.raises(DataError, match=r"shape \(5, 3\), the model takes \(N, 12\)"):
        check_inputs(np.zeros((5, 3)), (12,), "x.npz")
    x = np.zeros((4, 12))
    x[2, 7] = np.nan
    with pytest.raises(DataError, match=r"input 2 holds a NaN or infinite value \(at \(7,\)\)"):
        check_inputs(x, (12,), "x.npz")
    with pytest.raises(DataError, match="not numbers"):
        check_inputs(np.array([["a"] * 12]), (12,), "x.npz")
    np.savez(tmp_path / "wrong.npz", images=np.zeros((2, 12)))
    with pytest.raises(DataError, match="no array named 'x'"):
        load_inputs(tmp_path / "wrong.npz", (12,))
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DataError, match="cannot read inputs"):
        load_inputs(tmp_path / "junk.npz", (12,))


def test_qkeras_without_its_environment(tmp_path, monkeypatch):
    from insitu.frontends.qkeras import qkeras_python

    monkeypatch.setenv("INSITU_QKERAS_PYTHON", str(tmp_path / "nothing" / "python"))
    with pytest.raises(ModelImportError, match="QKeras environment, which is not installed") as err:
        qkeras_python()
    assert "make qkeras" in err.value.fix
    (tmp_path / "m.h5").write_bytes(b"not hdf5 at all")
    from insitu.frontends import detect_format

    fe = detect_format(tmp_path / "m.h5")
    with pytest.raises(ModelImportError, match="not an HDF5 file"):
        fe.files(tmp_path / "m.h5")
    import json

    import h5py

    with h5py.File(tmp_path / "lam.h5", "w") as f:  # a Keras 2 model file whose layer would run stored code
        f.attrs["model_config"] = json.dumps({"class_name": "Functional", "config": {"layers": [
            {"class_name": "InputLayer"}, {"class_name": "Lambda", "config": {"function": "..."}}]}})
    with pytest.raises(ModelImportError, match="holds a Lambda layer"):
        fe.files(tmp_path / "lam.h5")

"""HGQ2 models (Keras 3, torch backend) through `insitu compile`: checked against Keras' own forward pass, then
bit-exact C simulation and RTL; heterogeneous activation quantizers are refused by name."""

import json
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import insitu  # noqa: E402
from insitu.errors import ModelImportError  # noqa: E402
from insitu.frontends import detect_format  # noqa: E402
from tests.integration.cli import cli  # noqa: E402
from tests.unit.hgq2_models import cnn, mlp  # noqa: E402


@pytest.mark.slow
def test_hgq2_cnn_cli(tmp_path):
    path = tmp_path / "cnn.keras"
    cnn().save(path)
    x = np.random.default_rng(2).normal(0, 2, (100, 8, 8, 1))  # channels-last; values beyond the input's range
    np.savez(tmp_path / "x.npz", x=x)
    proc = cli("compile", str(path), "--out", str(tmp_path / "run"), "--inputs", str(tmp_path / "x.npz"))
    assert "C simulation: 100 / 100 bit-exact" in proc.stderr and "RTL simulation: 100 / 100 bit-exact" in proc.stderr
    rep = json.loads((tmp_path / "run" / "report.json").read_text())
    assert rep["import"]["format"] == "hgq2" and rep["import"]["input_quant"]["rounding_mode"] == "RND"
    assert rep["rtl"]["architecture"] == "streaming"


@pytest.mark.slow
def test_hgq2_mlp_api(tmp_path):
    path = tmp_path / "mlp.keras"
    mlp().save(path)
    qm = insitu.from_keras(path)
    assert [l.kind for l in qm.layers] == ["input", "dense", "requant", "dense", "requant", "dense"]
    rep = insitu.compile(qm, out=tmp_path / "run", sets=["compile.n_random=300"])
    (name, r), = rep["reference"]["against"].items()
    assert name.startswith("Keras 3 forward pass") and r["bit_exact_vectors"] == 300
    assert rep["csim"]["bit_exact_vectors"] == rep["rtl"]["bit_exact_vectors"] == 300


def test_heterogeneous_activations_are_refused(tmp_path):
    from hgq.layers import QDense
    import keras

    x = keras.Input((6,))
    m = keras.Model(x, QDense(2)(QDense(4, activation="relu")(x)))  # HGQ2's default: per-element quantizers
    q = m.layers[2].iq.quantizer
    f = np.asarray(keras.ops.convert_to_numpy(q._f)).copy()
    f.flat[1] += 2  # as training leaves them: one feature with more fractional bits
    q._f.assign(f)
    m.save(tmp_path / "het.keras")
    with pytest.raises(ModelImportError, match=r"input quantizer is heterogeneous \(f takes the values"):
        detect_format(tmp_path / "het.keras").load(tmp_path / "het.keras", None)
    (tmp_path / "bad.keras").write_bytes(b"not a zip")
    with pytest.raises(ModelImportError, match="not a Keras 3 model archive"):
        detect_format(tmp_path / "bad.keras").files(tmp_path / "bad.keras")

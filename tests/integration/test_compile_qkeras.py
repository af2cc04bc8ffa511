"""QKeras models through `insitu compile`: imported in the QKeras environment, checked against QKeras' predict,
then bit-exact C simulation and RTL. Skipped (with the reason) where `make qkeras` has not been run."""

import json
import os
import subprocess

import numpy as np
import pytest

from insitu.errors import ModelImportError
from tests.integration.cli import cli

try:
    from insitu.frontends.qkeras import qkeras_python

    QK = qkeras_python()
except ModelImportError:
    QK = None
pytestmark = pytest.mark.skipif(QK is None, reason="the QKeras environment is missing: run `make qkeras`")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    out = tmp_path_factory.mktemp("qkeras")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([str(QK), "tests/qkeras/make_models.py", str(out)], check=True, capture_output=True, timeout=600,
                   env=env)
    return out


@pytest.mark.slow
def test_qkeras_cnn_cli(tmp_path, models):
    x = np.random.default_rng(1).random((120, 12, 12, 1))  # channels-last, as Keras takes it
    np.savez(tmp_path / "x.npz", x=x)
    out = tmp_path / "run"
    proc = cli("compile", str(models / "cnn.h5"), "--out", str(out), "--inputs", str(tmp_path / "x.npz"))
    assert "C simulation: 120 / 120 bit-exact" in proc.stderr and "RTL simulation: 120 / 120 bit-exact" in proc.stderr
    rep = json.loads((out / "report.json").read_text())
    assert rep["import"]["format"] == "qkeras" and rep["import"]["input_shape"] == [12, 12, 1]
    assert rep["import"]["ir_input_shape"] == [1, 12, 12]
    (name, r), = rep["reference"]["against"].items()
    assert name.startswith("QKeras predict") and r["bit_exact_vectors"] == 120
    kinds = rep["import"]["layer_kinds"]
    assert kinds["conv2d"] == 4 and kinds["add"] == 1 and kinds["dense"] == 1 and rep["rtl"]["architecture"] == "streaming"


@pytest.mark.slow
def test_qkeras_mlp_api_and_errors(tmp_path, models):
    import insitu

    rep = insitu.compile(models / "mlp.h5", out=tmp_path / "run", sets=["compile.n_random=300"])
    assert rep["reference"]["bit_exact_vectors"] == rep["csim"]["bit_exact_vectors"] == 300
    assert rep["rtl"]["bit_exact_vectors"] == 300 and rep["rtl"]["architecture"] == "unrolled"
    bad = cli("compile", str(models / "bn.h5"), "--out", str(tmp_path / "bn"), check=False)
    assert bad.returncode == 2 and "(BatchNormalization): layer class BatchNormalization is not supported" in bad.stderr
    cut = tmp_path / "cut.h5"
    cut.write_bytes((models / "mlp.h5").read_bytes()[:4000])
    r = cli("compile", str(cut), "--out", str(tmp_path / "cut"), check=False)
    assert r.returncode == 2 and "as HDF5" in r.stderr and "truncated" in r.stderr


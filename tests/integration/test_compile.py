"""`insitu compile`: a user's Brevitas / QONNX model to bit-exact C simulation and RTL, through the CLI and the API."""

import json

import numpy as np
import pytest

import insitu
from insitu.api import _export_brevitas, compile_config
from insitu.errors import MismatchError
from insitu.frontends import FRONTENDS
from insitu.pipeline import run_steps
from insitu.rundir import RunDir
from insitu.steps import COMPILE_STEPS
from tests.integration.cli import cli
from tests.unit.brevitas_models import CNN, MLP, calibrated


@pytest.fixture(scope="module")
def cnn_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cnn") / "cnn.onnx"
    return _export_brevitas(calibrated(CNN(), (1, 16, 16)), (1, 16, 16), path, True)


@pytest.mark.slow
def test_compile_cnn_cli(tmp_path, cnn_file):
    x = np.random.default_rng(0).random((150, 1, 16, 16))
    np.savez(tmp_path / "x.npz", x=x)
    out = tmp_path / "run"
    proc = cli("compile", str(cnn_file), "--out", str(out), "--inputs", str(tmp_path / "x.npz"), "--lanes", "2")
    assert "C simulation: 150 / 150 bit-exact" in proc.stderr and "RTL simulation: 150 / 150 bit-exact" in proc.stderr
    rep = json.loads((out / "report.json").read_text())
    assert rep["import"]["format"] == "qonnx" and rep["import"]["input_shape"] == [1, 16, 16]
    assert rep["import"]["params"] > 500 and rep["import"]["layers"] >= 12
    assert rep["reference"]["vectors"] == rep["reference"]["bit_exact_vectors"] == 150
    assert rep["csim"]["bit_exact_vectors"] == rep["rtl"]["bit_exact_vectors"] == 150
    for key in ("latency_cycles_first_to_valid", "latency_cycles_last_to_valid", "ii_cycles"):
        assert rep["rtl"][key] > 0
    with np.load(out / "export" / "vectors.npz") as z:
        assert np.array_equal(z["x"], x) and z["y"].dtype == np.float64 and z["images"].dtype == np.uint8
    assert (out / "source" / "cnn.onnx").exists() and "Every stage is bit-exact" in (out / "report.md").read_text()
    again = cli("compile", str(cnn_file), "--out", str(out), "--inputs", str(tmp_path / "x.npz"), "--lanes", "2")
    assert again.stderr.count("up to date") >= 6  # resumed: nothing re-run
    # bad inputs later: a clear error, and the finished run is untouched
    np.savez(tmp_path / "bad.npz", x=np.zeros((3, 16, 16, 1)))
    bad = cli("compile", str(cnn_file), "--out", str(out), "--inputs", str(tmp_path / "bad.npz"), check=False)
    assert bad.returncode != 0 and "the model takes (N, 1, 16, 16)" in bad.stderr
    assert json.loads((out / "report.json").read_text()) == rep


@pytest.mark.slow
def test_compile_brevitas_module_api(tmp_path):
    """A module straight from Python: checked against qonnx's executor and the module's own forward pass; an MLP
    goes to the unrolled core, with a bitstream for the ULX3S."""
    model = calibrated(MLP(), (12,), signed=True)
    rep = insitu.compile(model, out=tmp_path / "run", input_shape=(12,), board="ulx3s-85f")
    against = rep["reference"]["against"]
    assert set(against) == {FRONTENDS["qonnx"].executor, "Brevitas forward (float32)"}
    assert all(r["bit_exact_vectors"] == r["vectors"] == 512 for r in against.values())
    assert rep["rtl"]["architecture"] == "unrolled" and rep["rtl"]["bit_exact_vectors"] == 512
    assert rep["impl"]["bitstream"] and rep["impl"]["timing_met"]
    assert rep["shell_sim"]["exact_answers"] == rep["shell_sim"]["images"] > 0
    assert rep["latency_us"]["clock"] == "bitstream" and rep["latency_us"]["first_pixel_to_decision"] > 0


@pytest.mark.slow
def test_compile_errors_cli(tmp_path, cnn_file):
    (tmp_path / "notes.onnx").write_text("not a model")
    r = cli("compile", str(tmp_path / "notes.onnx"), "--out", str(tmp_path / "a"), check=False)
    assert r.returncode == 2 and "is not an ONNX model or is truncated" in r.stderr and "fix:" in r.stderr
    r = cli("compile", str(tmp_path / "model.txt"), "--out", str(tmp_path / "b"), check=False)
    assert r.returncode == 2 and "cannot tell the format" in r.stderr
    x = np.full((4, 1, 16, 16), 0.5)
    x[1, 0, 3, 3] = np.inf
    np.savez(tmp_path / "inf.npz", x=x)
    r = cli("compile", str(cnn_file), "--out", str(tmp_path / "c"), "--inputs", str(tmp_path / "inf.npz"), check=False)
    assert r.returncode == 2 and "input 1 holds a NaN or infinite value" in r.stderr
    r = cli("compile", str(cnn_file), "--out", str(tmp_path / "d"), "--set", "compile.n_random=0", check=False)
    assert r.returncode == 2 and "compile.n_random" in r.stderr
    from tests.unit.test_frontend_errors import _FloatScale, _Sigmoid

    for model, want in ((_Sigmoid, "(Sigmoid): op type 'Sigmoid' is not supported"),
                        (_FloatScale, "is not a power of two")):
        path = _export_brevitas(calibrated(model(), (4,), signed=True), (4,), tmp_path / model.__name__ / "m.onnx",
                                False)
        r = cli("compile", str(path), "--out", str(tmp_path / f"run-{model.__name__}"), check=False)
        assert r.returncode == 2 and want in r.stderr and "fix:" in r.stderr
    ext = tmp_path / "ext" / "m.onnx"
    ext.parent.mkdir()
    import onnx

    onnx.save_model(onnx.load(str(cnn_file)), str(ext), save_as_external_data=True, location="m.onnx.data",
                    size_threshold=0)
    (ext.parent / "m.onnx.data").unlink()
    r = cli("compile", str(ext), "--out", str(tmp_path / "e"), check=False)
    assert r.returncode == 2 and "external file that is missing: m.onnx.data" in r.stderr


def test_a_mismatch_fails_with_both_sides(tmp_path, cnn_file, monkeypatch):
    """Any difference from the source framework stops the run before the backends and prints both sides."""
    fe = FRONTENDS["qonnx"]
    real = fe.execute

    def off_by_one_ulp(path, x):
        y = real(path, x)
        y[3, 1] += 2.0 ** -20
        return y

    monkeypatch.setitem(FRONTENDS, "qonnx", type(fe)(**{**fe.__dict__, "execute": off_by_one_ulp}))
    cfg = compile_config(cnn_file, None, None, None, ["compile.n_random=20"])
    with pytest.raises(MismatchError, match=r"differs from qonnx executor .* on 1 of 20 inputs:\n  sample 3: "
                                            r"reference \[.*\] vs qonnx executor"):
        run_steps(COMPILE_STEPS, cfg, RunDir(tmp_path / "run"))
    assert (tmp_path / "run" / "export" / "quantmodel.json").exists()  # the import is kept
    assert not (tmp_path / "run" / "hls").exists()

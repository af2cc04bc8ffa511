"""Step `export`: the QAT student -> QuantModel IR + QONNX; the IR reference must equal Brevitas on the
whole test set; the shared test vectors (test images and reference outputs) for every backend."""

from __future__ import annotations

import logging

from insitu.config import RunConfig
from insitu.distill.export import export_qonnx, export_quantmodel, verify_against_brevitas, verify_qonnx
from insitu.ir import reference
from insitu.pipeline import StepResult
from insitu.rundir import RunDir, atomic_write_json
from insitu.sim.vectors import save_vectors
from insitu.steps import data as data_step
from insitu.steps.distill import load_student

log = logging.getLogger(__name__)


def run(cfg: RunConfig, run: RunDir) -> StepResult:
    data = data_step.load(run)
    student = load_student(run, cfg, "kd")
    qm = export_quantmodel(student, data.image_size, data.class_names)
    ref = reference.run(qm, data.test_x)
    check = verify_against_brevitas(qm, student, data.test_x, ref)  # raises on any mismatch
    folder = run.path("export")
    outputs = qm.save(folder)
    outputs.append(save_vectors(folder / "vectors.npz", data.test_x, data.test_y, ref, qm.output_type.frac))
    try:
        qonnx_path = export_qonnx(student, data.image_size, folder / "student.qonnx.onnx")
    except Exception as exc:  # QONNX is a by-product: the IR is the contract, so report and carry on
        log.warning("QONNX export failed (%s: %s); the QuantModel IR is unaffected", type(exc).__name__, exc)
        qonnx: dict | str = f"failed: {type(exc).__name__}: {exc}"
    else:
        outputs.append(qonnx_path)
        qonnx = verify_qonnx(qonnx_path, data.test_x, ref, qm.output_type.frac)  # raises on any mismatch
    accuracy = float((ref.argmax(1) == data.test_y).mean())
    summary = {"reference_vs_brevitas": check, "params": qm.n_params(), "reference_accuracy": accuracy,
               "tensor_types": [t.hls() for t in qm.tensor_types()], "qonnx": qonnx}
    atomic_write_json(folder / "check.json", summary)
    outputs.append(folder / "check.json")
    return StepResult(outputs, summary)

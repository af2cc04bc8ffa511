"""The source framework's own execution of a model, for the proof that the IR reference equals it.

`run_qonnx` is qonnx's executor (its Quant / Trunc in numpy, the standard ops in onnxruntime) on float32 inputs
as a user's deployment would feed them. `reference_real` is the IR reference on the same inputs, through the
model's input quantizer, in the model's own units (float64, exact).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from insitu.errors import ModelImportError
from insitu.frontends.inputs import InputQuant
from insitu.ir import reference
from insitu.ir.model import QuantModel


def input_quant(qm: QuantModel) -> InputQuant:
    d = qm.meta.get("input_quant")
    if not d:
        raise ModelImportError("the model carries no input quantizer (meta.input_quant)",
                               "import it with insitu.from_qonnx / from_keras, which record it")
    return InputQuant.from_dict(d)


def reference_outputs(qm: QuantModel, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(integer input codes, integer reference outputs) of float inputs x."""
    codes = input_quant(qm).codes(x)
    return codes, reference.run(qm, codes)


def run_qonnx(path: Path, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """qonnx's execution of the file on inputs x (cast to float32), as float64, flattened per sample."""
    from insitu.frontends.onnx_file import load_qonnx

    return run_model(load_qonnx(Path(path)), x, batch, str(path))


def run_model(base, x: np.ndarray, batch: int = 256, what: str = "the model") -> np.ndarray:
    """qonnx's execution of a loaded model (a ModelWrapper) on inputs x, as float64, flattened per sample."""
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes

    iname, oname = base.graph.input[0].name, base.graph.output[0].name
    sized: dict[int, object] = {}
    outs = []
    for i in range(0, len(x), batch):
        xb = np.ascontiguousarray(x[i:i + batch], dtype=np.float32)
        if len(xb) not in sized:
            sized[len(xb)] = base.transform(ChangeBatchSize(len(xb))).transform(InferShapes())
        try:
            res = execute_onnx(sized[len(xb)], {iname: xb})[oname]
        except Exception as exc:  # noqa: BLE001 - the executor raises many kinds
            raise ModelImportError(f"qonnx's executor failed on {what}: {type(exc).__name__}: {exc}",
                                   "check that the model runs in qonnx (qonnx.core.onnx_exec.execute_onnx)") from None
        outs.append(np.asarray(res, dtype=np.float64).reshape(len(xb), -1))
    return np.concatenate(outs)

"""Brevitas student -> QuantModel IR (and QONNX), with the proof that the IR reference equals Brevitas.

The exporter walks the student's modules in order and reads, in eval mode, the integer weights, the
integer biases and the power-of-two scale of every tensor from Brevitas itself (one probe forward pass
with hooks). Convolutions may be strided, zero-padded and rectangular. Anything it cannot describe exactly
(non-power-of-two scales, dilation, groups, unknown layers) is an `ExportError` naming the layer and the fix.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

import brevitas.nn as qnn
import numpy as np
import torch
from torch import nn

from insitu.distill import brevitas_layers
from insitu.errors import ExportError, MismatchError
from insitu.ir import reference
from insitu.ir.fixed import FixedType
from insitu.ir.model import Input, QuantModel
from insitu.sim.compare import first_mismatches

log = logging.getLogger(__name__)


@torch.no_grad()
def export_quantmodel(model: nn.Sequential, image_size: int | tuple[int, ...], class_names: list[str],
                      input_shape: tuple[int, ...] | None = None) -> QuantModel:
    """`image_size` is the side of a square one-channel input or its (height, width); `input_shape` (C, H, W)
    or (C, L) overrides it. The first module must be the input quantizer (a QuantIdentity)."""
    if input_shape is None:
        input_shape = (1, image_size, image_size) if isinstance(image_size, int) else (1, *image_size)
    model = model.cpu().eval()
    seen: dict[str, tuple[object, object]] = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=name: seen.__setitem__(n, (i[0], o)))
             for name, m in model.named_children()]
    try:
        model(torch.zeros(1, *input_shape))
    except RuntimeError as exc:
        raise ExportError(f"the model does not run on an input of shape {tuple(input_shape)}: {exc}",
                          "give the input shape the model takes, (C, H, W) or (C, L)") from exc
    finally:
        for hook in hooks:
            hook.remove()
    walk = brevitas_layers.Walk()
    for name, m in model.named_children():
        inp, out = seen[name]
        if walk.cur is None:
            if not isinstance(m, qnn.QuantIdentity):
                raise ExportError(f"the student must start with an input QuantIdentity, found {type(m).__name__}",
                                  "build the student with insitu.distill.student.build_student")
            t = brevitas_layers.act_type(out, name)
            walk.cur = FixedType(t.signed, t.width, t.frac)  # the input codes: no cast of their own
            walk.layers.append(Input(name, tuple(input_shape), walk.cur))
            continue
        brevitas_layers.convert(walk, name, m, inp, out)
    if walk.pending is not None:
        raise ExportError(f"the average pooling {walk.pending[0]!r} ends the model without a quantizer",
                          "put a QuantIdentity or QuantReLU after it: it sets the type of the average")
    qm = QuantModel(walk.layers, list(class_names), {"source": "brevitas"})
    qm.validate()
    return qm


def _float_input(qm: QuantModel | None, x: np.ndarray) -> torch.Tensor:
    """The integer input codes as the floats the model takes ((N, H, W) uint8 images: /256, one channel)."""
    if qm is None:
        from insitu.distill.train import to_input

        return to_input(x).double()
    codes = reference.prepare_input(qm, x)
    return torch.from_numpy(codes.astype(np.float64) * 2.0 ** -qm.input.out_type.frac)


@torch.no_grad()
def brevitas_outputs(model: nn.Sequential, images_u8: np.ndarray, batch: int = 500,
                     qm: QuantModel | None = None) -> np.ndarray:
    """Brevitas' own quantized forward pass, run in float64 so that every accumulator below 2**53 is exact
    (float32 would round sums above 2**24, e.g. the dense layer of an 8-bit student). With `qm`, the inputs
    are integer codes of its input type, shaped as its input."""
    import copy

    model = copy.deepcopy(model).cpu().eval().double()
    out = []
    for i in range(0, len(images_u8), batch):
        y = model(_float_input(qm, images_u8[i:i + batch]))
        out.append(getattr(y, "value", y).numpy())  # a QuantTensor when the last layer returns one
    return np.concatenate(out).reshape(len(images_u8), -1).astype(np.float64)


def verify_against_brevitas(qm: QuantModel, model: nn.Sequential, images_u8: np.ndarray,
                            ref_ints: np.ndarray | None = None) -> dict:
    """Assert the integer reference (`ref_ints` when already computed) equals Brevitas on every image;
    returns counts. Mismatch -> MismatchError."""
    ref = reference.to_real(qm, reference.run(qm, images_u8) if ref_ints is None else ref_ints)
    ref = ref.reshape(len(ref), -1)
    brev = brevitas_outputs(model, images_u8, qm=qm)
    exact = np.all(ref == brev, axis=1)
    result = {"vectors": int(len(exact)), "bit_exact_vectors": int(exact.sum())}
    if not exact.all():
        raise MismatchError("IR reference differs from Brevitas on "
                            f"{len(exact) - int(exact.sum())} of {len(exact)} images:\n"
                            + first_mismatches(ref, brev, "reference", "brevitas"),
                            "this is an exporter bug: report it with the run directory")
    return result


def export_qonnx(model: nn.Sequential, image_size: int | tuple[int, int], path: Path) -> Path:
    """QONNX file of the student (Brevitas' exporter, non-dynamo)."""
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    from brevitas.export import export_qonnx as _export

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with _half_up_known():
        _export(model.cpu().eval(), input_t=torch.zeros(1, 1, h, w), export_path=str(tmp), dynamo=False)
    tmp.replace(path)
    return path


@contextmanager
def _half_up_known():
    """Brevitas 0.13.4's QONNX export runs each Quant node's forward with the rounding it solves from the node's
    rounding_mode and knows no HALF_UP (student.act_rounding = "half_up"): give it ours while exporting."""
    from brevitas.export.onnx.qonnx import function as fn

    from insitu.distill.student import RoundHalfUpSte

    solve = fn.solve_float_to_int_impl_from_enum
    fn.solve_float_to_int_impl_from_enum = lambda m: RoundHalfUpSte if str(m).upper() == "HALF_UP" else solve(m)
    try:
        yield
    finally:
        fn.solve_float_to_int_impl_from_enum = solve


def verify_qonnx(path: Path, images_u8: np.ndarray, expected: np.ndarray, frac: int, batch: int = 250) -> dict:
    """Execute the QONNX file with qonnx's executor and compare every output with the reference, exactly."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.util.cleanup import cleanup_model

    from insitu.distill.train import to_input
    from insitu.sim.compare import compare

    base = cleanup_model(ModelWrapper(str(path)))
    iname, oname = base.graph.input[0].name, base.graph.output[0].name
    sized: dict[int, object] = {}
    outs = []
    for i in range(0, len(images_u8), batch):
        xb = to_input(images_u8[i:i + batch]).numpy()
        if len(xb) not in sized:
            sized[len(xb)] = base.transform(ChangeBatchSize(len(xb))).transform(InferShapes())
        y = execute_onnx(sized[len(xb)], {iname: xb})[oname].astype(np.float64) * 2.0**frac
        if not np.array_equal(y, np.round(y)):
            raise MismatchError(f"QONNX output off the 2^-{frac} grid in batch at {i}", "report this exporter bug")
        outs.append(y.astype(np.int64))
    result = compare(expected, np.concatenate(outs), "qonnx")
    if not result.ok:
        raise MismatchError(f"QONNX execution differs from the reference on {result.vectors - result.bit_exact_vectors}"
                            f" of {result.vectors} images:\n{result.report}", "report this exporter bug")
    return {"vectors": result.vectors, "bit_exact_vectors": result.bit_exact_vectors}

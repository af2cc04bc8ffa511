"""Brevitas student -> QuantModel IR (and QONNX), with the proof that the IR reference equals Brevitas.

The exporter walks the student's modules in order and reads, in eval mode, the integer weights, the
integer biases and the power-of-two scale of every tensor from Brevitas itself (one probe forward pass
with hooks). Convolutions may be strided, zero-padded and rectangular. Anything it cannot describe exactly
(non-power-of-two scales, dilation, groups, unknown layers) is an `ExportError` naming the layer and the fix.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import brevitas.nn as qnn
import numpy as np
import torch
from torch import nn

from insitu.errors import ExportError, MismatchError
from insitu.ir import reference
from insitu.ir.fixed import FixedType
from insitu.ir.graph import exact_acc
from insitu.ir.model import Conv2D, Dense, Flatten, Input, Layer, MaxPool2D, QuantModel, Requant
from insitu.sim.compare import first_mismatches

log = logging.getLogger(__name__)
SUPPORTED = "QuantIdentity (input), QuantConv2d, QuantReLU, MaxPool2d, Flatten, QuantLinear"


def _pow2_frac(scale: torch.Tensor, where: str) -> int:
    s = scale.detach().reshape(-1)
    if s.numel() != 1:
        raise ExportError(f"{where}: per-channel scales ({s.numel()}) are not supported yet",
                          "use per-tensor quantizers (the *PerTensorFixedPoint ones)")
    v = float(s[0])
    e = math.log2(v) if v > 0 else float("nan")
    if not math.isfinite(e) or e != round(e):
        raise ExportError(f"{where}: scale {v!r} is not a power of two, so no fixed-point type represents it",
                          "use Brevitas FixedPoint quantizers (power-of-two scales)")
    return -int(round(e))


def _qt(t: object, where: str):
    if not hasattr(t, "scale") or not hasattr(t, "bit_width"):
        raise ExportError(f"{where}: expected a quantized tensor here, got a float tensor",
                          "every layer must be preceded by a quantizer (return_quant_tensor=True)")
    return t


@torch.no_grad()
def export_quantmodel(model: nn.Sequential, image_size: int | tuple[int, int], class_names: list[str]) -> QuantModel:
    """`image_size` is the side of a square input or its (height, width)."""
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    model = model.cpu().eval()
    seen: dict[str, tuple[object, object]] = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=name: seen.__setitem__(n, (i[0], o)))
             for name, m in model.named_children()]
    try:
        model(torch.zeros(1, 1, h, w))
    finally:
        for hook in hooks:
            hook.remove()
    layers: list[Layer] = []
    cur: FixedType | None = None
    for name, m in model.named_children():
        inp, out = seen[name]
        if isinstance(m, qnn.QuantIdentity) and not layers:
            o = _qt(out, name)
            if o.signed or float(o.bit_width) != 8 or _pow2_frac(o.scale, name) != 8:
                raise ExportError(f"{name}: the input quantizer must be unsigned 8-bit with scale 2^-8",
                                  "use insitu's InputQuant")
            cur = FixedType(False, 8, 8)
            layers.append(Input(name, (1, h, w), cur))
        elif cur is None:
            raise ExportError(f"the student must start with an input QuantIdentity, found {type(m).__name__}",
                              "build the student with insitu.distill.student.build_student")
        elif isinstance(m, (qnn.QuantConv2d, qnn.QuantLinear)):
            qi = _qt(inp, name)
            if isinstance(m, qnn.QuantConv2d):
                if isinstance(m.padding, str) or m.padding_mode != "zeros" or m.dilation != (1, 1) \
                        or m.groups not in (1, m.in_channels):
                    raise ExportError(f"{name}: only zero-padded (numeric padding), undilated convolutions with groups "
                                      f"1 or in_channels (depthwise) are exported (got padding={m.padding!r}, "
                                      f"padding_mode={m.padding_mode!r}, dilation={m.dilation}, groups={m.groups})",
                                      "give padding as numbers; use groups=1 or groups=in_channels")
            qw = m.quant_weight()
            wfrac = _pow2_frac(qw.scale, f"{name}.weight")
            wbits = int(qw.bit_width)
            w = qw.int().numpy().astype(np.int64)
            frac = cur.frac + wfrac
            if m.bias is None:
                b = np.zeros(w.shape[0], np.int64)
            else:
                qb = m.bias_quant(m.bias, qi, qw)
                if _pow2_frac(qb.scale, f"{name}.bias") != frac:
                    raise ExportError(f"{name}: bias scale is not input scale x weight scale", "use Int32Bias")
                b = qb.int().numpy().astype(np.int64)
            wt = FixedType(True, wbits, wfrac)
            acc = exact_acc(w, b, cur, frac)
            if isinstance(m, qnn.QuantConv2d):
                ph, pw = m.padding
                layers.append(Conv2D(name, w, b, wt, acc, stride=tuple(int(s) for s in m.stride),
                                     padding=(int(ph), int(ph), int(pw), int(pw)), groups=int(m.groups)))
            else:
                layers.append(Dense(name, w, b, wt, acc))
            cur = acc
        elif isinstance(m, qnn.QuantReLU):
            o = _qt(out, name)
            cur = FixedType(bool(o.signed), int(o.bit_width), _pow2_frac(o.scale, name), "RND_CONV", "SAT")
            layers.append(Requant(name, True, cur))
        elif isinstance(m, nn.MaxPool2d):
            k, s = m.kernel_size, m.stride
            if k != s or m.padding not in (0, (0, 0)) or m.dilation not in (1, (1, 1)) or m.ceil_mode:
                raise ExportError(f"{name}: only non-overlapping max-pooling (stride = size, no padding) is supported",
                                  "use MaxPool2d(k) with default arguments")
            layers.append(MaxPool2D(name, int(k if isinstance(k, int) else k[0])))
        elif isinstance(m, nn.Flatten):
            layers.append(Flatten(name))
        else:
            raise ExportError(f"layer {name!r} of type {type(m).__name__} is not supported by the exporter",
                              f"supported layers: {SUPPORTED}")
    qm = QuantModel(layers, list(class_names), {"source": "brevitas"})
    qm.shapes()  # validates the chain
    reference.check_exact_range(qm)
    return qm


@torch.no_grad()
def brevitas_outputs(model: nn.Sequential, images_u8: np.ndarray, batch: int = 500) -> np.ndarray:
    """Brevitas' own quantized forward pass, run in float64 so that every accumulator below 2**53 is exact
    (float32 would round sums above 2**24, e.g. the dense layer of an 8-bit student)."""
    import copy

    from insitu.distill.train import to_input

    model = copy.deepcopy(model).cpu().eval().double()
    out = [model(to_input(images_u8[i:i + batch]).double()).numpy() for i in range(0, len(images_u8), batch)]
    return np.concatenate(out).astype(np.float64)


def verify_against_brevitas(qm: QuantModel, model: nn.Sequential, images_u8: np.ndarray,
                            ref_ints: np.ndarray | None = None) -> dict:
    """Assert the integer reference (`ref_ints` when already computed) equals Brevitas on every image;
    returns counts. Mismatch -> MismatchError."""
    ref = reference.to_real(qm, reference.run(qm, images_u8) if ref_ints is None else ref_ints)
    brev = brevitas_outputs(model, images_u8)
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
    _export(model.cpu().eval(), input_t=torch.zeros(1, 1, h, w), export_path=str(tmp), dynamo=False)
    tmp.replace(path)
    return path


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

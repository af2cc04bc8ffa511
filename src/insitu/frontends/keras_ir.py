"""Channels-last Keras graphs -> IR layers, shared by the QKeras and HGQ2 frontends (framework-free: numpy and
insitu.ir only, so that it also runs inside the QKeras environment).

A handler extracts a layer's integer weights and attributes from its framework and calls a builder here:
kernels are transposed to the IR's (O, C, KH, KW), TensorFlow's `same` padding is split as TensorFlow splits it,
a Flatten of a (H, W, C) map remembers that shape so that the Dense after it gets its columns permuted (Keras
flattens channels-last, the IR channel-first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from insitu.errors import ModelImportError
from insitu.frontends.inputs import InputQuant
from insitu.ir import graph
from insitu.ir.fixed import FixedType
from insitu.ir.layers import (Add, AvgPool1D, AvgPool2D, Concatenate, Conv1D, Conv2D, Dense, Flatten, GlobalAvgPool,
                              GlobalMaxPool, Input, MaxPool1D, MaxPool2D, Requant)

DOC = "docs/frontends.md"


@dataclass
class Act:
    ir: str  # IR tensor name ("" for the raw model input)
    shape: tuple[int, ...]  # Keras shape without the batch: (H, W, C), (L, C) or (N,)
    relu: bool = False  # a ReLU not yet applied (merged into the next quantizer)
    hwc_flat: tuple[int, ...] | None = None  # a vector that Keras flattened from this channels-last shape


class Walk:
    def __init__(self, path: str) -> None:
        self.path = path
        self.layers: list = []
        self.input_quant: InputQuant | None = None

    def refuse(self, layer, what: str, fix: str = "") -> ModelImportError:
        return ModelImportError(f"{self.path}: layer {layer.name!r} ({type(layer).__name__}): {what}",
                                fix or f"the supported layers and quantizers are listed in {DOC}")

    def add(self, layer, srcs: list[str]) -> str:
        layer.inputs = tuple(srcs)
        self.layers.append(layer)
        try:
            graph.infer(self.layers, partial=True)
        except Exception as exc:  # noqa: BLE001 - an ExportError naming the IR layer
            raise ModelImportError(f"{self.path}: {exc}", f"see {DOC}") from None
        return layer.name

    def type_of(self, ir: str) -> FixedType:
        return graph.infer(self.layers, partial=True)[1][[l.name for l in self.layers].index(ir)]

    def materialize(self, a: Act, name: str) -> Act:
        """Apply a pending ReLU as an exact requant (unsigned, same grid)."""
        if not a.relu:
            return a
        t = self.type_of(a.ir)
        if not t.signed:
            return Act(a.ir, a.shape, False, a.hwc_flat)
        out = FixedType(False, max(t.width - 1, 1), t.frac, "TRN", "SAT")
        return Act(self.add(Requant(f"{name}_relu", True, out), [a.ir]), a.shape, False, a.hwc_flat)

    def reads(self, layer, ins: list[Act]) -> Act:
        """The one input of a layer that must read an activation (not the raw model input)."""
        if len(ins) != 1:
            raise self.refuse(layer, f"has {len(ins)} inputs; one is supported")
        if ins[0].ir == "":
            raise self.refuse(layer, "reads the model input directly, without a quantizer",
                              "quantize the input first (QKeras: QActivation('quantized_bits(8, 0)'); HGQ2: keep "
                              "the first layer's input quantizer enabled): fixed point needs integer codes")
        return ins[0]

    def quantize(self, layer, a: Act, t: FixedType, name: str, narrow: bool = False, mode: str = "ROUND",
                 wrap: bool = False) -> Act:
        """A quantizer of type t on `a`: the IR input (and the input quantizer) on the raw input, else a requant."""
        if a.ir == "":
            if a.relu and t.signed:
                raise self.refuse(layer, "a ReLU on the float input before a signed quantizer is not supported")
            self.input_quant = InputQuant(t.frac, t.width, t.signed, narrow, mode, wrap)
            return Act(self.add(Input(name, _ir_shape(a.shape), FixedType(t.signed, t.width, t.frac)), []), a.shape)
        if narrow:
            raise self.refuse(layer, "a symmetric (narrow-range) activation quantizer has no fixed-point type",
                              "use a quantizer with the full two's complement range")
        return Act(self.add(Requant(name, a.relu, t), [a.ir]), a.shape, False, a.hwc_flat)


def _ir_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[-1], *shape[:-1]) if len(shape) > 1 else tuple(shape)


def grid(walk: Walk, layer, values: np.ndarray, what: str) -> tuple[np.ndarray, int]:
    """Integers and fractional bits of quantized (or raw) float values: the coarsest power-of-two grid."""
    for f in range(0, 33):
        v = values * 2.0 ** f
        if np.all(v == np.round(v)) and np.abs(v).max(initial=0) < 2 ** 31:
            return np.round(v).astype(np.int64), f
    raise walk.refuse(layer, f"its {what} are not on a power-of-two grid", "quantize them with power-of-two scales: "
                      "fixed point needs them (QKeras: quantized_bits with alpha 1 or 'auto_po2'; HGQ2 is by default)")


def signed_type(q: np.ndarray, frac: int) -> FixedType:
    return FixedType.exact(int(min(q.min(initial=0), -1)), int(max(q.max(initial=0), 0)), frac)


def same_pads(n: int, k: int, s: int) -> tuple[int, int]:
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def bias_on(walk: Walk, layer, b: np.ndarray | None, n: int, frac: int) -> np.ndarray:
    if b is None:
        return np.zeros(n, np.int64)
    q, fb = grid(walk, layer, np.asarray(b, np.float64).ravel(), "bias")
    if fb > frac:
        raise walk.refuse(layer, f"its bias needs 2**-{fb}, finer than the accumulator's 2**-{frac}",
                          "quantize the bias with no more fractional bits than input + kernel")
    return q << (frac - fb)


def conv(walk: Walk, layer, a: Act, kernel: np.ndarray, bias: np.ndarray | None, strides, padding: str,
         out_shape: tuple[int, ...], depthwise: bool = False, groups: int = 1) -> Act:
    """kernel: Keras layout (KH, KW, Cin/groups, Cout) or (K, Cin/groups, Cout), depthwise (KH, KW, C, 1); values
    already quantized."""
    a = walk.materialize(a, layer.name)
    w, fw = grid(walk, layer, np.asarray(kernel, np.float64), "kernel")
    w = np.moveaxis(w, (-2, -1), (0, 1)) if depthwise else np.moveaxis(w, (-2, -1), (1, 0))
    dims = w.ndim - 2
    t_in = walk.type_of(a.ir)
    b = bias_on(walk, layer, bias, w.shape[0], t_in.frac + fw)
    strides = [int(s) for s in np.atleast_1d(strides)] * (dims if np.size(strides) == 1 else 1)
    if padding not in ("valid", "same"):
        raise walk.refuse(layer, f"padding={padding!r}; valid and same are supported")
    pads = [(0, 0)] * dims if padding == "valid" else \
        [same_pads(a.shape[i], w.shape[2 + i], strides[i]) for i in range(dims)]
    acc = graph.exact_acc(w, b, t_in, t_in.frac + fw)  # per output row: a grouped kernel is one already
    g = w.shape[0] if depthwise else groups
    if dims == 2:
        ir = Conv2D(layer.name, w, b, signed_type(w, fw), acc, stride=(strides[0], strides[1]),
                    padding=(pads[0][0], pads[0][1], pads[1][0], pads[1][1]), groups=g)
    else:
        ir = Conv1D(layer.name, w, b, signed_type(w, fw), acc, stride=strides[0], padding=pads[0], groups=g)
    return Act(walk.add(ir, [a.ir]), tuple(out_shape))


def dense(walk: Walk, layer, a: Act, kernel: np.ndarray, bias: np.ndarray | None) -> Act:
    """kernel: Keras layout (I, O), values already quantized."""
    a = walk.materialize(a, layer.name)
    if len(a.shape) != 1:
        raise walk.refuse(layer, f"a Dense on a {a.shape} tensor (Keras applies it to the last axis); flatten first")
    w, fw = grid(walk, layer, np.asarray(kernel, np.float64), "kernel")
    w = w.T
    if a.hwc_flat is not None and len(a.hwc_flat) > 1:  # Keras flattened (H, W, C); the IR flattens (C, H, W)
        w = w[:, np.moveaxis(np.arange(int(np.prod(a.hwc_flat))).reshape(a.hwc_flat), -1, 0).ravel()]
    t_in = walk.type_of(a.ir)
    b = bias_on(walk, layer, bias, w.shape[0], t_in.frac + fw)
    ir = Dense(layer.name, w, b, signed_type(w, fw), graph.exact_acc(w, b, t_in, t_in.frac + fw))
    return Act(walk.add(ir, [a.ir]), (w.shape[0],))


def flatten(walk: Walk, layer, a: Act) -> Act:
    if len(a.shape) == 1:
        return a
    return Act(walk.add(Flatten(layer.name), [a.ir]), (int(np.prod(a.shape)),), a.relu, tuple(a.shape))


def _mean_type(walk: Walk, layer, ir: str, count: int) -> FixedType:
    if count & (count - 1):
        raise walk.refuse(layer, f"averages {count} values: the float mean has no exact fixed-point value",
                          "average a power-of-two number of values")
    return graph.exact_mean_type(walk.type_of(ir), count)


def pool(walk: Walk, layer, a: Act, kind: str, size, strides, padding: str, out_shape: tuple[int, ...]) -> Act:
    size = [int(v) for v in np.atleast_1d(size)]
    stride = [int(v) for v in np.atleast_1d(strides if strides is not None else size)]
    if len(set(size)) != 1 or len(set(stride)) != 1 or padding != "valid":
        raise walk.refuse(layer, f"pool_size={size}, strides={stride}, padding={padding!r}; square windows and "
                                 "strides without padding are supported")
    dims = len(size)
    if kind == "max":
        cls = MaxPool2D if dims == 2 else MaxPool1D
        return Act(walk.add(cls(layer.name, size[0], stride=stride[0]), [a.ir]), tuple(out_shape), a.relu)
    a = walk.materialize(a, layer.name)
    cls = AvgPool2D if dims == 2 else AvgPool1D
    t = _mean_type(walk, layer, a.ir, size[0] ** dims)
    return Act(walk.add(cls(layer.name, size[0], t, stride=stride[0]), [a.ir]), tuple(out_shape))


def global_pool(walk: Walk, layer, a: Act, kind: str) -> Act:
    n = int(a.shape[-1])
    if kind == "max":
        return Act(walk.add(GlobalMaxPool(layer.name), [a.ir]), (n,), a.relu)
    a = walk.materialize(a, layer.name)
    t = _mean_type(walk, layer, a.ir, int(np.prod(a.shape[:-1])))
    return Act(walk.add(GlobalAvgPool(layer.name, t), [a.ir]), (n,))


def join(walk: Walk, layer, ins: list[Act], is_add: bool, out_shape: tuple[int, ...]) -> Act:
    acts = [walk.materialize(a, f"{layer.name}_{i}") for i, a in enumerate(ins)]
    irs = [a.ir for a in acts]
    t = graph.join_type([walk.type_of(s) for s in irs], is_add)
    cls = Add if is_add else Concatenate
    return Act(walk.add(cls(layer.name, t), irs), tuple(out_shape))


def finish(walk: Walk, out: Act, in_shape: tuple[int, ...], meta_source: dict):
    """The QuantModel: the output a vector, the last layer computed; the input's layout recorded."""
    from insitu.ir.model import QuantModel
    from insitu.ir.simplify import simplify

    out = walk.materialize(out, "output")
    if walk.input_quant is None or not out.ir:
        raise ModelImportError(f"{walk.path}: the model has no input quantizer",
                               "quantize the input first (QKeras: a QActivation after the Input; HGQ2: the first "
                               "layer's input quantizer)")
    if len(out.shape) != 1:
        raise ModelImportError(f"{walk.path}: the output has shape {out.shape}; a vector (Dense or global pooling) "
                               "is supported", "end the model with a Dense layer or a global pooling")
    if walk.layers[-1].name != out.ir:
        raise ModelImportError(f"{walk.path}: the output is not the last layer computed", "remove the unused branch")
    to_ir = [0, len(in_shape), *range(1, len(in_shape))] if len(in_shape) > 1 else [0, 1]
    meta = {"source": meta_source, "input_quant": walk.input_quant.to_dict(),
            "input_layout": {"shape": list(in_shape), "to_ir": to_ir}}
    return simplify(QuantModel(list(walk.layers), [f"out{i}" for i in range(int(out.shape[0]))], meta))

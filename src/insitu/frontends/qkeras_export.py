"""QKeras -> QuantModel IR files, and QKeras' own execution. Runs inside the QKeras environment (`make qkeras`:
TensorFlow + tf-keras + QKeras in .venv-qkeras), never in insitu's main one: it imports only numpy, TensorFlow,
QKeras and the framework-free `insitu.ir` and `insitu.frontends.inputs` modules.

    python -m insitu.frontends.qkeras_export import MODEL OUT_DIR     # writes OUT_DIR/quantmodel.{json,npz}
    python -m insitu.frontends.qkeras_export predict MODEL X.npz Y.npz

Layout: Keras is channels-last, the IR channels-first. Convolution kernels are transposed, a Flatten of a
(H, W, C) map is channel-major in the IR, so the Dense after it gets its weight columns permuted, and the
inputs are transposed (`meta.input_layout`). The quantizers' forward value is taken with the straight-through
estimator off (`use_ste=False`): QKeras' form x + stop_gradient(xq - x) could round in float32 when x lies far
outside the range; the inference value is xq, which the hardware computes.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass

import numpy as np

from insitu.errors import ModelImportError
from insitu.frontends.inputs import InputQuant
from insitu.ir import graph
from insitu.ir.fixed import FixedType
from insitu.ir.layers import Input, Requant
from insitu.ir.model import QuantModel
from insitu.ir.simplify import simplify

DOC = "docs/frontends.md"


def _load(path: str):
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # the plain kernels: a fixed summation order
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    from qkeras.utils import load_qmodel

    try:
        return load_qmodel(path, compile=False)
    except Exception as exc:  # noqa: BLE001 - h5py / TF raise many kinds
        raise ModelImportError(f"QKeras cannot load {path}: {type(exc).__name__}: {exc}",
                               "save the model with model.save('model.h5') (or a SavedModel folder)") from None


def _inference_mode(q) -> None:
    for attr, value in (("use_ste", False), ("qnoise_factor", 1.0)):
        if hasattr(q, attr):
            setattr(q, attr, value)


def _quantizers(layer) -> list:
    qs = list(getattr(layer, "quantizers", []) or [])
    for attr in ("quantizer", "activation"):
        q = getattr(layer, attr, None)
        if q is not None and hasattr(q, "bits"):
            qs.append(q)
    return qs


@dataclass
class Act:
    ir: str
    shape: tuple[int, ...]  # Keras shape without the batch: (H, W, C), (L, C) or (N,)
    relu: bool = False
    hwc_flat: tuple[int, ...] | None = None  # a vector flattened by Keras from this channels-last shape


class Walk:
    def __init__(self, path: str) -> None:
        self.path = path
        self.layers: list = []
        self.acts: dict[str, Act] = {}
        self.input_quant: InputQuant | None = None

    def refuse(self, layer, what: str, fix: str = "") -> ModelImportError:
        return ModelImportError(f"{self.path}: layer {layer.name!r} ({type(layer).__name__}): {what}",
                                fix or f"the supported layers and quantizers are listed in {DOC}")

    def add(self, layer, srcs: list[str]) -> str:
        layer.inputs = tuple(srcs)
        self.layers.append(layer)
        try:
            graph.infer(self.layers)
        except Exception as exc:  # noqa: BLE001 - an ExportError naming the IR layer
            raise ModelImportError(f"{self.path}: {exc}", f"see {DOC}") from None
        return layer.name

    def type_of(self, ir: str) -> FixedType:
        return graph.infer(self.layers)[1][[l.name for l in self.layers].index(ir)]

    def materialize(self, a: Act, name: str) -> Act:
        if not a.relu:
            return a
        t = self.type_of(a.ir)
        if not t.signed:
            return Act(a.ir, a.shape, False, a.hwc_flat)
        ir = self.add(Requant(f"{name}_relu", True, FixedType(False, max(t.width - 1, 1), t.frac, "TRN", "SAT")),
                      [a.ir])
        return Act(ir, a.shape, False, a.hwc_flat)


# --- quantizers ---------------------------------------------------------------------------------------------
def quant_type(walk: Walk, layer, q) -> tuple[FixedType, bool, bool]:
    """(type, relu, narrow) of a QKeras activation quantizer."""
    name = type(q).__name__
    if getattr(q, "use_stochastic_rounding", False):
        raise walk.refuse(layer, f"{name} with stochastic rounding has no fixed inference value")
    if name == "quantized_bits":
        if q.alpha not in (None, 1, 1.0):
            raise walk.refuse(layer, f"quantized_bits(alpha={q.alpha!r}) on an activation: a per-tensor scale that is "
                                     "not a power of two", "use alpha=None (or 1) for activation quantizers")
        signed = bool(q.keep_negative)
        frac = int(q.bits) - int(signed) - int(q.integer)
        if int(q.bits) - int(signed) <= 0:
            raise walk.refuse(layer, f"{q} has no magnitude bits (a sign-only quantizer)")
        return FixedType(signed, int(q.bits), frac, "RND_CONV", "SAT"), False, bool(q.symmetric) and signed
    if name == "quantized_relu":
        if q.use_sigmoid or q.negative_slope:
            raise walk.refuse(layer, f"{q}: only the plain quantized ReLU (no sigmoid, no negative slope) is supported")
        return FixedType(False, int(q.bits), int(q.bits) - int(q.integer), "RND_CONV", "SAT"), True, False
    raise walk.refuse(layer, f"quantizer {q} is not supported (supported: quantized_bits, quantized_relu)")


def weights(walk: Walk, layer, q, w: np.ndarray, what: str) -> tuple[np.ndarray, int]:
    """Integers and fractional bits of a weight tensor as its quantizer sees it (or raw, when on a grid)."""
    if q is not None:
        _inference_mode(q)
        w = np.asarray(q(w.astype(np.float32)), dtype=np.float64)
    for f in range(0, 33):
        v = w * 2.0 ** f
        if np.all(v == np.round(v)) and np.abs(v).max(initial=0) < 2 ** 31:
            return np.round(v).astype(np.int64), f
    raise walk.refuse(layer, f"its {what} are not on a power-of-two grid" + ("" if q is not None else
                      " (no quantizer)"), "quantize them with quantized_bits(bits, integer) or "
                      "quantized_bits(..., alpha='auto_po2'): fixed point needs power-of-two scales")


def _signed(q: np.ndarray, frac: int) -> FixedType:
    return FixedType.exact(int(min(q.min(initial=0), -1)), int(max(q.max(initial=0), 0)), frac)


def activation_after(walk: Walk, layer, a: Act) -> Act:
    """The `activation` of a QDense / QConv / Activation / QActivation layer, applied to `a`."""
    act = getattr(layer, "quantizer", None) or getattr(layer, "activation", None)
    name = getattr(act, "__name__", None) or type(act).__name__
    if act is None or name == "linear":
        return a
    if name == "relu":
        return Act(a.ir, a.shape, True, a.hwc_flat)
    if not hasattr(act, "bits"):
        raise walk.refuse(layer, f"activation {name!r} is computed in float with no quantizer: it cannot be "
                                 "bit-exact in fixed point", "use a QKeras quantizer (quantized_relu, quantized_bits)")
    _inference_mode(act)
    t, relu, narrow = quant_type(walk, layer, act)
    if a.ir == "":
        walk.input_quant = InputQuant(t.frac, t.width, t.signed, narrow, "ROUND")
        shape = _ir_shape(a.shape)
        ir = walk.add(Input(layer.name, shape, FixedType(t.signed, t.width, t.frac)), [])
        return Act(ir, a.shape)
    if narrow:
        raise walk.refuse(layer, f"{act} is symmetric (narrow range) on an activation", "use symmetric=0")
    name = layer.name if a.ir != layer.name else f"{layer.name}_act"  # QDense(activation=...): a second layer
    ir = walk.add(Requant(name, relu or a.relu, t), [a.ir])
    return Act(ir, a.shape, False, a.hwc_flat)


def _ir_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[-1], *shape[:-1]) if len(shape) > 1 else tuple(shape)


def _inbound(layer) -> list:
    nodes = getattr(layer, "_inbound_nodes", [])
    if not nodes:
        return []
    got = nodes[0].inbound_layers
    return list(got) if isinstance(got, (list, tuple)) else [got]


def build(model, path: str) -> QuantModel:
    from insitu.frontends.qkeras_layers import HANDLERS

    walk = Walk(path)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelImportError(f"{path} has {len(model.inputs)} inputs and {len(model.outputs)} outputs",
                               "insitu builds models with one input and one output")
    in_shape = tuple(int(v) for v in model.inputs[0].shape[1:])
    last = None
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            walk.acts[layer.name] = Act("", in_shape)
            continue
        srcs = _inbound(layer)
        if not srcs:  # a Sequential model's first layer reads the implicit input
            walk.acts.setdefault("__input__", Act("", in_shape))
            ins = [walk.acts["__input__"]]
        else:
            ins = [walk.acts[s.name] for s in srcs]
        handler = HANDLERS.get(kind)
        if handler is None:
            raise walk.refuse(layer, f"layer class {kind} is not supported (supported: {', '.join(sorted(HANDLERS))})")
        for q in _quantizers(layer):
            _inference_mode(q)
        walk.acts[layer.name] = handler(walk, layer, ins)
        last = layer.name
    out = walk.materialize(walk.acts[last], "output")
    if walk.input_quant is None or not out.ir:
        raise ModelImportError(f"{path}: the model has no input quantizer",
                               "put QActivation('quantized_bits(8, 0)') (or quantized_relu) right after the input")
    if len(out.shape) != 1:
        raise ModelImportError(f"{path}: the output has shape {out.shape}; a vector (Dense or global pooling) is "
                               "supported", "end the model with a Dense layer or a global pooling")
    if walk.layers[-1].name != out.ir:
        raise ModelImportError(f"{path}: the output is not the last layer computed", "remove the unused branch")
    n_out = int(out.shape[0])
    to_ir = [0, len(in_shape), *range(1, len(in_shape))] if len(in_shape) > 1 else [0, 1]
    meta = {"source": {"format": "qkeras", "file": os.path.basename(path.rstrip("/"))},
            "input_quant": walk.input_quant.to_dict(),
            "input_layout": {"shape": list(in_shape), "to_ir": to_ir}}
    return simplify(QuantModel(list(walk.layers), [f"out{i}" for i in range(n_out)], meta))


def predict(model, x: np.ndarray) -> np.ndarray:
    for layer in model.layers:
        for q in _quantizers(layer):
            _inference_mode(q)
    y = model.predict(x.astype(np.float32), batch_size=256, verbose=0)
    return np.asarray(y, dtype=np.float64).reshape(len(x), -1)


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["import"] and len(argv) == 3:
            from pathlib import Path

            qm = build(_load(argv[1]), argv[1])
            qm.save(Path(argv[2]))
            return 0
        if argv[:1] == ["predict"] and len(argv) == 4:
            with np.load(argv[2], allow_pickle=False) as z:
                x = z["x"]
            np.savez(argv[3], y=predict(_load(argv[1]), x))
            return 0
    except ModelImportError as exc:
        print(json.dumps({"problem": exc.problem, "fix": exc.fix}), file=sys.stderr)
        return 3
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

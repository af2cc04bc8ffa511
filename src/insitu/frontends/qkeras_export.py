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

import numpy as np

from insitu.errors import ModelImportError
from insitu.frontends.keras_ir import Act, Walk, finish
from insitu.ir.fixed import FixedType
from insitu.ir.model import QuantModel


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


def weights(walk: Walk, layer, q, w: np.ndarray) -> np.ndarray:
    """A weight tensor as its quantizer (STE off) makes it; raw when there is none."""
    if q is None or isinstance(q, str):
        return np.asarray(w, np.float64)
    _inference_mode(q)
    return np.asarray(q(w.astype(np.float32)), dtype=np.float64)


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
    name = layer.name if a.ir != layer.name else f"{layer.name}_act"  # QDense(activation=...): a second layer
    return walk.quantize(layer, Act(a.ir, a.shape, a.relu or relu, a.hwc_flat), t, name, narrow, "ROUND")


def _inbound(layer) -> list:
    nodes = getattr(layer, "_inbound_nodes", [])
    if not nodes:
        return []
    got = nodes[0].inbound_layers
    return list(got) if isinstance(got, (list, tuple)) else [got]


def build(model, path: str) -> QuantModel:
    from insitu.frontends.qkeras_layers import HANDLERS

    walk = Walk(path)
    acts: dict[str, Act] = {}
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelImportError(f"{path} has {len(model.inputs)} inputs and {len(model.outputs)} outputs",
                               "insitu builds models with one input and one output")
    in_shape = tuple(int(v) for v in model.inputs[0].shape[1:])
    last = None
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            acts[layer.name] = Act("", in_shape)
            continue
        srcs = _inbound(layer)
        if not srcs:  # a Sequential model's first layer reads the implicit input
            acts.setdefault("__input__", Act("", in_shape))
            ins = [acts["__input__"]]
        else:
            ins = [acts[s.name] for s in srcs]
        handler = HANDLERS.get(kind)
        if handler is None:
            raise walk.refuse(layer, f"layer class {kind} is not supported (supported: {', '.join(sorted(HANDLERS))})")
        for q in _quantizers(layer):
            _inference_mode(q)
        acts[layer.name] = handler(walk, layer, ins)
        last = layer.name
    return finish(walk, acts[last], in_shape, {"format": "qkeras", "file": os.path.basename(path.rstrip("/"))})


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

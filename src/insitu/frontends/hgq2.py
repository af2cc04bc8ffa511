"""HGQ2 models (Keras 3, `.keras`) -> QuantModel IR, and Keras' own execution, on the torch backend (no
TensorFlow): `KERAS_BACKEND=torch` is set before Keras is imported.

An HGQ2 layer quantizes its *input* (`iq`, when enabled), its kernel (`kq`) and bias (`bq`), applies its
activation, then optionally its output (`oq`). Each fixed-point quantizer has arrays k (sign), i (integer bits)
and f (fractional bits), a rounding mode (RND = half up, RND_CONV, TRN) and an overflow mode (WRAP, SAT,
SAT_SYM). Weights may be heterogeneous (any k, i, f per weight: their quantized values are integers on the finest
grid). Activation quantizers must be homogeneous (one k, i, f for the whole tensor): the IR has one type per
activation tensor. A heterogeneous one is refused by name, with its spread of bit widths; configure HGQ2 with
`QuantizerConfigScope(place='datalane', heterogeneous_axis=())` for per-tensor activations.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from insitu.errors import ModelImportError
from insitu.frontends.keras_ir import Act, Walk, conv, dense, finish, flatten, global_pool, join, pool
from insitu.ir.fixed import FixedType
from insitu.ir.model import QuantModel

ROUNDING = {"RND": "RND", "RND_CONV": "RND_CONV", "TRN": "TRN"}


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    if keras.backend.backend() != "torch":
        raise ModelImportError(f"Keras runs on the {keras.backend.backend()!r} backend in this process",
                               "set KERAS_BACKEND=torch (insitu runs HGQ2 models on the torch backend)")
    import hgq  # noqa: F401 - registers HGQ2's layers for deserialisation

    return keras


def files(path: Path) -> list[Path]:
    import zipfile

    if not path.is_file():
        raise ModelImportError(f"model file {path} does not exist", "pass a .keras file saved by model.save()")
    if not zipfile.is_zipfile(path):
        raise ModelImportError(f"{path} is not a Keras 3 model archive (not a zip file, or truncated)",
                               "save the model again with model.save('model.keras')")
    return [path]


def _load(path: Path):
    keras = _keras()
    try:  # safe_mode: no Python code (Lambda layers) is deserialised
        return keras.models.load_model(str(path), compile=False, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - Keras raises many kinds
        raise ModelImportError(f"Keras cannot load {path}: {type(exc).__name__}: {exc}",
                               "save the model with model.save('model.keras') with hgq2 0.2 / Keras 3") from None


def _np(v) -> np.ndarray:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(v), dtype=np.float64)


def quant_type(walk: Walk, layer, q, what: str) -> tuple[FixedType, bool]:
    """(type, wraps) of a homogeneous activation quantizer."""
    inner = getattr(q, "quantizer", q)
    name = type(inner).__name__
    if not name.startswith("FixedPointQuantizer"):
        raise walk.refuse(layer, f"its {what} quantizer {name} is not a fixed-point one", "use HGQ2's kif / kbi")
    if getattr(q, "scaler", None) is not None or getattr(getattr(q, "config", None), "get", lambda *_: None)("affine"):
        raise walk.refuse(layer, f"its {what} quantizer is scaled or affine: not a power-of-two fixed-point type")
    k, i, f = (_np(v) for v in inner.kif)
    for arr, nm in ((k, "k"), (i, "i"), (f, "f")):
        if arr.size and np.unique(arr).size > 1:
            raise walk.refuse(layer, f"its {what} quantizer is heterogeneous ({nm} takes the values "
                                     f"{sorted(np.unique(arr).tolist())[:6]}): the IR has one type per activation "
                                     "tensor", "quantize activations per tensor: QuantizerConfigScope(place='datalane',"
                                     " heterogeneous_axis=()) when building the model")
    k0, f0 = int(k.ravel()[0]), int(f.ravel()[0])
    i0 = max(int(i.ravel()[0]), -f0)
    mode, overflow = inner.round_mode.upper(), inner.overflow_mode.upper()
    if mode not in ROUNDING:
        raise walk.refuse(layer, f"its {what} quantizer rounds {mode}; supported: RND, RND_CONV, TRN")
    if overflow not in ("WRAP", "SAT"):
        raise walk.refuse(layer, f"its {what} quantizer overflows {overflow}; supported on activations: WRAP, SAT")
    width = k0 + i0 + f0
    if width < 1:
        raise walk.refuse(layer, f"its {what} quantizer has {width} bits")
    return FixedType(bool(k0), width, f0, ROUNDING[mode], "SAT" if overflow == "SAT" else "WRAP"), overflow == "WRAP"


def _quantize(walk: Walk, layer, a: Act, q, what: str, name: str) -> Act:
    t, wraps = quant_type(walk, layer, q, what)
    return walk.quantize(layer, a, t, name, False, t.rounding, wraps)


def _after(walk: Walk, layer, a: Act) -> Act:
    act = getattr(layer, "activation", None)
    name = getattr(act, "__name__", None)
    if name == "relu":
        a = Act(a.ir, a.shape, True, a.hwc_flat)
    elif act is not None and name != "linear":
        raise walk.refuse(layer, f"activation {name!r} is computed in float with no quantizer: it cannot be "
                                 "bit-exact in fixed point", "use relu or linear; put other functions in a table")
    if getattr(layer, "enable_oq", False):
        a = _quantize(walk, layer, a, layer.oq, "output", f"{layer.name}_oq")
    return a


def _input(walk: Walk, layer, ins: list[Act]) -> Act:
    if len(ins) != 1:
        raise walk.refuse(layer, f"has {len(ins)} inputs; one is supported")
    if getattr(layer, "enable_iq", False):
        return _quantize(walk, layer, ins[0], layer.iq, "input", f"{layer.name}_iq")
    return walk.reads(layer, ins)


def _shape(layer) -> tuple[int, ...]:
    return tuple(int(v) for v in layer.output.shape[1:])


def _handle(walk: Walk, layer, ins: list[Act]) -> Act:
    kind = type(layer).__name__
    cfg = layer.get_config()
    if kind in ("QDense", "QConv1D", "QConv2D"):
        a = _input(walk, layer, ins)
        kernel = _np(layer.qkernel)
        bias = _np(layer.qbias) if getattr(layer, "bias", None) is not None else None
        if kind == "QDense":
            out = dense(walk, layer, a, kernel, bias)
        else:
            if cfg.get("data_format", "channels_last") != "channels_last" or any(int(d) != 1 for d in
                                                                                np.atleast_1d(cfg["dilation_rate"])):
                raise walk.refuse(layer, "channels_last convolutions without dilation are supported")
            groups = int(cfg.get("groups", 1))
            if groups not in (1, a.shape[-1]) or (groups > 1 and kernel.shape[-1] != a.shape[-1]):
                raise walk.refuse(layer, f"groups={groups}; 1 or depthwise (groups = channels = filters) is supported")
            out = conv(walk, layer, a, kernel, bias, cfg["strides"], cfg["padding"], _shape(layer),
                       depthwise=groups > 1 and groups == a.shape[-1])
        return _after(walk, layer, out)
    if kind in ("QMaxPool1D", "QMaxPool2D", "QMaxPooling1D", "QMaxPooling2D", "QAveragePooling1D",
                "QAveragePooling2D", "QAvgPool1D", "QAvgPool2D"):
        a = _input(walk, layer, ins)
        out = pool(walk, layer, a, "max" if "Max" in kind else "avg", cfg["pool_size"], cfg.get("strides"),
                   cfg.get("padding", "valid"), _shape(layer))
        return _after(walk, layer, out)
    if kind in ("QGlobalAveragePooling1D", "QGlobalAveragePooling2D", "QGlobalAvgPool1D", "QGlobalAvgPool2D",
                "QGlobalMaxPooling1D", "QGlobalMaxPooling2D", "QGlobalMaxPool1D", "QGlobalMaxPool2D"):
        if cfg.get("keepdims"):
            raise walk.refuse(layer, "keepdims=True is not supported")
        a = _input(walk, layer, ins)
        return _after(walk, layer, global_pool(walk, layer, a, "max" if "Max" in kind else "avg"))
    if kind == "QAdd":
        if getattr(layer, "enable_iq", False):
            ins = [_quantize(walk, layer, a, q, f"input {n}", f"{layer.name}_iq{n}") for n, (a, q)
                   in enumerate(zip(ins, layer.iq))]
        return _after(walk, layer, join(walk, layer, ins, True, _shape(layer)))
    if kind == "Flatten":
        return flatten(walk, layer, walk.reads(layer, ins))
    if kind == "ReLU" or (kind == "Activation" and getattr(layer.activation, "__name__", "") == "relu"):
        a = walk.reads(layer, ins)
        return Act(a.ir, a.shape, True, a.hwc_flat)
    if kind in ("Dropout", "Activation") and (kind == "Dropout" or layer.activation.__name__ == "linear"):
        return walk.reads(layer, ins)
    raise walk.refuse(layer, f"layer class {kind} is not supported",
                      "supported: QDense, QConv1D/2D, QMaxPool, QAveragePooling, QGlobalAveragePooling, "
                      "QGlobalMaxPooling, QAdd, Flatten, ReLU, Dropout (docs/frontends.md)")


def _inputs_of(layer) -> list:
    node = layer._inbound_nodes[0]
    return [t._keras_history.operation for t in node.input_tensors]


def load(path: Path, class_names: list[str] | None) -> QuantModel:
    model = _load(path)
    walk = Walk(str(path))
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelImportError(f"{path} has {len(model.inputs)} inputs and {len(model.outputs)} outputs",
                               "insitu builds models with one input and one output")
    in_shape = tuple(int(v) for v in model.inputs[0].shape[1:])
    acts: dict[str, Act] = {}
    last = None
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            acts[layer.name] = Act("", in_shape)
            continue
        acts[layer.name] = _handle(walk, layer, [acts[src.name] for src in _inputs_of(layer)])
        last = layer.name
    qm = finish(walk, acts[last], in_shape, {"format": "hgq2", "file": Path(path).name})
    if class_names:
        qm.class_names = list(class_names)
    return qm


def execute(path: Path, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """Keras' own forward pass (inference mode, torch backend) on float32 inputs."""
    model = _load(path)
    outs = [_np(model(np.ascontiguousarray(x[i:i + batch], np.float32), training=False)).reshape(
        len(x[i:i + batch]), -1) for i in range(0, len(x), batch)]
    return np.concatenate(outs)

"""One handler per Keras / QKeras layer class (`HANDLERS`, the registry: a class not in it is refused by name).
Runs inside the QKeras environment (see qkeras_export)."""

from __future__ import annotations

import numpy as np

from insitu.frontends.qkeras_export import Act, Walk, _signed, activation_after, weights
from insitu.ir import graph
from insitu.ir.fixed import FixedType
from insitu.ir.layers import (Add, AvgPool1D, AvgPool2D, Concatenate, Conv1D, Conv2D, Dense, Flatten, GlobalAvgPool,
                              GlobalMaxPool, MaxPool1D, MaxPool2D)


def _one(walk: Walk, layer, ins: list[Act]) -> Act:
    if len(ins) != 1:
        raise walk.refuse(layer, f"has {len(ins)} inputs; one is supported")
    if ins[0].ir == "" and type(layer).__name__ not in ("QActivation", "Activation", "Dropout"):
        raise walk.refuse(layer, "reads the model input directly, without a quantizer",
                          "put QActivation('quantized_bits(8, 0)') (or quantized_relu) right after the input: "
                          "fixed point needs the input's integer codes")
    return ins[0]


def _check(walk: Walk, layer, **want) -> None:
    cfg = layer.get_config()
    for key, ok in want.items():
        if key in cfg and cfg[key] not in ok:
            raise walk.refuse(layer, f"{key}={cfg[key]!r} is not supported (supported: {', '.join(map(repr, ok))})")


def _same_pads(n: int, k: int, s: int) -> tuple[int, int]:
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def conv(walk: Walk, layer, ins: list[Act]) -> Act:
    a = walk.materialize(_one(walk, layer, ins), layer.name)
    kind = type(layer).__name__
    _check(walk, layer, data_format=("channels_last",), padding=("valid", "same"), groups=(1,))
    depthwise = "Depthwise" in kind
    if depthwise:
        _check(walk, layer, depth_multiplier=(1,))
        q = (getattr(layer, "depthwise_quantizer_internal", None) or getattr(layer, "depthwise_quantizer", None))
        k = layer.depthwise_kernel.numpy()  # (KH, KW, C, 1)
    else:
        q = getattr(layer, "kernel_quantizer_internal", None)
        k = layer.kernel.numpy()  # (KH, KW, Cin, Cout) or (K, Cin, Cout)
    if any(int(d) != 1 for d in np.atleast_1d(layer.dilation_rate)):
        raise walk.refuse(layer, f"dilation_rate={layer.dilation_rate}; only 1 is supported")
    w, fw = weights(walk, layer, q if not isinstance(q, str) else None, k, "kernel")
    dims = w.ndim - 2
    w = np.moveaxis(w, (-2, -1), (1, 0)) if not depthwise else np.moveaxis(w, (-2, -1), (0, 1))
    t_in = walk.type_of(a.ir)
    b = _bias(walk, layer, w.shape[0], t_in.frac + fw)
    strides = [int(s) for s in np.atleast_1d(layer.strides)]
    ksz = w.shape[2:]
    spatial = a.shape[:-1]
    pads = [(0, 0)] * dims if layer.padding == "valid" else \
        [_same_pads(spatial[i], ksz[i], strides[i]) for i in range(dims)]
    acc = graph.exact_acc(w, b, t_in, t_in.frac + fw)  # per output row: a depthwise kernel is one already
    groups = w.shape[0] if depthwise else 1
    if dims == 2:
        ir = Conv2D(layer.name, w, b, _signed(w, fw), acc, stride=(strides[0], strides[1]),
                    padding=(pads[0][0], pads[0][1], pads[1][0], pads[1][1]), groups=groups)
    else:
        ir = Conv1D(layer.name, w, b, _signed(w, fw), acc, stride=strides[0], padding=pads[0], groups=groups)
    name = walk.add(ir, [a.ir])
    out = Act(name, tuple(int(v) for v in layer.output_shape[1:]))
    return activation_after(walk, layer, out)


def _bias(walk: Walk, layer, n: int, frac: int) -> np.ndarray:
    if not getattr(layer, "use_bias", False) or getattr(layer, "bias", None) is None:
        return np.zeros(n, np.int64)
    q = getattr(layer, "bias_quantizer_internal", None)
    b, fb = weights(walk, layer, q, layer.bias.numpy(), "bias")
    if fb > frac:
        raise walk.refuse(layer, f"its bias needs 2**-{fb}, finer than the accumulator's 2**-{frac}",
                          "quantize the bias with no more fractional bits than input + kernel")
    return b << (frac - fb)


def dense(walk: Walk, layer, ins: list[Act]) -> Act:
    a = walk.materialize(_one(walk, layer, ins), layer.name)
    if len(a.shape) != 1:
        raise walk.refuse(layer, f"a Dense on a {a.shape} tensor (Keras applies it to the last axis); flatten first")
    w, fw = weights(walk, layer, getattr(layer, "kernel_quantizer_internal", None), layer.kernel.numpy(), "kernel")
    w = w.T  # (O, I)
    if a.hwc_flat is not None and len(a.hwc_flat) > 1:  # Keras flattened (H, W, C); the IR flattens (C, H, W)
        hwc = a.hwc_flat
        perm = np.moveaxis(np.arange(int(np.prod(hwc))).reshape(hwc), -1, 0).ravel()
        w = w[:, perm]
    t_in = walk.type_of(a.ir)
    b = _bias(walk, layer, w.shape[0], t_in.frac + fw)
    name = walk.add(Dense(layer.name, w, b, _signed(w, fw), graph.exact_acc(w, b, t_in, t_in.frac + fw)), [a.ir])
    return activation_after(walk, layer, Act(name, (w.shape[0],)))


def activation(walk: Walk, layer, ins: list[Act]) -> Act:
    return activation_after(walk, layer, _one(walk, layer, ins))


def relu_layer(walk: Walk, layer, ins: list[Act]) -> Act:
    a = _one(walk, layer, ins)
    cfg = layer.get_config()
    if cfg.get("max_value") is not None or cfg.get("negative_slope", 0) or cfg.get("threshold", 0):
        raise walk.refuse(layer, "a ReLU with max_value, negative_slope or threshold is not supported",
                          "use quantized_relu, or a plain ReLU followed by a quantizer")
    return Act(a.ir, a.shape, True, a.hwc_flat)


def alias(walk: Walk, layer, ins: list[Act]) -> Act:
    return _one(walk, layer, ins)


def flatten(walk: Walk, layer, ins: list[Act]) -> Act:
    a = _one(walk, layer, ins)
    if len(a.shape) == 1:
        return a
    name = walk.add(Flatten(layer.name), [a.ir])
    return Act(name, (int(np.prod(a.shape)),), a.relu, tuple(a.shape))


def pool(walk: Walk, layer, ins: list[Act]) -> Act:
    a = _one(walk, layer, ins)
    _check(walk, layer, padding=("valid",), data_format=("channels_last",))
    size = [int(v) for v in np.atleast_1d(layer.pool_size)]
    stride = [int(v) for v in np.atleast_1d(layer.strides)]
    if len(set(size)) != 1 or len(set(stride)) != 1:
        raise walk.refuse(layer, f"pool_size={size}, strides={stride}; square windows and strides are supported")
    kind = type(layer).__name__
    dims = len(size)
    out_shape = tuple(int(v) for v in layer.output_shape[1:])
    if kind.startswith("Max"):
        cls = MaxPool2D if dims == 2 else MaxPool1D
        return Act(walk.add(cls(layer.name, size[0], stride=stride[0]), [a.ir]), out_shape, a.relu)
    a = walk.materialize(a, layer.name)
    cls = AvgPool2D if dims == 2 else AvgPool1D
    t = _mean_type(walk, layer, a.ir, size[0] ** dims)
    return Act(walk.add(cls(layer.name, size[0], t, stride=stride[0]), [a.ir]), out_shape)


def _mean_type(walk: Walk, layer, ir: str, count: int) -> FixedType:
    if count & (count - 1):
        raise walk.refuse(layer, f"averages {count} values: the float mean has no exact fixed-point value",
                          "average a power-of-two number of values")
    t = walk.type_of(ir)
    k = count.bit_length() - 1
    return FixedType(t.signed, t.width + k, t.frac + k, "TRN", "SAT")


def global_pool(walk: Walk, layer, ins: list[Act]) -> Act:
    a = _one(walk, layer, ins)
    if layer.get_config().get("keepdims"):
        raise walk.refuse(layer, "keepdims=True is not supported")
    n = int(a.shape[-1])
    if "Max" in type(layer).__name__:
        return Act(walk.add(GlobalMaxPool(layer.name), [a.ir]), (n,), a.relu)
    a = walk.materialize(a, layer.name)
    t = _mean_type(walk, layer, a.ir, int(np.prod(a.shape[:-1])))
    return Act(walk.add(GlobalAvgPool(layer.name, t), [a.ir]), (n,))


def _joined(walk: Walk, irs: list[str], add: bool) -> FixedType:
    ts = [walk.type_of(s) for s in irs]
    f = max(t.frac for t in ts)
    los = [t.min_int << (f - t.frac) for t in ts]
    his = [t.max_int << (f - t.frac) for t in ts]
    return FixedType.exact(sum(los), sum(his), f) if add else FixedType.exact(min(los), max(his), f)


def join(walk: Walk, layer, ins: list[Act]) -> Act:
    acts = [walk.materialize(a, f"{layer.name}_{i}") for i, a in enumerate(ins)]
    is_add = type(layer).__name__ == "Add"
    if not is_add:
        axis = layer.get_config().get("axis", -1)
        if axis not in (-1, len(acts[0].shape)):
            raise walk.refuse(layer, f"axis={axis}; only the channel axis (-1) is supported")
    irs = [a.ir for a in acts]
    cls = Add if is_add else Concatenate
    out_shape = tuple(int(v) for v in layer.output_shape[1:])
    return Act(walk.add(cls(layer.name, _joined(walk, irs, is_add)), irs), out_shape)


HANDLERS = {
    "QConv2D": conv, "Conv2D": conv, "QConv1D": conv, "Conv1D": conv, "QDepthwiseConv2D": conv,
    "DepthwiseConv2D": conv, "QDense": dense, "Dense": dense, "QActivation": activation, "Activation": activation,
    "ReLU": relu_layer, "Dropout": alias, "Flatten": flatten, "MaxPooling2D": pool, "MaxPooling1D": pool,
    "AveragePooling2D": pool, "AveragePooling1D": pool, "GlobalAveragePooling2D": global_pool,
    "GlobalAveragePooling1D": global_pool, "GlobalMaxPooling2D": global_pool, "GlobalMaxPooling1D": global_pool,
    "Add": join, "Concatenate": join,
}

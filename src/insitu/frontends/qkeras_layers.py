"""One handler per Keras / QKeras layer class (`HANDLERS`, the registry: a class not in it is refused by name).
Runs inside the QKeras environment (see qkeras_export); the IR is built by `keras_ir`."""

from __future__ import annotations

import numpy as np

from insitu.frontends import keras_ir
from insitu.frontends.keras_ir import Act, Walk
from insitu.frontends.qkeras_export import activation_after, weights


def _check(walk: Walk, layer, **want) -> None:
    cfg = layer.get_config()
    for key, ok in want.items():
        if key in cfg and cfg[key] not in ok:
            raise walk.refuse(layer, f"{key}={cfg[key]!r} is not supported (supported: {', '.join(map(repr, ok))})")


def _out_shape(layer) -> tuple[int, ...]:
    return tuple(int(v) for v in layer.output_shape[1:])


def conv(walk: Walk, layer, ins: list[Act]) -> Act:
    a = walk.reads(layer, ins)
    _check(walk, layer, data_format=("channels_last",), groups=(1,))
    if any(int(d) != 1 for d in np.atleast_1d(layer.dilation_rate)):
        raise walk.refuse(layer, f"dilation_rate={layer.dilation_rate}; only 1 is supported")
    depthwise = "Depthwise" in type(layer).__name__
    if depthwise:
        _check(walk, layer, depth_multiplier=(1,))
        k = weights(walk, layer, getattr(layer, "depthwise_quantizer_internal", None), layer.depthwise_kernel.numpy())
    else:
        k = weights(walk, layer, getattr(layer, "kernel_quantizer_internal", None), layer.kernel.numpy())
    out = keras_ir.conv(walk, layer, a, k, _bias(walk, layer), layer.strides, layer.padding, _out_shape(layer),
                        depthwise)
    return activation_after(walk, layer, out)


def _bias(walk: Walk, layer) -> np.ndarray | None:
    if not getattr(layer, "use_bias", False) or getattr(layer, "bias", None) is None:
        return None
    return weights(walk, layer, getattr(layer, "bias_quantizer_internal", None), layer.bias.numpy())


def dense(walk: Walk, layer, ins: list[Act]) -> Act:
    a = walk.reads(layer, ins)
    k = weights(walk, layer, getattr(layer, "kernel_quantizer_internal", None), layer.kernel.numpy())
    return activation_after(walk, layer, keras_ir.dense(walk, layer, a, k, _bias(walk, layer)))


def activation(walk: Walk, layer, ins: list[Act]) -> Act:
    if len(ins) != 1:
        raise walk.refuse(layer, f"has {len(ins)} inputs; one is supported")
    return activation_after(walk, layer, ins[0])


def relu_layer(walk: Walk, layer, ins: list[Act]) -> Act:
    a = walk.reads(layer, ins)
    cfg = layer.get_config()
    if cfg.get("max_value") is not None or cfg.get("negative_slope", 0) or cfg.get("threshold", 0):
        raise walk.refuse(layer, "a ReLU with max_value, negative_slope or threshold is not supported",
                          "use quantized_relu, or a plain ReLU followed by a quantizer")
    return Act(a.ir, a.shape, True, a.hwc_flat)


def alias(walk: Walk, layer, ins: list[Act]) -> Act:
    return walk.reads(layer, ins)


def flatten(walk: Walk, layer, ins: list[Act]) -> Act:
    return keras_ir.flatten(walk, layer, walk.reads(layer, ins))


def pool(walk: Walk, layer, ins: list[Act]) -> Act:
    _check(walk, layer, data_format=("channels_last",))
    kind = "max" if type(layer).__name__.startswith("Max") else "avg"
    return keras_ir.pool(walk, layer, walk.reads(layer, ins), kind, layer.pool_size, layer.strides, layer.padding,
                         _out_shape(layer))


def global_pool(walk: Walk, layer, ins: list[Act]) -> Act:
    if layer.get_config().get("keepdims"):
        raise walk.refuse(layer, "keepdims=True is not supported")
    kind = "max" if "Max" in type(layer).__name__ else "avg"
    return keras_ir.global_pool(walk, layer, walk.reads(layer, ins), kind)


def join(walk: Walk, layer, ins: list[Act]) -> Act:
    is_add = type(layer).__name__ == "Add"
    if not is_add and layer.get_config().get("axis", -1) not in (-1, len(ins[0].shape)):
        raise walk.refuse(layer, f"axis={layer.get_config().get('axis')}; only the channel axis (-1) is supported")
    return keras_ir.join(walk, layer, ins, is_add, _out_shape(layer))


HANDLERS = {
    "QConv2D": conv, "Conv2D": conv, "QConv1D": conv, "Conv1D": conv, "QDepthwiseConv2D": conv,
    "DepthwiseConv2D": conv, "QDense": dense, "Dense": dense, "QActivation": activation, "Activation": activation,
    "ReLU": relu_layer, "Dropout": alias, "Flatten": flatten, "MaxPooling2D": pool, "MaxPooling1D": pool,
    "AveragePooling2D": pool, "AveragePooling1D": pool, "GlobalAveragePooling2D": global_pool,
    "GlobalAveragePooling1D": global_pool, "GlobalMaxPooling2D": global_pool, "GlobalMaxPooling1D": global_pool,
    "Add": join, "Concatenate": join,
}

"""The integer reference: runs a QuantModel on uint8 images with integers only. This is "correct".

Convolutions and dense layers are computed as float64 matrix products of integers, which is exact as long
as every partial sum stays below 2**53; `check_exact_range` proves that from the weights before running.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from insitu.errors import ExportError
from insitu.ir.fixed import requantize
from insitu.ir.model import Conv2D, Dense, Flatten, Input, MaxPool2D, QuantModel, Requant

_EXACT = 1 << 52


def check_exact_range(model: QuantModel) -> None:
    for layer in model.layers:
        if isinstance(layer, (Conv2D, Dense)) and layer.out_type.width > 52:
            raise ExportError(f"{layer.name}: accumulator needs {layer.out_type.width} bits; the reference is exact "
                              "only up to 52", "use fewer weight/activation bits")


def _conv(x: np.ndarray, layer: Conv2D) -> np.ndarray:
    o, c, k, _ = layer.weight.shape
    win = sliding_window_view(x, (k, k), axis=(2, 3))  # N, C, H', W', K, K
    n, _, h, w = win.shape[:4]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * w, c * k * k).astype(np.float64)
    acc = cols @ layer.weight.reshape(o, -1).T.astype(np.float64) + layer.bias.astype(np.float64)
    return np.rint(acc).astype(np.int64).reshape(n, h, w, o).transpose(0, 3, 1, 2)


def _pool(x: np.ndarray, size: int) -> np.ndarray:
    n, c, h, w = x.shape
    h2, w2 = h // size, w // size
    return x[:, :, :h2 * size, :w2 * size].reshape(n, c, h2, size, w2, size).max(axis=(3, 5))


def run(model: QuantModel, images_u8: np.ndarray, trace: bool = False, chunk: int = 256):
    """Integer outputs (N, K) at model.output_type.frac; with `trace`, also every layer's integer output."""
    check_exact_range(model)
    inp = model.input
    c, h, w = inp.shape
    x_all = np.asarray(images_u8)
    if x_all.ndim == 3:
        x_all = x_all[:, None]
    if x_all.shape[1:] != (c, h, w):
        raise ExportError(f"reference input has shape {x_all.shape[1:]}, model expects {(c, h, w)}",
                          "resize the images to the model input")
    outs, traces = [], {layer.name: [] for layer in model.layers}
    for i in range(0, len(x_all), chunk):
        x = x_all[i:i + chunk].astype(np.int64)
        frac = inp.out_type.frac
        for layer in model.layers:
            if isinstance(layer, Input):
                pass
            elif isinstance(layer, Conv2D):
                x, frac = _conv(x, layer), layer.out_type.frac
            elif isinstance(layer, Requant):
                x = np.maximum(x, 0) if layer.relu else x
                x, frac = requantize(x, frac, layer.out_type), layer.out_type.frac
            elif isinstance(layer, MaxPool2D):
                x = _pool(x, layer.size)
            elif isinstance(layer, Flatten):
                x = x.reshape(len(x), -1)
            elif isinstance(layer, Dense):
                acc = x.astype(np.float64) @ layer.weight.T.astype(np.float64) + layer.bias.astype(np.float64)
                x, frac = np.rint(acc).astype(np.int64), layer.out_type.frac
            else:  # pragma: no cover - the IR types are closed
                raise ExportError(f"reference: unknown layer {layer}", "")
            if trace:
                traces[layer.name].append(x)
        outs.append(x)
    result = np.concatenate(outs) if outs else np.zeros((0, model.shapes()[-1][0]), np.int64)
    if trace:
        return result, {k: np.concatenate(v) for k, v in traces.items() if v}
    return result


def to_real(model: QuantModel, q: np.ndarray) -> np.ndarray:
    """Integer outputs as real values (exact in float64)."""
    return q.astype(np.float64) * 2.0 ** -model.output_type.frac

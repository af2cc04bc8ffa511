"""The integer reference: runs a QuantModel on uint8 inputs with integers only. This is "correct".

Every kind follows docs/ir.md. Convolutions and dense layers are float64 matrix products of integers, exact
because every partial sum lies inside the exact accumulator's range, which validation keeps at most 52 bits
wide (`graph.MAX_ACC_BITS`); everything else is int64 arithmetic. Averages are exact sums divided by the window
size with the output type's rounding, as rational numbers (no reciprocal approximation).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from insitu.errors import ExportError
from insitu.ir import graph
from insitu.ir.fixed import FixedType, Rounding, requantize, saturate
from insitu.ir.layers import (Add, AvgPool1D, AvgPool2D, Concatenate, Conv1D, Conv2D, Dense, Flatten, GlobalAvgPool,
                              GlobalMaxPool, Input, MaxPool1D, MaxPool2D, Requant, Reshape, ScaleShift)
from insitu.ir.model import QuantModel


def check_exact_range(model: QuantModel) -> None:
    """Validate the model (including the accumulator limit that keeps float64 products exact)."""
    model.validate()


def _matmul(cols: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    acc = cols.astype(np.float64) @ weight.T.astype(np.float64) + bias.astype(np.float64)
    return np.rint(acc).astype(np.int64)


def _conv2d(x: np.ndarray, layer: Conv2D) -> np.ndarray:
    pt, pb, pl, pr = layer.padding
    x = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))  # zeros: the value 0 of the input type
    o, cg, kh, kw = layer.weight.shape
    sh, sw = layer.stride
    win = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]  # N, C, H', W', KH, KW
    n, c, h, w = win.shape[:4]
    g = layer.groups
    outs = []
    for gi in range(g):
        part = win[:, gi * cg:(gi + 1) * cg]
        cols = part.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * w, cg * kh * kw)
        og = o // g
        wg = layer.weight[gi * og:(gi + 1) * og].reshape(og, -1)
        outs.append(_matmul(cols, wg, layer.bias[gi * og:(gi + 1) * og]).reshape(n, h, w, og))
    return np.concatenate(outs, axis=-1).transpose(0, 3, 1, 2)


def _conv1d(x: np.ndarray, layer: Conv1D) -> np.ndarray:
    as2d = Conv2D(layer.name, layer.weight[:, :, None, :], layer.bias, layer.weight_type, layer.out_type,
                  stride=(1, layer.stride), padding=(0, 0, *layer.padding), groups=layer.groups)
    return _conv2d(x[:, :, None, :], as2d)[:, :, 0, :]


def _windows(x: np.ndarray, size: int, stride: int, dims: int) -> np.ndarray:
    s = stride or size
    axes = tuple(range(2, 2 + dims))
    win = sliding_window_view(x, (size,) * dims, axis=axes)
    sl = (slice(None), slice(None)) + (slice(None, None, s),) * dims
    return win[sl]  # N, C, out..., size...


def round_div(num: np.ndarray, den: int, rounding: Rounding) -> np.ndarray:
    """num / den for integers and den > 0: floor (TRN), round half up (RND) or half to even (RND_CONV), exactly."""
    q = num // den  # floor
    if rounding == "TRN":
        return q
    r = num - q * den
    up = (2 * r >= den) if rounding == "RND" else (2 * r > den) | ((2 * r == den) & ((q & 1) == 1))
    return q + up.astype(np.int64)


def average(total: np.ndarray, count: int, frac_in: int, t: FixedType) -> np.ndarray:
    """The exact sum of `count` values at frac_in, as their mean cast to t (t's rounding, then saturation)."""
    d = t.frac - frac_in
    num, den = (total << d, count) if d >= 0 else (total, count << (-d))
    return saturate(round_div(num, den, t.rounding), t)


def _align(x: np.ndarray, frac_in: int, frac_out: int) -> np.ndarray:
    return x << (frac_out - frac_in)  # validation guarantees frac_out >= frac_in: exact


def prepare_input(model: QuantModel, inputs: np.ndarray) -> np.ndarray:
    shape = tuple(model.input.shape)
    x = np.asarray(inputs)
    if x.shape[1:] != shape and shape[0] == 1 and x.shape[1:] == shape[1:]:
        x = x[:, None]  # single-channel inputs may come without their channel axis
    if x.shape[1:] != shape:
        raise ExportError(f"reference input has shape {x.shape[1:]}, model expects {shape}",
                          "resize the inputs to the model input")
    return x.astype(np.int64)


def apply(layer, xs: list[np.ndarray], fracs: list[int]) -> tuple[np.ndarray, int]:
    """One layer on its inputs' integers (and their fractional bits): (output integers, output fractional bits)."""
    x, frac = xs[0], fracs[0]
    if isinstance(layer, Conv2D):
        return _conv2d(x, layer), layer.out_type.frac
    if isinstance(layer, Conv1D):
        return _conv1d(x, layer), layer.out_type.frac
    if isinstance(layer, Dense):
        return _matmul(x, layer.weight, layer.bias), layer.out_type.frac
    if isinstance(layer, ScaleShift):
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return x * layer.scale.reshape(shape) + layer.shift.reshape(shape), layer.out_type.frac
    if isinstance(layer, Requant):
        x = np.maximum(x, 0) if layer.relu else x
        return requantize(x, frac, layer.out_type), layer.out_type.frac
    if isinstance(layer, (MaxPool2D, MaxPool1D)):
        dims = 2 if isinstance(layer, MaxPool2D) else 1
        return _windows(x, layer.size, layer.stride, dims).max(axis=tuple(range(-dims, 0))), frac
    if isinstance(layer, (AvgPool2D, AvgPool1D)):
        dims = 2 if isinstance(layer, AvgPool2D) else 1
        total = _windows(x, layer.size, layer.stride, dims).sum(axis=tuple(range(-dims, 0)))
        return average(total, layer.size ** dims, frac, layer.out_type), layer.out_type.frac
    if isinstance(layer, GlobalAvgPool):
        flat = x.reshape(len(x), x.shape[1], -1)
        return average(flat.sum(axis=2), flat.shape[2], frac, layer.out_type), layer.out_type.frac
    if isinstance(layer, GlobalMaxPool):
        return x.reshape(len(x), x.shape[1], -1).max(axis=2), frac
    if isinstance(layer, Add):
        f = layer.out_type.frac
        return sum(_align(v, fv, f) for v, fv in zip(xs, fracs)), f
    if isinstance(layer, Concatenate):
        f = layer.out_type.frac
        return np.concatenate([_align(v, fv, f) for v, fv in zip(xs, fracs)], axis=1), f
    if isinstance(layer, Flatten):
        return x.reshape(len(x), -1), frac
    if isinstance(layer, Reshape):
        return x.reshape(len(x), *layer.shape), frac
    raise ExportError(f"reference: unknown layer {layer!r}", "")  # pragma: no cover - LAYER_TYPES is closed


def run(model: QuantModel, inputs: np.ndarray, trace: bool = False, chunk: int = 256):
    """Integer outputs (N, ...) at model.output_type.frac; with `trace`, also every layer's integer output."""
    check_exact_range(model)
    ins = graph.resolved_inputs(model.layers)
    x_all = prepare_input(model, inputs)
    outs, traces = [], {layer.name: [] for layer in model.layers}
    for i in range(0, len(x_all), chunk):
        values: dict[str, tuple[np.ndarray, int]] = {}
        for layer, srcs in zip(model.layers, ins):
            if isinstance(layer, Input):
                out = (x_all[i:i + chunk], layer.out_type.frac)
            else:
                out = apply(layer, [values[s][0] for s in srcs], [values[s][1] for s in srcs])
            values[layer.name] = out
            if trace:
                traces[layer.name].append(out[0])
        outs.append(values[model.layers[-1].name][0])
    if outs:
        result = np.concatenate(outs)
    else:
        result = np.zeros((0, *model.shapes()[-1]), np.int64)
    if trace:
        return result, {k: np.concatenate(v) for k, v in traces.items() if v}
    return result


def to_real(model: QuantModel, q: np.ndarray) -> np.ndarray:
    """Integer outputs as real values (exact in float64)."""
    return q.astype(np.float64) * 2.0 ** -model.output_type.frac

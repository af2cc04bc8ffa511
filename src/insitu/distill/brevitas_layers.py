"""One converter per Brevitas / PyTorch module kind: the registry behind `export_quantmodel`.

Each converter reads one module (with the quantized tensors seen at its input and output in a probe forward
pass) and appends the IR layers it is, returning the fixed-point type now flowing. An average pooling is
completed by the quantizer after it: PyTorch averages exactly (in float, the mean of a few integers is
exact up to the last bit, and a tie is representable), the quantizer rounds (half to even, or half up) and
saturates, so the pair is one IR AvgPool / GlobalAvgPool whose type is the quantizer's (a QuantReLU after it:
an unsigned, saturating type, which is the ReLU).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import brevitas.nn as qnn
import numpy as np
import torch
from torch import nn

from insitu.errors import ExportError
from insitu.ir.fixed import FixedType
from insitu.ir.graph import exact_acc
from insitu.ir.layers import (AvgPool1D, AvgPool2D, Conv1D, Conv2D, Dense, Flatten, GlobalAvgPool, GlobalMaxPool,
                              Layer, MaxPool1D, MaxPool2D, Requant)


def pow2_fracs(scale: torch.Tensor, where: str) -> np.ndarray:
    """The fractional bits of each power-of-two scale (one per tensor, or one per channel)."""
    out = []
    for v in scale.detach().reshape(-1).tolist():
        e = math.log2(v) if v > 0 else float("nan")
        if not math.isfinite(e) or e != round(e):
            raise ExportError(f"{where}: scale {v!r} is not a power of two, so no fixed-point type represents it",
                              "use Brevitas FixedPoint quantizers (power-of-two scales)")
        out.append(-int(round(e)))
    return np.asarray(out, np.int64)


def pow2_frac(scale: torch.Tensor, where: str) -> int:
    f = pow2_fracs(scale, where)
    if f.size != 1:
        raise ExportError(f"{where}: per-channel activation scales ({f.size}) are not supported",
                          "use per-tensor activation quantizers (the *PerTensorFixedPoint ones)")
    return int(f[0])


def _channel_shifts(fr: np.ndarray, n_out: int, where: str) -> np.ndarray:
    """Per-output-channel left shifts onto the finest of the scales `fr` (one per tensor or one per channel)."""
    if fr.size not in (1, n_out):
        raise ExportError(f"{where}: {fr.size} scales for {n_out} output channels",
                          "scale weights per tensor or per output channel")
    return np.broadcast_to(fr.max() - fr, (n_out,))


def quant(t: object, where: str):
    if not hasattr(t, "scale") or not hasattr(t, "bit_width"):
        raise ExportError(f"{where}: expected a quantized tensor here, got a float tensor",
                          "every layer must be preceded by a quantizer (return_quant_tensor=True)")
    return t


#: a Brevitas quantizer's rounding_mode -> the IR's rounding (half up only for unsigned quantizers: QONNX's
#: HALF_UP is half away from zero, the same after the clamp at 0)
ROUNDING = {"ROUND": "RND_CONV", "HALF_UP": "RND"}


def act_type(out: object, where: str, mode: str | None = "ROUND") -> FixedType:
    o = quant(out, where)
    rounding = ROUNDING.get(str(mode).upper())
    if rounding is None or (rounding == "RND" and bool(o.signed)):
        raise ExportError(f"{where}: rounding_mode {mode!r} of a {'signed' if o.signed else 'unsigned'} quantizer "
                          "has no fixed-point equivalent here",
                          "use round half to even (Brevitas' default) or, on unsigned quantizers, half up")
    return FixedType(bool(o.signed), int(o.bit_width), pow2_frac(o.scale, where), rounding, "SAT")


def rounding_mode(m: nn.Module) -> str | None:
    """The rounding_mode of a QuantReLU / QuantIdentity's activation quantizer, as the QONNX export writes it."""
    return getattr(getattr(m, "act_quant", None), "rounding_mode", "ROUND")


@dataclass
class Walk:
    """The state of the walk: the layers so far, the type flowing, an average waiting for its quantizer."""

    layers: list[Layer] = field(default_factory=list)
    cur: FixedType | None = None
    pending: tuple[str, type, int, int] | None = None  # (name, IR class, size, stride) of an unfinished average


def _weighted(w: Walk, name: str, m: nn.Module, inp: object, out: object) -> None:
    qi = quant(inp, name)
    if isinstance(m, (qnn.QuantConv2d, qnn.QuantConv1d)):
        dil = m.dilation if isinstance(m.dilation, tuple) else (m.dilation,)
        if isinstance(m.padding, str) or m.padding_mode != "zeros" or any(d != 1 for d in dil) \
                or m.groups not in (1, m.in_channels):
            raise ExportError(f"{name}: only zero-padded (numeric padding), undilated convolutions with groups "
                              f"1 or in_channels (depthwise) are exported (got padding={m.padding!r}, "
                              f"padding_mode={m.padding_mode!r}, dilation={m.dilation}, groups={m.groups})",
                              "give padding as numbers; use groups=1 or groups=in_channels")
    qw = m.quant_weight()
    weight = qw.int().numpy().astype(np.int64)
    # per-channel scales: every channel on the finest scale, its integers shifted left (exact; the products keep
    # their nonzero digits, the layer's outputs get the finest fraction); per tensor: shifts of 0
    wfr = pow2_fracs(qw.scale, f"{name}.weight")
    shifts = _channel_shifts(wfr, weight.shape[0], f"{name}.weight")
    wfrac = int(wfr.max())
    weight = weight << shifts.reshape(-1, *([1] * (weight.ndim - 1)))
    frac = w.cur.frac + wfrac
    if m.bias is None:
        bias = np.zeros(weight.shape[0], np.int64)
    else:
        qb = m.bias_quant(m.bias, qi, qw)
        bfr = pow2_fracs(qb.scale, f"{name}.bias")
        if not np.all(bfr + shifts == frac):
            raise ExportError(f"{name}: bias scale is not input scale x weight scale", "use Int32Bias")
        bias = qb.int().numpy().astype(np.int64).reshape(-1) << shifts
    wt = FixedType(True, int(qw.bit_width) + int(shifts.max()), wfrac)
    acc = exact_acc(weight, bias, w.cur, frac)
    if isinstance(m, qnn.QuantConv2d):
        ph, pw = m.padding
        w.layers.append(Conv2D(name, weight, bias, wt, acc, stride=tuple(int(s) for s in m.stride),
                               padding=(int(ph), int(ph), int(pw), int(pw)), groups=int(m.groups)))
    elif isinstance(m, qnn.QuantConv1d):
        (p,), (s,) = m.padding, m.stride
        w.layers.append(Conv1D(name, weight, bias, wt, acc, stride=int(s), padding=(int(p), int(p)),
                               groups=int(m.groups)))
    else:
        w.layers.append(Dense(name, weight, bias, wt, acc))
    w.cur = acc


def _quantizer(w: Walk, name: str, m: nn.Module, inp: object, out: object) -> None:
    t = act_type(out, name, rounding_mode(m))
    relu = isinstance(m, qnn.QuantReLU)
    if w.pending is not None:  # the quantizer of an average: one IR layer
        avg, cls, size, stride = w.pending
        w.pending = None
        if relu and t.signed:  # pragma: no cover - Brevitas' ReLU quantizers are unsigned
            raise ExportError(f"{name}: a signed ReLU quantizer after an average", "use an unsigned QuantReLU")
        layer = GlobalAvgPool(avg, t) if cls is GlobalAvgPool else cls(avg, size, t, stride=stride)
        w.layers.append(layer)
    else:
        w.layers.append(Requant(name, relu, t))
    w.cur = t


def _single(v) -> int:
    return int(v if isinstance(v, int) else v[0])


def _global_only(name: str, m: nn.Module, what: str) -> None:
    """An adaptive pooling is exported only as the global one (output size 1)."""
    size = m.output_size
    if any(v != 1 for v in ((size,) if isinstance(size, int) else size)):
        kind = "Max" if what == "max" else "Avg"
        raise ExportError(f"{name}: adaptive {what} pooling to {size} is not supported",
                          f"use Adaptive{kind}Pool2d(1) (global {what} pooling) or {kind}Pool2d(k)")


def _maxpool(w: Walk, name: str, m: nn.Module, inp: object, out: object) -> None:
    if isinstance(m, (nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool1d)):
        _global_only(name, m, "max")
        w.layers.append(GlobalMaxPool(name))
        return
    two = isinstance(m, nn.MaxPool2d)
    k, s = _single(m.kernel_size), _single(m.stride if m.stride is not None else m.kernel_size)
    square = all(isinstance(v, int) or len(set(v)) == 1 for v in (m.kernel_size, m.stride or m.kernel_size))
    if not square or m.padding not in (0, (0, 0), (0,)) or m.dilation not in (1, (1, 1), (1,)) or m.ceil_mode:
        raise ExportError(f"{name}: only square, unpadded, undilated max pooling without ceil_mode is supported",
                          f"use MaxPool{2 if two else 1}d(k) or MaxPool{2 if two else 1}d(k, stride)")
    w.layers.append((MaxPool2D if two else MaxPool1D)(name, k, stride=0 if s == k else s))


def _avgpool(w: Walk, name: str, m: nn.Module, inp: object, out: object) -> None:
    if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool1d)):
        _global_only(name, m, "average")
        w.pending = (name, GlobalAvgPool, 0, 0)
        return
    two = isinstance(m, nn.AvgPool2d)
    k, s = _single(m.kernel_size), _single(m.stride if m.stride is not None else m.kernel_size)
    if m.padding not in (0, (0, 0), (0,)) or m.ceil_mode:
        raise ExportError(f"{name}: only unpadded average pooling without ceil_mode is supported",
                          f"use AvgPool{2 if two else 1}d(k)")
    w.pending = (name, AvgPool2D if two else AvgPool1D, k, 0 if s == k else s)


def _flatten(w: Walk, name: str, m: nn.Module, inp: object, out: object) -> None:
    if (w.pending is not None and w.pending[1] is GlobalAvgPool) or isinstance(w.layers[-1], GlobalMaxPool):
        return  # (C, 1, 1) -> (C,): the IR's global poolings are already vectors
    w.layers.append(Flatten(name))


Converter = Callable[[Walk, str, nn.Module, object, object], None]
#: module class -> converter (checked with isinstance, in this order)
CONVERTERS: dict[type, Converter] = {
    qnn.QuantConv2d: _weighted, qnn.QuantConv1d: _weighted, qnn.QuantLinear: _weighted,
    qnn.QuantReLU: _quantizer, qnn.QuantIdentity: _quantizer,
    nn.MaxPool2d: _maxpool, nn.MaxPool1d: _maxpool, nn.AdaptiveMaxPool2d: _maxpool, nn.AdaptiveMaxPool1d: _maxpool,
    nn.AvgPool2d: _avgpool, nn.AvgPool1d: _avgpool, nn.AdaptiveAvgPool2d: _avgpool, nn.AdaptiveAvgPool1d: _avgpool,
    nn.Flatten: _flatten,
}
SUPPORTED = ("QuantIdentity (input and identity requantisation), QuantConv2d, QuantConv1d, QuantLinear, QuantReLU, "
             "MaxPool2d/1d, AdaptiveMaxPool2d/1d(1), AvgPool2d/1d and AdaptiveAvgPool2d/1d(1) each followed by a "
             "quantizer, Flatten")


def convert(w: Walk, name: str, m: nn.Module, inp: object, out: object) -> None:
    if w.pending is not None and not isinstance(m, (qnn.QuantReLU, qnn.QuantIdentity, nn.Flatten)):
        raise ExportError(f"the average pooling {w.pending[0]!r} is followed by {type(m).__name__} ({name}), not "
                          "by a quantizer", "put a QuantIdentity or QuantReLU after every average pooling: it "
                                            "sets the type of the average")
    for cls, fn in CONVERTERS.items():
        if isinstance(m, cls):
            return fn(w, name, m, inp, out)
    raise ExportError(f"layer {name!r} of type {type(m).__name__} is not supported by the exporter",
                      f"supported layers: {SUPPORTED}")

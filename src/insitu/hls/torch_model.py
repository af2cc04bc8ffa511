"""The IR as a float PyTorch network that hls4ml converts: the same dyadic numbers, layer by layer.

Every IR layer becomes one or two modules (an asymmetric padding before its convolution, a flatten after a
global average); a chain is an `nn.Sequential`, a graph a `GraphNet` whose forward walks the IR's inputs (its
additions and concatenations are the `+` and `torch.cat` that hls4ml's FX tracer turns into Merge and
Concatenate layers, named add, add_1, ..., cat, cat_1, ...). `hls_names` maps IR names to hls4ml's.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from insitu.errors import ExportError
from insitu.ir.fixed import FixedType
from insitu.ir.graph import dense_weight
from insitu.ir.layers import (AvgPool1D, Conv1D, GlobalMaxPool, MaxPool1D, ScaleShift)
from insitu.ir.model import (Add, AvgPool2D, Concatenate, Conv2D, Dense, Flatten, GlobalAvgPool, Input, MaxPool2D,
                             QuantModel, Requant)


def _float(values: np.ndarray, frac: int, where: str) -> torch.Tensor:
    t = torch.tensor(values.astype(np.float64) * 2.0 ** -frac, dtype=torch.float64)
    if not torch.equal(t.float().double(), t):
        raise ExportError(f"{where}: values do not fit float32 exactly", "use fewer bits")
    return t.float()


def pad_name(layer: Conv2D) -> str:
    return f"{layer.name}_pad"


def flat_name(layer: GlobalAvgPool | GlobalMaxPool) -> str:
    return f"{layer.name}_flat"


def pool_accumulator(in_t: FixedType, out_t: FixedType, count: int) -> FixedType:
    """hls4ml averages as `acc = sum; acc /= count` in the accumulator type, then casts to the result type: a
    double rounding, exact when the accumulator holds the whole sum and at least out frac + ceil(log2 count) + 1
    fraction bits (the truncated quotient then never crosses a rounding boundary of the result)."""
    grow = math.ceil(math.log2(max(count, 2)))
    frac = max(out_t.frac + grow + 1, in_t.frac)
    return FixedType(True, in_t.width + grow + 1 + (frac - in_t.frac), frac)


def _pool(layer, dims: int, in_shape: tuple[int, ...]) -> nn.Module:
    size, stride = layer.size, layer.stride or layer.size
    if isinstance(layer, (AvgPool2D, AvgPool1D)):
        return nn.AvgPool2d(size, stride) if dims == 2 else nn.AvgPool1d(size, stride)
    return nn.MaxPool2d(size, stride) if dims == 2 else nn.MaxPool1d(size, stride)


def _conv(layer: Conv2D | Conv1D) -> list[tuple[str, nn.Module]]:
    """A convolution, with hls4ml's own symmetric padding or an explicit zero padding before a valid one."""
    w = dense_weight(layer)  # depthwise: block-diagonal
    o, c, k = w.shape[0], w.shape[1], tuple(w.shape[2:])
    if isinstance(layer, Conv2D):
        pt, pb, pl, pr = layer.padding
        if pt == pb and pl == pr:
            return [(layer.name, nn.Conv2d(c, o, k, stride=tuple(layer.stride), padding=(pt, pl)))]
        return [(pad_name(layer), nn.ConstantPad2d((pl, pr, pt, pb), 0.0)),
                (layer.name, nn.Conv2d(c, o, k, stride=tuple(layer.stride)))]
    pl, pr = layer.padding
    if pl == pr:
        return [(layer.name, nn.Conv1d(c, o, k, stride=layer.stride, padding=pl))]
    return [(pad_name(layer), nn.ConstantPad1d((pl, pr), 0.0)), (layer.name, nn.Conv1d(c, o, k, stride=layer.stride))]


def _scale_shift(layer: ScaleShift, in_shape: tuple[int, ...]) -> nn.Module:
    """y = x * scale + shift on a map as hls4ml's batch normalisation: mean 0, variance 1, epsilon 0, so its
    folded scale gamma / sqrt(var + eps) and bias beta - mean * scale are the IR's numbers exactly. On a vector
    it is a dense layer with a diagonal matrix (hls4ml's streaming batch normalisation of a flat vector gave
    wrong outputs in C simulation)."""
    c = in_shape[0]
    if len(in_shape) == 1:
        m: nn.Module = nn.Linear(c, c)
        with torch.no_grad():
            m.weight.copy_(torch.diag(_float(layer.scale, layer.scale_type.frac, f"{layer.name}.scale")))
            m.bias.copy_(_float(layer.shift, layer.out_type.frac, f"{layer.name}.shift"))
        return m
    m = nn.BatchNorm2d(c, eps=0.0) if len(in_shape) == 3 else nn.BatchNorm1d(c, eps=0.0)
    with torch.no_grad():
        m.weight.copy_(_float(layer.scale, layer.scale_type.frac, f"{layer.name}.scale"))
        m.bias.copy_(_float(layer.shift, layer.out_type.frac, f"{layer.name}.shift"))
        m.running_mean.zero_()
        m.running_var.fill_(1.0)
    return m


def modules_for(layer, in_shape: tuple[int, ...]) -> list[tuple[str, nn.Module]]:
    """The PyTorch module(s) of one IR layer, in order, with the names hls4ml will give them."""
    dims = len(in_shape) - 1
    if isinstance(layer, (GlobalAvgPool, GlobalMaxPool)):  # a pooling over the whole map, then (C,1..) -> (C,)
        span = tuple(in_shape[1:])
        if isinstance(layer, GlobalAvgPool):
            m: nn.Module = nn.AvgPool2d(span) if dims == 2 else nn.AvgPool1d(span[0])
        else:
            m = nn.MaxPool2d(span) if dims == 2 else nn.MaxPool1d(span[0])
        return [(layer.name, m), (flat_name(layer), nn.Flatten())]
    if isinstance(layer, (Conv2D, Conv1D)):
        mods = _conv(layer)
    elif isinstance(layer, Dense):
        mods = [(layer.name, nn.Linear(layer.weight.shape[1], layer.weight.shape[0]))]
    elif isinstance(layer, Requant):
        # hls4ml has no identity activation: a leaky ReLU of slope 1 is one, and the cast to the result type
        # (its rounding and saturation, set by hls_config) does the requantisation
        mods = [(layer.name, nn.ReLU() if layer.relu else nn.LeakyReLU(negative_slope=1.0))]
    elif isinstance(layer, (MaxPool2D, MaxPool1D, AvgPool2D, AvgPool1D)):
        mods = [(layer.name, _pool(layer, dims, in_shape))]
    elif isinstance(layer, ScaleShift):
        mods = [(layer.name, _scale_shift(layer, in_shape))]
    elif isinstance(layer, Flatten):
        mods = [(layer.name, nn.Flatten())]
    else:  # support.require refuses every other kind first
        raise ExportError(f"layer {layer.name!r}: {layer.kind} has no hls4ml mapping", "see docs/support.md")
    if isinstance(layer, (Conv2D, Conv1D, Dense)):
        weight = dense_weight(layer) if not isinstance(layer, Dense) else layer.weight
        m = mods[-1][1]
        with torch.no_grad():
            m.weight.copy_(_float(weight, layer.weight_type.frac, f"{layer.name}.weight"))
            m.bias.copy_(_float(layer.bias, layer.out_type.frac, f"{layer.name}.bias"))
    return mods


class GraphNet(nn.Module):
    """A QuantModel graph as a module: every layer's modules are attributes named as in the IR."""

    def __init__(self, qm: QuantModel) -> None:
        super().__init__()
        shapes, ins = qm.shapes(), qm.inputs_of()
        pos = {l.name: i for i, l in enumerate(qm.layers)}
        self.plan: list[tuple[str, str, tuple[str, ...], list[str]]] = []
        for layer in qm.layers[1:]:
            srcs = ins[layer.name]
            if isinstance(layer, (Add, Concatenate)):
                if len(srcs) != 2 or srcs[0] == srcs[1]:
                    raise ExportError(f"layer {layer.name!r}: hls4ml merges two different tensors, this "
                                      f"{layer.kind} reads {list(srcs)}", "chain the joins two at a time; "
                                      "a tensor added to itself is a scale-and-shift")
                self.plan.append((layer.name, layer.kind, srcs, []))
                continue
            mods = modules_for(layer, shapes[pos[srcs[0]]])
            for name, m in mods:
                self.add_module(name, m)
            self.plan.append((layer.name, "modules", srcs, [n for n, _ in mods]))
        self.output = qm.layers[-1].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        vals = {"__input__": x}
        first = True
        for name, kind, srcs, mods in self.plan:
            args = [x] if first else [vals[s] for s in srcs]
            first = False
            if kind == "add":
                vals[name] = args[0] + args[1]
            elif kind == "concatenate":
                vals[name] = torch.cat([args[0], args[1]], dim=1)
            else:
                y = args[0]
                for m in mods:
                    y = getattr(self, m)(y)
                vals[name] = y
        return vals[self.output]


def to_torch(qm: QuantModel) -> nn.Module:
    """A float PyTorch network computing the IR's values (before rounding), layer names kept."""
    if not qm.is_sequence():
        return GraphNet(qm).eval()
    shapes = qm.shapes()
    mods: OrderedDict[str, nn.Module] = OrderedDict()
    for i, layer in enumerate(qm.layers):
        if not isinstance(layer, Input):
            mods.update(modules_for(layer, shapes[i - 1]))
    return nn.Sequential(mods).eval()


def hls_names(qm: QuantModel) -> dict[str, str]:
    """IR layer name -> the name of its (last) layer in hls4ml's configuration."""
    counts = {"add": 0, "concatenate": 0}
    out = {}
    for layer in qm.layers:
        if isinstance(layer, (Add, Concatenate)):
            k = counts[layer.kind]
            counts[layer.kind] += 1
            base = "add" if isinstance(layer, Add) else "cat"
            out[layer.name] = base if k == 0 else f"{base}_{k}"
        else:
            out[layer.name] = layer.name
    return out

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
from insitu.ir.model import (Add, AvgPool2D, Concatenate, Conv2D, Dense, Flatten, GlobalAvgPool, Input, MaxPool2D,
                             QuantModel, Requant)


def _float(values: np.ndarray, frac: int, where: str) -> torch.Tensor:
    t = torch.tensor(values.astype(np.float64) * 2.0 ** -frac, dtype=torch.float64)
    if not torch.equal(t.float().double(), t):
        raise ExportError(f"{where}: values do not fit float32 exactly", "use fewer bits")
    return t.float()


def pad_name(layer: Conv2D) -> str:
    return f"{layer.name}_pad"


def flat_name(layer: GlobalAvgPool) -> str:
    return f"{layer.name}_flat"


def pool_accumulator(in_t: FixedType, out_t: FixedType, count: int) -> FixedType:
    """hls4ml averages as `acc = sum; acc /= count` in the accumulator type, then casts to the result type: a
    double rounding, exact when the accumulator holds the whole sum and at least out frac + ceil(log2 count) + 1
    fraction bits (the truncated quotient then never crosses a rounding boundary of the result)."""
    grow = math.ceil(math.log2(max(count, 2)))
    frac = max(out_t.frac + grow + 1, in_t.frac)
    return FixedType(True, in_t.width + grow + 1 + (frac - in_t.frac), frac)


def modules_for(layer, in_shape: tuple[int, ...]) -> list[tuple[str, nn.Module]]:
    """The PyTorch module(s) of one IR layer, in order, with the names hls4ml will give them."""
    if isinstance(layer, GlobalAvgPool):  # an average over the whole map, then (C,1,1) -> (C,)
        if len(in_shape) != 3:
            raise ExportError(f"layer {layer.name!r}: global average pooling of a 1-D sequence is not mapped to "
                              "hls4ml yet", "use the reference, or pool a (C, H, W) map")
        return [(layer.name, nn.AvgPool2d(tuple(in_shape[1:]))), (flat_name(layer), nn.Flatten())]
    mods: list[tuple[str, nn.Module]] = []
    if isinstance(layer, Conv2D):
        o, c, kh, kw = dense_weight(layer).shape
        pt, pb, pl, pr = layer.padding
        if pt == pb and pl == pr:  # hls4ml pads symmetric convolutions itself
            m: nn.Module = nn.Conv2d(c, o, (kh, kw), stride=tuple(layer.stride), padding=(pt, pl))
        else:  # asymmetric: an explicit zero padding (hls4ml's ZeroPadding2D) before a valid convolution
            mods.append((pad_name(layer), nn.ConstantPad2d((pl, pr, pt, pb), 0.0)))
            m = nn.Conv2d(c, o, (kh, kw), stride=tuple(layer.stride))
    elif isinstance(layer, Dense):
        m = nn.Linear(layer.weight.shape[1], layer.weight.shape[0])
    elif isinstance(layer, Requant):
        # hls4ml has no identity activation: a leaky ReLU of slope 1 is one, and the cast to the result type
        # (its rounding and saturation, set by hls_config) does the requantisation
        m = nn.ReLU() if layer.relu else nn.LeakyReLU(negative_slope=1.0)
    elif isinstance(layer, MaxPool2D):
        m = nn.MaxPool2d(layer.size)
    elif isinstance(layer, AvgPool2D):
        if layer.stride not in (0, layer.size):
            raise ExportError(f"layer {layer.name!r}: overlapping average pooling (stride {layer.stride} < size "
                              f"{layer.size}) is not mapped to hls4ml yet", "use stride = size")
        m = nn.AvgPool2d(layer.size)
    elif isinstance(layer, Flatten):
        m = nn.Flatten()
    else:  # support.require refuses every other kind first
        raise ExportError(f"layer {layer.name!r}: {layer.kind} has no hls4ml mapping", "see docs/support.md")
    if isinstance(layer, (Conv2D, Dense)):
        weight = dense_weight(layer) if isinstance(layer, Conv2D) else layer.weight  # depthwise: block-diagonal
        with torch.no_grad():
            m.weight.copy_(_float(weight, layer.weight_type.frac, f"{layer.name}.weight"))
            m.bias.copy_(_float(layer.bias, layer.out_type.frac, f"{layer.name}.bias"))
    mods.append((layer.name, m))
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

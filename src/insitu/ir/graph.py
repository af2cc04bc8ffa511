"""The QuantModel as a graph: resolved inputs, order, validation, shape and fixed-point type inference.

Layers are stored in topological order (every input comes earlier); the last layer is the output. `validate`
proves a model well formed: unique names, one Input first, no dangling input, no cycle, every branch used, the
shape rule of every kind, the allowed parameter ranges, and exact accumulators no wider than `max_acc_bits`.
Every refusal is an `ExportError` that names the layer and the allowed values.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from insitu.errors import ExportError
from insitu.ir.fixed import FixedType
from insitu.ir.layers import (MULTI_INPUT, PASS_TYPE, Add, AvgPool1D, AvgPool2D, Concatenate, Conv1D, Conv2D, Dense,
                              Flatten, GlobalAvgPool, GlobalMaxPool, Input, Layer, MaxPool1D, MaxPool2D, Requant,
                              Reshape, ScaleShift)

MAX_ACC_BITS = 52  # the integer reference computes products in float64: exact below 2**53
KERNEL, STRIDE = range(1, 8), range(1, 5)
_FIX = "rebuild the IR (re-run `insitu export`, or fix the model file)"


def resolved_inputs(layers: Sequence[Layer]) -> list[tuple[str, ...]]:
    """Each layer's input names; an empty `inputs` reads the layer before it."""
    out = []
    for i, layer in enumerate(layers):
        if isinstance(layer, Input):
            out.append(())
        elif layer.inputs:
            out.append(tuple(layer.inputs))
        else:
            out.append((layers[i - 1].name,) if i else ())
    return out


def topological_order(layers: Sequence[Layer]) -> list[Layer]:
    """The layers reordered so that every input comes first (frontends may build them in any order)."""
    by_name = {l.name: l for l in layers}
    explicit = {l.name: (tuple(l.inputs) if not isinstance(l, Input) else ()) for l in layers}
    for name, ins in explicit.items():
        if not ins and not isinstance(by_name[name], Input):
            raise ExportError(f"layer {name!r} names no input; out of a sequence every layer must",
                              "give it `inputs`")
        for src in ins:
            if src not in by_name:
                raise ExportError(f"layer {name!r} reads {src!r}, which no layer produces (a dangling input)", _FIX)
    order, done, visiting = [], set(), set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in done:
            return
        if name in visiting:
            cycle = " -> ".join(path[path.index(name):] + (name,))
            raise ExportError(f"the graph has a cycle: {cycle}", "a layer may only read layers before it")
        visiting.add(name)
        for src in explicit[name]:
            visit(src, path + (name,))
        visiting.discard(name)
        done.add(name)
        order.append(by_name[name])

    for layer in layers:
        visit(layer.name, ())
    return order


def _check_structure(layers: Sequence[Layer], partial: bool = False) -> list[tuple[str, ...]]:
    if not layers or not isinstance(layers[0], Input):
        raise ExportError("a QuantModel starts with its Input layer", _FIX)
    names = [l.name for l in layers]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ExportError(f"layer names must be unique; repeated: {', '.join(dup)}", _FIX)
    if sum(isinstance(l, Input) for l in layers) != 1:
        raise ExportError("a QuantModel has exactly one Input layer", "merge the inputs into one tensor")
    position = {n: i for i, n in enumerate(names)}
    ins = resolved_inputs(layers)
    for i, (layer, srcs) in enumerate(zip(layers, ins)):
        for src in srcs:
            if src not in position:
                raise ExportError(f"layer {layer.name!r} reads {src!r}, which no layer produces (a dangling input)",
                                  _FIX)
            if position[src] >= i:
                raise ExportError(f"layer {layer.name!r} reads {src!r}, which is not before it: the graph has a "
                                  "cycle or is out of order", "order the layers with ir.graph.topological_order")
        want = 2 if layer.kind in MULTI_INPUT else 1
        if i and (len(srcs) < want if layer.kind in MULTI_INPUT else len(srcs) != 1):
            raise ExportError(f"layer {layer.name!r} ({layer.kind}) has {len(srcs)} inputs; it takes "
                              f"{'two or more' if want == 2 else 'one'}", _FIX)
    used = {s for srcs in ins for s in srcs}
    dead = [l.name for l in layers[:-1] if l.name not in used]
    if dead and not partial:
        raise ExportError(f"the output of layer(s) {', '.join(dead)} is never used (only the last layer is the "
                          "model's output)", "remove the unused branch")
    return ins


def _window(name: str, size: int, kernel: int, stride: int, pad: tuple[int, int], what: str) -> int:
    out = (size + pad[0] + pad[1] - kernel) // stride + 1
    if size + pad[0] + pad[1] < kernel or out < 1:
        raise ExportError(f"layer {name!r}: a {what} of {kernel} with stride {stride} and padding {pad} has no valid "
                          f"output on an input of {size}", "use a smaller kernel or stride, or more padding")
    return out


def _check_range(name: str, field: str, value: int, allowed: range) -> None:
    if value not in allowed:
        raise ExportError(f"layer {name!r}: {field}={value} is not supported", f"allowed: {allowed.start} to "
                                                                              f"{allowed.stop - 1}")


def exact_acc(weight: np.ndarray, bias: np.ndarray, in_t: FixedType, frac: int) -> FixedType:
    """The narrowest type holding every output of weight . x + bias for x of type in_t."""
    w = weight.reshape(weight.shape[0], -1).astype(object)
    pos = np.array([sum(int(v) for v in row if v > 0) for row in w], dtype=object)
    neg = np.array([sum(int(v) for v in row if v < 0) for row in w], dtype=object)
    b = bias.astype(object)
    hi = pos * in_t.max_int + neg * in_t.min_int + b
    lo = pos * in_t.min_int + neg * in_t.max_int + b
    return FixedType.exact(int(min(min(lo), 0)), int(max(max(hi), 0)), frac)


def join_type(types: Sequence[FixedType], add: bool) -> FixedType:
    """The exact type of an Add (every sum of the operands' ranges) or a Concatenate of operands of `types`,
    at their finest fractional bits."""
    frac = max(t.frac for t in types)
    lo = [t.min_int << (frac - t.frac) for t in types]
    hi = [t.max_int << (frac - t.frac) for t in types]
    return FixedType.exact(sum(lo) if add else min(lo), sum(hi) if add else max(hi), frac)


def exact_mean_type(t: FixedType, count: int) -> FixedType:
    """The type holding the mean of `count` (a power of two) values of type t without rounding: log2(count) more
    fractional bits, as many more bits of width."""
    k = count.bit_length() - 1
    return FixedType(t.signed, t.width + k, t.frac + k, "TRN", "SAT")


def dense_weight(layer: Conv2D | Conv1D) -> np.ndarray:
    """The weights of a grouped (depthwise) convolution as an ungrouped one: zero outside each output's group.
    The two compute the same integers, so a backend without groups can run a depthwise layer exactly (an adder
    graph spends nothing on the zeros; an HLS multiplier array does)."""
    w, g = layer.weight, layer.groups
    if g == 1:
        return w
    o, cg = w.shape[:2]
    full = np.zeros((o, cg * g, *w.shape[2:]), w.dtype)
    og = o // g
    for gi in range(g):
        full[gi * og:(gi + 1) * og, gi * cg:(gi + 1) * cg] = w[gi * og:(gi + 1) * og]
    return full


def _conv(layer: Conv2D | Conv1D, shape: tuple[int, ...], in_t: FixedType, dims: int) -> tuple[int, ...]:
    n = layer.name
    if len(shape) != dims + 1:
        raise ExportError(f"layer {n!r}: a {dims}-D convolution needs a (C, {'H, W' if dims == 2 else 'L'}) input, "
                          f"got {shape}", "reshape the input first")
    w = layer.weight
    if w.ndim != dims + 2:
        raise ExportError(f"layer {n!r}: weight has {w.ndim} dimensions, expected {dims + 2}", _FIX)
    c, o = shape[0], w.shape[0]
    g = layer.groups
    if g not in (1, c) or c % g:
        raise ExportError(f"layer {n!r}: groups={g} on {c} channels; allowed: 1 or {c} (depthwise)", _FIX)
    if w.shape[1] * g != c or o % g:
        raise ExportError(f"layer {n!r}: weight {w.shape} does not match {c} input channels with groups={g}", _FIX)
    if layer.bias.shape != (o,):
        raise ExportError(f"layer {n!r}: bias has shape {layer.bias.shape}, expected ({o},)", _FIX)
    if dims == 2:
        kh, kw = w.shape[2:]
        sh, sw = layer.stride
        pt, pb, pl, pr = layer.padding
        for f, v in (("kernel height", kh), ("kernel width", kw)):
            _check_range(n, f, int(v), KERNEL)
        for f, v in (("stride", sh), ("stride", sw)):
            _check_range(n, f, int(v), STRIDE)
        if min(layer.padding) < 0 or pt >= kh or pb >= kh or pl >= kw or pr >= kw:
            raise ExportError(f"layer {n!r}: padding {layer.padding} (top, bottom, left, right) must be 0 to kernel-1",
                              "pad less")
        out = (o, _window(n, shape[1], kh, sh, (pt, pb), "kernel"), _window(n, shape[2], kw, sw, (pl, pr), "kernel"))
    else:
        (k,) = w.shape[2:]
        _check_range(n, "kernel", int(k), KERNEL)
        _check_range(n, "stride", int(layer.stride), STRIDE)
        pl, pr = layer.padding
        if min(pl, pr) < 0 or pl >= k or pr >= k:
            raise ExportError(f"layer {n!r}: padding {layer.padding} (left, right) must be 0 to kernel-1", "pad less")
        out = (o, _window(n, shape[1], int(k), int(layer.stride), (pl, pr), "kernel"))
    _check_acc(layer, in_t, layer.weight_type.frac)
    return out


def _check_acc(layer: Conv2D | Conv1D | Dense | ScaleShift, in_t: FixedType, wfrac: int) -> None:
    weight = layer.scale[:, None] if isinstance(layer, ScaleShift) else layer.weight
    bias = layer.shift if isinstance(layer, ScaleShift) else layer.bias
    frac = in_t.frac + wfrac
    if layer.out_type.frac != frac:
        raise ExportError(f"layer {layer.name!r}: the accumulator has {layer.out_type.frac} fractional bits; input "
                          f"({in_t.frac}) plus weights ({wfrac}) make {frac}", _FIX)
    need = exact_acc(weight, bias, in_t, frac)
    t = layer.out_type
    if t.min_int > need.min_int or t.max_int < need.max_int:
        raise ExportError(f"layer {layer.name!r}: accumulator {t.hls()} is narrower than the exact {need.hls()} its "
                          "weights need", _FIX)


def _pool(name: str, shape: tuple[int, ...], size: int, stride: int, dims: int) -> tuple[int, ...]:
    if len(shape) != dims + 1:
        raise ExportError(f"layer {name!r}: a {dims}-D pooling needs a {dims + 1}-D input, got {shape}", _FIX)
    _check_range(name, "size", size, range(1, 9))
    s = stride or size
    _check_range(name, "stride", s, range(1, 9))
    return (shape[0], *(_window(name, v, size, s, (0, 0), "window") for v in shape[1:]))


def _aligned(layer: Add | Concatenate, types: list[FixedType]) -> None:
    t = layer.out_type
    for src_t in types:
        if src_t.frac > t.frac:
            raise ExportError(f"layer {layer.name!r}: an operand has {src_t.frac} fractional bits, more than the "
                              f"output's {t.frac}: aligning it would round", "give the output at least as many fractional bits")
    lo = [st.min_int << (t.frac - st.frac) for st in types]
    hi = [st.max_int << (t.frac - st.frac) for st in types]
    need_lo, need_hi = (sum(lo), sum(hi)) if isinstance(layer, Add) else (min(lo), max(hi))
    if t.min_int > need_lo or t.max_int < need_hi:
        raise ExportError(f"layer {layer.name!r}: output {t.hls()} cannot hold every result "
                          f"({need_lo} to {need_hi} at 2^-{t.frac})", "widen the output type")


def infer(layers: Sequence[Layer], max_acc_bits: int = MAX_ACC_BITS,
          partial: bool = False) -> tuple[list[tuple[int, ...]], list[FixedType]]:
    """(shape, type) of every layer's output, validating the whole graph on the way. `partial`: a graph under
    construction (a frontend's), whose branches may not be joined yet: unused outputs are allowed."""
    ins = _check_structure(layers, partial)
    pos = {l.name: i for i, l in enumerate(layers)}
    shapes: list[tuple[int, ...]] = []
    types: list[FixedType] = []
    for layer, srcs in zip(layers, ins):
        s_in = [shapes[pos[s]] for s in srcs]
        t_in = [types[pos[s]] for s in srcs]
        n = layer.name
        if isinstance(layer, Input):
            shape, t = tuple(int(v) for v in layer.shape), layer.out_type
        elif isinstance(layer, Conv2D):
            shape, t = _conv(layer, s_in[0], t_in[0], 2), layer.out_type
        elif isinstance(layer, Conv1D):
            shape, t = _conv(layer, s_in[0], t_in[0], 1), layer.out_type
        elif isinstance(layer, Dense):
            if s_in[0] != (layer.weight.shape[1],) or layer.weight.ndim != 2:
                raise ExportError(f"layer {n!r}: expects {layer.weight.shape[1:]} inputs, gets {s_in[0]}", _FIX)
            _check_acc(layer, t_in[0], layer.weight_type.frac)
            shape, t = (int(layer.weight.shape[0]),), layer.out_type
        elif isinstance(layer, ScaleShift):
            if layer.scale.shape != (s_in[0][0],) or layer.shift.shape != (s_in[0][0],):
                raise ExportError(f"layer {n!r}: scale and shift need one value per channel ({s_in[0][0]})", _FIX)
            _check_acc(layer, t_in[0], layer.scale_type.frac)
            shape, t = s_in[0], layer.out_type
        elif isinstance(layer, Requant):
            shape, t = s_in[0], layer.out_type
        elif isinstance(layer, (MaxPool2D, AvgPool2D, MaxPool1D, AvgPool1D)):
            dims = 2 if isinstance(layer, (MaxPool2D, AvgPool2D)) else 1
            shape = _pool(n, s_in[0], int(layer.size), int(layer.stride), dims)
            t = t_in[0] if layer.kind in PASS_TYPE else layer.out_type
        elif isinstance(layer, (GlobalAvgPool, GlobalMaxPool)):
            if len(s_in[0]) < 2:
                raise ExportError(f"layer {n!r}: global pooling needs (C, ...) positions, got {s_in[0]}", _FIX)
            shape, t = (s_in[0][0],), (t_in[0] if layer.kind in PASS_TYPE else layer.out_type)
        elif isinstance(layer, Add):
            if len(set(s_in)) != 1:
                raise ExportError(f"layer {n!r}: adds tensors of shapes {s_in}; they must be equal", _FIX)
            _aligned(layer, t_in)
            shape, t = s_in[0], layer.out_type
        elif isinstance(layer, Concatenate):
            if len({s[1:] for s in s_in}) != 1:
                raise ExportError(f"layer {n!r}: concatenates shapes {s_in}; all but the channels must be equal", _FIX)
            _aligned(layer, t_in)
            shape, t = (sum(s[0] for s in s_in), *s_in[0][1:]), layer.out_type
        elif isinstance(layer, Flatten):
            shape, t = (int(np.prod(s_in[0])),), t_in[0]
        elif isinstance(layer, Reshape):
            if int(np.prod(layer.shape)) != int(np.prod(s_in[0])) or min(layer.shape) < 1:
                raise ExportError(f"layer {n!r}: cannot reshape {s_in[0]} to {tuple(layer.shape)}", _FIX)
            shape, t = tuple(int(v) for v in layer.shape), t_in[0]
        else:  # pragma: no cover - LAYER_TYPES is closed
            raise ExportError(f"unknown layer kind {getattr(layer, 'kind', layer)!r}", _FIX)
        if isinstance(layer, (AvgPool2D, AvgPool1D, GlobalAvgPool)):
            count = int(np.prod(s_in[0][1:])) if isinstance(layer, GlobalAvgPool) else \
                int(layer.size) ** (2 if isinstance(layer, AvgPool2D) else 1)
            need = t_in[0].width + int(np.ceil(np.log2(max(count, 1)))) + max(0, t.frac - t_in[0].frac) + 1
            if need > 62:
                raise ExportError(f"layer {n!r}: averaging {count} values of {t_in[0].hls()} into {t.hls()} needs "
                                  f"{need} bits of intermediate", "use fewer fractional bits in the output")
        if t.width > max_acc_bits:
            raise ExportError(f"layer {n!r}: its output needs {t.width} bits ({t.hls()}); the limit is {max_acc_bits}",
                              "use fewer weight or activation bits, or raise the accumulator limit")
        shapes.append(shape)
        types.append(t)
    return shapes, types

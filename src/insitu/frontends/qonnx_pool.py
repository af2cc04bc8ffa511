"""ONNX op handlers for joins (Add, Concat) and pooling; registered in `qonnx_ops.OPS`."""

from __future__ import annotations

import numpy as np

from insitu.frontends.qonnx_import import Act, Const, Walk
from insitu.frontends.qonnx_ops import _int_grid, _out, materialize
from insitu.ir import graph
from insitu.ir.fixed import FixedType
from insitu.ir.layers import (Add, AvgPool1D, AvgPool2D, Concatenate, Conv1D, Conv2D, Dense, GlobalAvgPool,
                              GlobalMaxPool, MaxPool1D, MaxPool2D)


# --- joins ----------------------------------------------------------------------------------------------------
def _joined(walk: Walk, irs: list[str], add: bool) -> FixedType:
    return graph.join_type([walk.type_of(s) for s in irs], add)


def add(walk: Walk, node) -> None:
    xs = [walk.get(node, n) for n in node.input]
    consts = [i for i, x in enumerate(xs) if isinstance(x, Const)]
    if len(xs) != 2 or len(consts) == 2:
        raise walk.refuse(node, "an Add of constants or of more than two tensors")
    if consts:
        _add_bias(walk, node, walk.act(node, node.input[1 - consts[0]]), xs[consts[0]])
        return
    acts = [materialize(walk, walk.act(node, n), node) for n in node.input]
    irs = [x.ir for x in acts]
    _out(walk, node, walk.add(Add(walk.new_name(node), _joined(walk, irs, True)), irs))


def _add_bias(walk: Walk, node, x: Act, c: Const) -> None:
    """x + constant: folded into the bias of the convolution or dense layer that produced x (MatMul + Add)."""
    layer = next((l for l in walk.layers if l.name == x.ir), None)
    readers = walk.model.find_consumers(node.input[0] if walk.tensors.get(node.input[0]) is x else node.input[1])
    if x.relu or not isinstance(layer, (Conv2D, Conv1D, Dense)) or len(readers) != 1:
        raise walk.refuse(node, "adds a constant to a tensor that is not the output of a convolution or matrix "
                                "product read only here", "add the constant as the layer's bias")
    n_out = layer.weight.shape[0]
    v = c.value.ravel()
    if v.size not in (1, n_out):
        raise walk.refuse(node, f"adds {c.value.shape} constants to {n_out} channels")
    extra = _int_grid(walk, node, np.broadcast_to(v, (n_out,)), layer.out_type.frac, "bias")
    layer.bias = layer.bias + extra
    t_in = walk.type_of(layer.inputs[0])
    layer.out_type = graph.exact_acc(layer.weight if not isinstance(layer, (Conv2D, Conv1D)) or layer.groups == 1
                                     else graph.dense_weight(layer), layer.bias, t_in, layer.out_type.frac)
    _out(walk, node, layer.name)


def concat(walk: Walk, node) -> None:
    axis = int(walk.attrs(node).get("axis", 1))
    if axis != 1:
        raise walk.refuse(node, f"axis={axis}; only the channel axis (1) is supported")
    irs = [materialize(walk, walk.act(node, n), node).ir for n in node.input]
    _out(walk, node, walk.add(Concatenate(walk.new_name(node), _joined(walk, irs, False)), irs))


# --- pooling --------------------------------------------------------------------------------------------------
def _pool_attrs(walk: Walk, node) -> tuple[int, int, int]:
    a = walk.attrs(node)
    k = [int(v) for v in a["kernel_shape"]]
    s = [int(v) for v in a.get("strides", k)]
    if len(set(k)) != 1 or len(set(s)) != 1:
        raise walk.refuse(node, f"kernel_shape={k}, strides={s}; square windows and strides are supported")
    if any(int(p) for p in a.get("pads", [])) or int(a.get("ceil_mode", 0)):
        raise walk.refuse(node, f"pads={list(a.get('pads', []))}, ceil_mode={a.get('ceil_mode', 0)}; pooling "
                                "without padding and with floor is supported")
    if any(int(d) != 1 for d in a.get("dilations", [])):
        raise walk.refuse(node, f"dilations={list(a['dilations'])}; only 1 is supported")
    return len(k), k[0], s[0]


def maxpool(walk: Walk, node) -> None:
    if len(node.output) > 1 and node.output[1]:
        raise walk.refuse(node, "returns indices; only the values are supported")
    dims, k, s = _pool_attrs(walk, node)
    x = walk.act(node, node.input[0])  # max commutes with a pending ReLU: it stays pending
    cls = MaxPool2D if dims == 2 else MaxPool1D
    _out(walk, node, walk.add(cls(walk.new_name(node), k, stride=s), [x.ir]), x.relu)


def _mean_type(walk: Walk, node, ir: str, count: int) -> FixedType:
    if count & (count - 1):
        raise walk.refuse(node, f"averages {count} values: the float mean has no exact fixed-point value",
                          "average a power-of-two number of values (2x2, 4x4 windows; a 4x4 or 8x8 map for global "
                          "pooling)")
    return graph.exact_mean_type(walk.type_of(ir), count)


def averagepool(walk: Walk, node) -> None:
    dims, k, s = _pool_attrs(walk, node)
    x = materialize(walk, walk.act(node, node.input[0]), node)
    cls = AvgPool2D if dims == 2 else AvgPool1D
    t = _mean_type(walk, node, x.ir, k ** dims)
    _out(walk, node, walk.add(cls(walk.new_name(node), k, t, stride=s), [x.ir]))


def _global(walk: Walk, node, x: Act, is_max: bool) -> None:
    if is_max:
        _out(walk, node, walk.add(GlobalMaxPool(walk.new_name(node)), [x.ir]), x.relu)
        return
    x = materialize(walk, x, node)
    t = _mean_type(walk, node, x.ir, int(np.prod(x.ir_shape[1:])))
    _out(walk, node, walk.add(GlobalAvgPool(walk.new_name(node), t), [x.ir]))


def global_avg(walk: Walk, node) -> None:
    _global(walk, node, walk.act(node, node.input[0]), False)


def global_max(walk: Walk, node) -> None:
    _global(walk, node, walk.act(node, node.input[0]), True)


def reduce_mean(walk: Walk, node) -> None:
    x = walk.act(node, node.input[0])
    a = walk.attrs(node)
    axes = a.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = walk.const(node, node.input[1], "axes").value.ravel()
    rank = len(x.shape) + 1
    want = set(range(2, rank))
    got = {int(v) % rank for v in (axes if axes is not None else [])}
    if got != want:
        raise walk.refuse(node, f"averages over axes {sorted(got)}; only the global mean over {sorted(want)} is "
                                "supported")
    _global(walk, node, x, False)

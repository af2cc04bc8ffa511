"""Lowering of a QuantModel graph to operations on flat vectors: what an unrolled (a sample per clock) circuit is.

Every tensor becomes its flat C-order vector (channel-major, as Flatten), so Flatten and Reshape are no-ops
and a channel concatenation is the concatenation of vectors. Every layer becomes one of six flat ops:

- `linear`: y = M x + b with integer M (O, I) and b: Conv2D / Conv1D (any padding, stride, groups), Dense and
  ScaleShift. M and b are read off the integer reference itself (b = layer(0), column i = layer(e_i) - b), so
  they are the layer's arithmetic by construction, whatever its options;
- `average`: the exact sum of each index group, then `reference.average` (AvgPool 1-D/2-D, GlobalAvgPool);
- `max`: the maximum of each index group (MaxPool 1-D/2-D at any stride, GlobalMaxPool);
- `requant`: element-wise optional ReLU and cast (Requant);
- `add`: element-wise sum of the inputs, each shifted left to the output's fractional bits (Add);
- `concat`: the inputs' vectors end to end, each shifted likewise (Concatenate);
- `alias`: the same vector under a new name (Flatten, Reshape).

`run` interprets the ops with numpy; a test keeps it equal to `reference.run` on random graphs of every kind.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from insitu.errors import ExportError
from insitu.ir import graph, reference
from insitu.ir.fixed import FixedType, requantize
from insitu.ir.layers import (Add, AvgPool1D, AvgPool2D, Concatenate, Conv1D, Conv2D, Dense, Flatten, GlobalAvgPool,
                              GlobalMaxPool, Input, MaxPool1D, MaxPool2D, Requant, Reshape, ScaleShift)
from insitu.ir.model import QuantModel

#: the largest linear matrix (outputs x inputs) an unrolled circuit is built for
MAX_MATRIX = 1 << 20


@dataclass(frozen=True)
class FlatOp:
    kind: str  # linear | average | max | requant | add | concat | alias
    name: str  # the output tensor (the IR layer's name)
    inputs: tuple[str, ...]
    size: int  # elements of the output vector
    out_type: FixedType
    matrix: np.ndarray | None = None  # linear: (O, I) ints; average: the 0/1 sum matrix
    bias: np.ndarray | None = None
    groups: np.ndarray | None = None  # max: (O, G) input indices
    count: int = 0  # average: values per group
    in_frac: int = 0  # average / requant: fractional bits of the input
    relu: bool = False
    shifts: tuple[int, ...] = ()  # add / concat: left shift of each input


def _groups(layer, shape: tuple[int, ...]) -> np.ndarray:
    """(O, G): for every output element (flat C-order) the flat input indices it pools."""
    idx = np.arange(int(np.prod(shape))).reshape(1, *shape)
    if isinstance(layer, (GlobalAvgPool, GlobalMaxPool)):
        return idx.reshape(shape[0], -1)
    dims = 2 if isinstance(layer, (MaxPool2D, AvgPool2D)) else 1
    win = reference._windows(idx, layer.size, layer.stride, dims)  # 1, C, out..., size...
    return win.reshape(-1, layer.size ** dims)


def _affine(layer, shape: tuple[int, ...], in_frac: int) -> tuple[np.ndarray, np.ndarray]:
    n_in = int(np.prod(shape))
    probe = np.zeros((1, *shape), np.int64)
    bias = reference.apply(layer, [probe], [in_frac])[0].reshape(-1)
    if n_in * bias.size > MAX_MATRIX:
        raise ExportError(f"layer {layer.name!r}: unrolled, it is a {bias.size} x {n_in} constant matrix, more than "
                          f"the {MAX_MATRIX:,} entries an unrolled circuit is built for",
                          "use the streaming architecture (rtl.architecture=streaming) or a smaller input")
    cols = []
    for i in range(0, n_in, 256):
        basis = np.zeros((min(256, n_in - i), n_in), np.int64)
        basis[np.arange(len(basis)), np.arange(i, i + len(basis))] = 1
        cols.append(reference.apply(layer, [basis.reshape(-1, *shape)], [in_frac])[0].reshape(len(basis), -1))
    return (np.concatenate(cols) - bias).T.copy(), bias


def lower(model: QuantModel) -> list[FlatOp]:
    """The flat ops of `model`, in its (topological) order; the first is the input's alias."""
    model.validate()
    shapes, types = model.shapes(), model.tensor_types()
    at = {layer.name: (shape, t) for layer, shape, t in zip(model.layers, shapes, types)}
    ins = graph.resolved_inputs(model.layers)
    ops = []
    for layer, srcs, shape, t in zip(model.layers, ins, shapes, types):
        size = int(np.prod(shape))
        src_shape, src_t = at[srcs[0]] if srcs else (shape, t)
        common = {"name": layer.name, "inputs": tuple(srcs), "size": size, "out_type": t}
        if isinstance(layer, Input):
            ops.append(FlatOp("alias", **common))
        elif isinstance(layer, (Conv2D, Conv1D, Dense, ScaleShift)):
            m, b = _affine(layer, src_shape, src_t.frac)
            ops.append(FlatOp("linear", matrix=m, bias=b, **common))
        elif isinstance(layer, (AvgPool2D, AvgPool1D, GlobalAvgPool)):
            g = _groups(layer, src_shape)
            m = np.zeros((len(g), int(np.prod(src_shape))), np.int64)
            np.put_along_axis(m, g, 1, axis=1)
            ops.append(FlatOp("average", matrix=m, bias=np.zeros(len(g), np.int64), count=g.shape[1],
                              in_frac=src_t.frac, **common))
        elif isinstance(layer, (MaxPool2D, MaxPool1D, GlobalMaxPool)):
            ops.append(FlatOp("max", groups=_groups(layer, src_shape), **common))
        elif isinstance(layer, Requant):
            ops.append(FlatOp("requant", relu=layer.relu, in_frac=src_t.frac, **common))
        elif isinstance(layer, (Add, Concatenate)):
            shifts = tuple(t.frac - at[s][1].frac for s in srcs)
            ops.append(FlatOp("add" if isinstance(layer, Add) else "concat", shifts=shifts, **common))
        elif isinstance(layer, (Flatten, Reshape)):
            ops.append(FlatOp("alias", **common))
        else:  # pragma: no cover - LAYER_TYPES is closed
            raise ExportError(f"lowering: unknown layer {layer!r}", "")
    return ops


def run(ops: list[FlatOp], x: np.ndarray) -> np.ndarray:
    """The flat ops on integer inputs (N, ...) -> the last op's integers (N, size)."""
    vals: dict[str, np.ndarray] = {}
    for op in ops:
        xs = [vals[s] for s in op.inputs]
        if not op.inputs:
            y = np.asarray(x, np.int64).reshape(len(x), -1)
        elif op.kind == "alias":
            y = xs[0]
        elif op.kind == "linear":
            y = xs[0] @ op.matrix.T + op.bias
        elif op.kind == "average":
            y = reference.average(xs[0] @ op.matrix.T, op.count, op.in_frac, op.out_type)
        elif op.kind == "max":
            y = xs[0][:, op.groups].max(axis=2)
        elif op.kind == "requant":
            y = requantize(np.maximum(xs[0], 0) if op.relu else xs[0], op.in_frac, op.out_type)
        elif op.kind == "add":
            y = sum(v << s for v, s in zip(xs, op.shifts))
        else:  # concat
            y = np.concatenate([v << s for v, s in zip(xs, op.shifts)], axis=1)
        vals[op.name] = y
    return vals[ops[-1].name]


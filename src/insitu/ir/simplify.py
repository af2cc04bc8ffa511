"""Exact rewrites of a QuantModel graph, so that frontends' literal translations map onto the backends' blocks.

Each rewrite computes the same integers as the graph it replaces (the importers' check proves it again on every
input against the source framework):
- **requant -> requant** where the second does not shift (same fractional bits) and both saturate: one requant
  to the intersection of the two ranges (an intersection of two fixed-point ranges is one); a ReLU in either
  commutes with the rounding and the clip (both monotone, both keep 0).
- **flatten -> requant**: a requant is elementwise and a flatten (or reshape) only renames positions, so the
  requant moves before it (HGQ2 quantizes a Dense's input after the Flatten; the backends' blocks end in a
  requant before it).
- **max pooling -> requant**: a requant that saturates (or clips by its ReLU) is monotone, so it commutes with
  the maximum: max(q(a), q(b)) = q(max(a, b)). A requant after a max pooling moves before it (when the pooling's
  input is read by it alone), where it can merge with the requant that made that input.
- **exact average -> requant**: an average (window or global) whose own cast is exact (its type has
  log2(count) more fractional bits than its input, enough width, count a power of two) followed by its only
  reader, a requant without ReLU (or on a value that is never negative): the average takes the requant's type,
  and computes round(sum / count) once with the requant's rounding, which is what the two did.
"""

from __future__ import annotations

from dataclasses import replace

from insitu.ir import graph
from insitu.ir.fixed import FixedType
from insitu.ir.layers import (AvgPool1D, AvgPool2D, Flatten, GlobalAvgPool, GlobalMaxPool, Layer, MaxPool1D, MaxPool2D,
                              Requant, Reshape)
from insitu.ir.model import QuantModel


def _intersect(a: FixedType, b: FixedType, relu: bool) -> FixedType | None:
    lo, hi = max(a.min_int, b.min_int, 0 if relu else a.min_int), min(a.max_int, b.max_int)
    if lo > hi:
        return None
    for signed in (False, True):
        for width in range(1, 64):
            t = FixedType(signed, width, b.frac, b.rounding, "SAT")
            if t.min_int == lo and t.max_int == hi:
                return FixedType(signed, width, b.frac, a.rounding, "SAT")
    return None


def _readers(layers: list[Layer]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {l.name: [] for l in layers}
    for layer, srcs in zip(layers, graph.resolved_inputs(layers)):
        for s in srcs:
            out[s].append(layer.name)
    return out


def _exact_average(layer: Layer, in_t: FixedType, count: int) -> bool:
    if count & (count - 1):
        return False
    k = count.bit_length() - 1
    t = layer.out_type
    return t.frac == in_t.frac + k and t.width >= in_t.width + k and t.signed == in_t.signed


def _rewrite(layers: list[Layer], averages: bool) -> bool:
    """One rewrite in place (requant pairs, or with `averages` an average and its requant); True if done."""
    shapes, types = graph.infer(layers)
    pos = {l.name: i for i, l in enumerate(layers)}
    srcs = dict(zip((l.name for l in layers), graph.resolved_inputs(layers)))
    readers = _readers(layers)
    for i, layer in enumerate(layers):
        if not isinstance(layer, Requant) or i == 0:
            continue
        (src,) = srcs[layer.name]
        prev = layers[pos[src]]
        if len(readers[src]) != 1:
            continue
        merged = None
        if not averages and isinstance(prev, Requant) and prev.out_type.saturation == "SAT" \
                and layer.out_type.saturation == "SAT" and prev.out_type.frac == layer.out_type.frac:
            t = _intersect(prev.out_type, layer.out_type, layer.relu)
            if t is not None:
                merged = replace(prev, relu=prev.relu or layer.relu, out_type=t, name=layer.name)
        elif averages and isinstance(prev, (AvgPool2D, AvgPool1D, GlobalAvgPool)):
            in_t, in_shape = types[pos[srcs[src][0]]], shapes[pos[srcs[src][0]]]
            count = (_prod(in_shape[1:]) if isinstance(prev, GlobalAvgPool)
                     else prev.size ** (2 if isinstance(prev, AvgPool2D) else 1))
            if _exact_average(prev, in_t, count) and (not layer.relu or not in_t.signed):
                merged = replace(prev, out_type=layer.out_type, name=layer.name)
        if merged is not None:
            merged.inputs = tuple(srcs[src])
            layers[i] = merged
            del layers[pos[src]]
            return True
    return False


def _swap_max(layers: list[Layer]) -> bool:
    """max pooling -> saturating requant becomes requant -> max pooling (the requant then meets its producer);
    flatten / reshape -> requant becomes requant -> flatten / reshape."""
    pos = {l.name: i for i, l in enumerate(layers)}
    srcs = dict(zip((l.name for l in layers), graph.resolved_inputs(layers)))
    readers = _readers(layers)
    for i, layer in enumerate(layers):
        if not isinstance(layer, Requant):
            continue
        (src,) = srcs[layer.name]
        if layer.out_type.saturation != "SAT" and not isinstance(layers[pos[src]], (Flatten, Reshape)):
            continue
        pool = layers[pos[src]]
        if len(readers[src]) != 1:
            continue
        if isinstance(pool, (Flatten, Reshape)):
            (before,) = srcs[src]
        elif isinstance(pool, (MaxPool2D, MaxPool1D, GlobalMaxPool)):
            (before,) = srcs[src]
            if len(readers[before]) != 1 or not isinstance(layers[pos[before]], Requant):
                continue  # only worth it when the requant can then merge with the one before
        else:
            continue
        q = replace(layer, name=f"{layer.name}_pre", inputs=(before,))
        p = replace(pool, name=layer.name, inputs=(q.name,))
        layers[pos[src]] = q
        layers[i] = p
        return True
    return False


def simplify(qm: QuantModel) -> QuantModel:
    layers = list(qm.layers)
    while _rewrite(layers, False) or _swap_max(layers) or _rewrite(layers, True):
        pass
    out = QuantModel(layers, list(qm.class_names), dict(qm.meta))
    out.validate()
    return out


def _prod(vals) -> int:
    p = 1
    for v in vals:
        p *= int(v)
    return p

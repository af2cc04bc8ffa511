"""The plan of a streaming core: the IR graph as convolution blocks, joins (residual adds and concatenations)
and the tail, with the lanes of every stage, or an `RTLError` naming the layer that does not fit.

Every stage produces a `Point`: a stream of beats of `lanes` pixels with a lane mask. A block is
Conv2D -> Requant -> [MaxPool2D | AvgPool2D]; a join is Add or Concatenate of two points of one image shape,
optionally followed by a Requant; the tail is [GlobalAvgPool | GlobalMaxPool | Flatten] -> Dense -> [Requant]
on the last point. The model input may feed one block only.
"""

from __future__ import annotations

from dataclasses import dataclass

from insitu.errors import RTLError
from insitu.ir import graph
from insitu.ir.fixed import FixedType
from insitu.ir.layers import Add, AvgPool2D, Concatenate, Conv2D, Dense, Flatten, GlobalAvgPool, GlobalMaxPool
from insitu.ir.model import MaxPool2D, QuantModel, Requant
from insitu.rtl import conv_block, pad_stream


@dataclass(frozen=True)
class Point:
    prefix: str  # Verilog signals <prefix>_v, _m (lanes bits), _d
    channels: int
    height: int
    width: int
    type: FixedType
    lanes: int

    @property
    def pixel_bits(self) -> int:
        return self.channels * self.type.width


@dataclass(frozen=True)
class Block:
    spec: conv_block.BlockSpec
    conv: Conv2D
    pad: pad_stream.PadSpec | None
    src: Point
    out: Point


@dataclass(frozen=True)
class Join:
    name: str  # Verilog prefix of the join
    kind: str  # add | concatenate
    srcs: tuple[Point, Point]
    shifts: tuple[int, int]  # left shift of each operand to out_type's fractional bits
    out_type: FixedType  # the exact sum / concatenation
    requant: Requant | None
    out: Point


def later_lanes(h: int, w: int, padding: tuple[int, int, int, int], factor: int, kw: int, pace: int,
                most: int) -> int:
    """Lanes of a stage after the first: the fewest (up to `most`) whose beats per image (of the padded raster)
    keep up with block 0's `pace`, among the lane counts its reduction allows; else the fastest of those."""
    pt, pb, pl, pr = padding
    ok = [p for p in range(1, most + 1) if p == 1 or factor == 1 or (p % factor == 0 and (kw - 1) % factor == 0)]
    beats = {p: (h + pt + pb) * -(-(w + pl + pr) // p) for p in ok}
    fast = [p for p in ok if beats[p] <= pace]
    return min(fast) if fast else min(ok, key=lambda p: (beats[p], p))


class _Planner:
    def __init__(self, model: QuantModel, lanes: int) -> None:
        self.model, self.lanes = model, lanes
        self.layers = model.layers[1:]
        self.ins = dict(zip([layer.name for layer in model.layers], graph.resolved_inputs(model.layers)))
        self.users: dict[str, int] = {}
        for srcs in self.ins.values():
            for s in srcs:
                self.users[s] = self.users.get(s, 0) + 1
        c, h, w = model.input.shape
        self.points = {model.input.name: Point("x0", c, h, w, model.input.out_type, lanes)}
        self.nodes: list[Block | Join] = []
        self.pace = 0
        self.n_blocks = 0

    def _next(self, i: int, cls, of: str):
        """layers[i] when it is a `cls` reading `of` and `of` has no other reader, else None."""
        if i < len(self.layers) and isinstance(self.layers[i], cls) and self.ins[self.layers[i].name] == (of,) \
                and self.users.get(of, 0) == 1:
            return self.layers[i]
        return None

    def block(self, i: int) -> int:
        conv = self.layers[i]
        src = self.points[self.ins[conv.name][0]]
        rq = self._next(i + 1, Requant, conv.name)
        if rq is None:
            raise RTLError(f"{conv.name}: the streaming RTL needs a requant after every convolution, read by "
                           "nothing else", "add an activation quantizer after the convolution")
        pool = self._next(i + 2, MaxPool2D, rq.name) or self._next(i + 2, AvgPool2D, rq.name)
        kh, kw = conv.weight.shape[2:]
        sh, sw = conv.stride
        if pool is not None and (sh, sw) != (1, 1):
            raise RTLError(f"{conv.name}: a strided convolution followed by pooling ({pool.name}) in one streaming "
                           "block is not supported", "use stride 1 before the pooling, or the unrolled architecture")
        if pool is not None and pool.stride not in (0, pool.size):
            raise RTLError(f"{pool.name}: overlapping pooling (stride {pool.stride} < size {pool.size}) is not "
                           "streamed", "use stride = size, or the unrolled architecture")
        if pool is not None:
            reduce, factor, sy = ("sum" if isinstance(pool, AvgPool2D) else "max"), pool.size, 0
        else:
            reduce, factor, sy = ("first" if (sh, sw) != (1, 1) else "max"), sw, sh
        pt, pbm, pl, pr = conv.padding
        c, h, w, in_t = src.channels, src.height, src.width, src.type
        if src.prefix == "x0":
            if self.n_blocks:
                raise RTLError(f"{conv.name}: the model input feeds a second layer; the streaming core reads it once",
                               "use the unrolled architecture for this graph")
            p = self.lanes
            if w % p:
                raise RTLError(f"{conv.name}: {p} pixels per clock do not divide the row width {w}",
                               f"choose lanes among the divisors of {w}")
            self.pace = (h + pt + pbm) * -(-(w + pl + pr) // p)  # block 0's beats per image set the pace
        else:
            p = later_lanes(h, w, conv.padding, factor, kw, self.pace, self.lanes)
        idx = self.n_blocks
        wf = -(-w // p) * p  # a row the lanes do not divide is completed with zeros by the repacker
        pad = None
        if any(conv.padding):
            pad = pad_stream.PadSpec(f"pad{idx}", p, c * in_t.width, h, wf, pt, pbm, pl, max(0, pr - (wf - w)))
        valid = w + pl + pr if (pad or wf != w) else 0
        bh, bw = (pad.padded_height, pad.padded_width) if pad else (h, wf)
        spec = conv_block.BlockSpec(f"blk{idx}", p, c, bh, bw, kh, factor, FixedType(in_t.signed, in_t.width, 0),
                                    rq.out_type, rq.relu, conv.out_type.frac, conv.weight.shape[0], kw=kw,
                                    reduce=reduce, avg_type=pool.out_type if isinstance(pool, AvgPool2D) else None,
                                    stride_y=sy, valid_width=valid)
        conv_block.check(spec)
        oh, ow = spec.out_hw
        out = Point(f"b{idx}", spec.out_channels, oh, ow, spec.result_type, spec.out_lanes)
        self.nodes.append(Block(spec, conv, pad, src, out))
        self.points[(pool or rq).name] = out
        self.n_blocks += 1
        return i + (3 if pool is not None else 2)

    def join(self, i: int) -> int:
        layer = self.layers[i]
        srcs = self.ins[layer.name]
        if len(srcs) != 2 or srcs[0] == srcs[1] or any(s not in self.points for s in srcs):
            raise RTLError(f"{layer.name}: the streaming core joins two different block outputs "
                           f"(this {layer.kind} reads {list(srcs)})", "use the unrolled architecture for this graph")
        a, b = (self.points[s] for s in srcs)
        if a.prefix == "x0" or b.prefix == "x0":
            raise RTLError(f"{layer.name}: a skip path from the model input is not streamed",
                           "start the residual after a first convolution, or use the unrolled architecture")
        t = layer.out_type
        rq = self._next(i + 1, Requant, layer.name)
        out_t = rq.out_type if rq else t
        lanes = later_lanes(a.height, a.width, (0, 0, 0, 0), 1, 1, self.pace, self.lanes)
        c = a.channels if isinstance(layer, Add) else a.channels + b.channels
        name = f"j{len(self.nodes)}"
        out = Point(name, c, a.height, a.width, out_t, lanes)
        self.nodes.append(Join(name, layer.kind, (a, b), (t.frac - a.type.frac, t.frac - b.type.frac), t, rq, out))
        self.points[(rq or layer).name] = out
        return i + (2 if rq else 1)


def plan(model: QuantModel, lanes: int) -> tuple[list[Block | Join], Point, list]:
    """(stages in order, the point the tail reads, the tail layers: pooling/flatten, dense, [requant])."""
    p = _Planner(model, lanes)
    layers, i = p.layers, 0
    while i < len(layers) and isinstance(layers[i], (Conv2D, Add, Concatenate)):
        i = p.block(i) if isinstance(layers[i], Conv2D) else p.join(i)
    if not p.n_blocks:
        raise RTLError("the streaming architecture needs at least one convolution",
                       "use rtl.architecture=unrolled for models without convolutions")
    last = p.nodes[-1].out
    if i < len(layers) and p.points.get(p.ins[layers[i].name][0]) is not last:
        raise RTLError(f"{layers[i].name}: the tail must read the last stage's output",
                       "use the unrolled architecture for this graph")
    tail = layers[i:]
    if len(tail) > 1 and isinstance(tail[0], (GlobalAvgPool, GlobalMaxPool)) and isinstance(tail[1], Flatten):
        tail = [tail[0], *tail[2:]]  # the flatten of a vector is a no-op
    ok = (len(tail) in (2, 3) and isinstance(tail[0], (Flatten, GlobalAvgPool, GlobalMaxPool))
          and isinstance(tail[1], Dense) and (len(tail) == 2 or isinstance(tail[2], Requant)))
    if not ok:
        kinds = ", ".join(type(t).__name__ for t in tail)
        raise RTLError("the streaming RTL builds convolution -> requant -> pooling blocks (and adds of block outputs),"
                       " then Flatten, GlobalAvgPool or GlobalMaxPool, one Dense and an optional requant; after the "
                       f"blocks it could build, this model has: {kinds}",
                       "end the model with a single dense layer after the convolution blocks, or use "
                       "rtl.architecture=unrolled (a whole input per clock: for small inputs)")
    return p.nodes, last, tail

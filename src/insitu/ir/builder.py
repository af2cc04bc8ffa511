"""Build a QuantModel graph layer by layer with exact types, as the exporters and the random graphs need.

Each method adds one layer reading named tensors and returns the new tensor's name. Accumulators are exact
(`graph.exact_acc`); alignments of Add / Concatenate take the finest fractional bits of their operands and a
width that holds every result. Activations (`requant`, `avgpool`, ...) are calibrated on sample inputs so that
they use their range: the builder runs the integer reference as it goes.
"""

from __future__ import annotations

import numpy as np

from insitu.ir import reference
from insitu.ir.fixed import FixedType
from insitu.ir.graph import exact_acc, join_type
from insitu.ir.layers import (Add, AvgPool1D, AvgPool2D, Concatenate, Conv1D, Conv2D, Dense, Flatten, GlobalAvgPool,
                              GlobalMaxPool, Input, Layer, MaxPool1D, MaxPool2D, Requant, Reshape, ScaleShift)
from insitu.ir.model import QuantModel


class GraphBuilder:
    def __init__(self, samples: np.ndarray, in_type: FixedType, rng: np.random.Generator) -> None:
        """`samples`: (N, *input_shape) integers of the input type, used to calibrate activations."""
        self.rng = rng
        self.layers: list[Layer] = [Input("inp", tuple(samples.shape[1:]), in_type)]
        self.values: dict[str, tuple[np.ndarray, int]] = {"inp": (samples.astype(np.int64), in_type.frac)}
        self.types: dict[str, FixedType] = {"inp": in_type}
        self._count = 0

    # --- plumbing --------------------------------------------------------------------------------------
    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.values[name][0].shape[1:])

    def _name(self, kind: str) -> str:
        self._count += 1
        return f"{kind}{self._count}"

    def _add(self, layer: Layer, srcs: list[str], out_type: FixedType) -> str:
        layer.inputs = tuple(srcs)
        self.layers.append(layer)
        self.values[layer.name] = reference.apply(layer, [self.values[s][0] for s in srcs],
                                                  [self.values[s][1] for s in srcs])
        self.types[layer.name] = out_type
        return layer.name

    def model(self, class_names: list[str] | None = None, meta: dict | None = None) -> QuantModel:
        out = self.shape(self.layers[-1].name)
        names = class_names or [f"out{i}" for i in range(int(np.prod(out)))]
        qm = QuantModel(list(self.layers), names, meta or {})
        qm.validate()
        return qm

    def _weights(self, shape: tuple[int, ...], bits: int) -> tuple[np.ndarray, FixedType]:
        lim = 1 << (bits - 1)
        return self.rng.integers(-lim, lim, shape), FixedType(True, bits, bits - 1)

    def _centre_bias(self, acc: np.ndarray) -> np.ndarray:
        """A bias that puts about half of each output channel's values above zero."""
        axes = (0, *range(2, acc.ndim))
        return -np.round(np.median(acc, axis=axes)).astype(np.int64)

    # --- weighted layers -------------------------------------------------------------------------------
    def _weighted(self, cls, src: str, weight: np.ndarray, wt: FixedType, **kw) -> str:
        in_t = self.types[src]
        frac = in_t.frac + wt.frac
        o = weight.shape[0]
        zero = np.zeros(o, np.int64)
        probe = cls("probe", weight, zero, wt, exact_acc(weight, zero, in_t, frac), **kw)
        acc, _ = reference.apply(probe, [self.values[src][0]], [self.values[src][1]])
        bias = self._centre_bias(acc)
        t = exact_acc(weight, bias, in_t, frac)
        return self._add(cls(self._name(cls.__name__.lower()), weight, bias, wt, t, **kw), [src], t)

    def conv2d(self, src: str, out_ch: int, k: int | tuple[int, int], bits: int = 4, stride=(1, 1),
               padding=(0, 0, 0, 0), depthwise: bool = False) -> str:
        c = self.shape(src)[0]
        kh, kw = (k, k) if isinstance(k, int) else k
        groups = c if depthwise else 1
        w, wt = self._weights((out_ch, c // groups, kh, kw), bits)
        return self._weighted(Conv2D, src, w, wt, stride=tuple(stride), padding=tuple(padding), groups=groups)

    def conv1d(self, src: str, out_ch: int, k: int, bits: int = 4, stride: int = 1, padding=(0, 0),
               depthwise: bool = False) -> str:
        c = self.shape(src)[0]
        groups = c if depthwise else 1
        w, wt = self._weights((out_ch, c // groups, k), bits)
        return self._weighted(Conv1D, src, w, wt, stride=stride, padding=tuple(padding), groups=groups)

    def dense(self, src: str, n_out: int, bits: int = 4) -> str:
        w, wt = self._weights((n_out, self.shape(src)[0]), bits)
        return self._weighted(Dense, src, w, wt)

    def scaleshift(self, src: str, bits: int = 4) -> str:
        c = self.shape(src)[0]
        in_t = self.types[src]
        scale, st = self._weights((c,), bits)
        frac = in_t.frac + st.frac
        shift = self.rng.integers(-(1 << (in_t.width // 2)), 1 << (in_t.width // 2), c) << st.frac
        t = exact_acc(scale[:, None], shift, in_t, frac)
        return self._add(ScaleShift(self._name("scaleshift"), scale, shift, st, t), [src], t)

    # --- activations and pooling -----------------------------------------------------------------------
    def _calibrated(self, values: np.ndarray, frac: int, bits: int, signed: bool, rounding: str,
                    saturation: str) -> FixedType:
        p95 = max(float(np.percentile(np.abs(values), 95)), 1.0)
        top = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
        return FixedType(signed, bits, frac + int(np.floor(np.log2(top / p95))), rounding, saturation)

    def requant(self, src: str, relu: bool = True, bits: int = 4, signed: bool = False, rounding: str = "RND_CONV",
                saturation: str = "SAT") -> str:
        x, frac = self.values[src]
        t = self._calibrated(np.maximum(x, 0) if relu else x, frac, bits, signed and not relu, rounding, saturation)
        return self._add(Requant(self._name("requant"), relu, t), [src], t)

    def maxpool(self, src: str, size: int, stride: int = 0) -> str:
        cls = MaxPool2D if len(self.shape(src)) == 3 else MaxPool1D
        return self._add(cls(self._name("maxpool"), size, stride=stride), [src], self.types[src])

    def _avg_type(self, src: str, extra_frac: int, rounding: str) -> FixedType:
        t = self.types[src]
        return FixedType(t.signed, t.width + extra_frac, t.frac + extra_frac, rounding, "SAT")

    def avgpool(self, src: str, size: int, stride: int = 0, extra_frac: int = 2, rounding: str = "RND_CONV") -> str:
        cls = AvgPool2D if len(self.shape(src)) == 3 else AvgPool1D
        t = self._avg_type(src, extra_frac, rounding)
        return self._add(cls(self._name("avgpool"), size, t, stride=stride), [src], t)

    def global_avgpool(self, src: str, extra_frac: int = 2, rounding: str = "RND_CONV") -> str:
        t = self._avg_type(src, extra_frac, rounding)
        return self._add(GlobalAvgPool(self._name("gap"), t), [src], t)

    def global_maxpool(self, src: str) -> str:
        return self._add(GlobalMaxPool(self._name("gmp")), [src], self.types[src])

    # --- joins and shapes ------------------------------------------------------------------------------
    def _joined(self, srcs: list[str], add: bool) -> FixedType:
        return join_type([self.types[s] for s in srcs], add)

    def add(self, *srcs: str) -> str:
        t = self._joined(list(srcs), add=True)
        return self._add(Add(self._name("add"), t), list(srcs), t)

    def concatenate(self, *srcs: str) -> str:
        t = self._joined(list(srcs), add=False)
        return self._add(Concatenate(self._name("concat"), t), list(srcs), t)

    def flatten(self, src: str) -> str:
        return self._add(Flatten(self._name("flatten")), [src], self.types[src])

    def reshape(self, src: str, shape: tuple[int, ...]) -> str:
        return self._add(Reshape(self._name("reshape"), tuple(shape)), [src], self.types[src])

"""The layer kinds of the QuantModel IR: plain dataclasses holding integer weights and fixed-point types.

Every layer has a unique `name` and names its input tensors in `inputs` (a tensor is named after the layer that
produces it); an empty `inputs` means "the layer before me", so a plain sequence needs no names at all. Layout is
channel-first: (C, H, W) for images, (C, L) for sequences, (N,) for vectors; Flatten is channel-major, as in
PyTorch. The arithmetic of every kind is written down in docs/ir.md and implemented, with integers only, in
`ir/reference.py`. `LAYER_TYPES` is the registry: a kind that is not in it does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from insitu.ir.fixed import FixedType


@dataclass
class Input:
    name: str
    shape: tuple[int, ...]  # (C, H, W) or (C, L) or (N,)
    out_type: FixedType
    kind: str = "input"
    inputs: tuple[str, ...] = ()


@dataclass
class Conv2D:
    """Zero-padded, strided, optionally depthwise 2-D convolution; the output is the exact accumulator."""

    name: str
    weight: np.ndarray  # (O, C // groups, KH, KW) int
    bias: np.ndarray  # (O,) int at out_type.frac
    weight_type: FixedType
    out_type: FixedType  # exact accumulator
    kind: str = "conv2d"
    inputs: tuple[str, ...] = ()
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, bottom, left, right (zeros)
    groups: int = 1


@dataclass
class Conv1D:
    """Zero-padded, strided, optionally depthwise 1-D convolution over (C, L)."""

    name: str
    weight: np.ndarray  # (O, C // groups, K) int
    bias: np.ndarray
    weight_type: FixedType
    out_type: FixedType
    kind: str = "conv1d"
    inputs: tuple[str, ...] = ()
    stride: int = 1
    padding: tuple[int, int] = (0, 0)  # left, right
    groups: int = 1


@dataclass
class Dense:
    name: str
    weight: np.ndarray  # (O, I) int
    bias: np.ndarray  # (O,) int at out_type.frac
    weight_type: FixedType
    out_type: FixedType
    kind: str = "dense"
    inputs: tuple[str, ...] = ()


@dataclass
class Requant:
    """Optional ReLU, then cast to out_type with its rounding and saturation. ReLU into a saturating type is a
    clipped ReLU (it saturates at the type's maximum); without ReLU it is the identity activation, signed or not."""

    name: str
    relu: bool
    out_type: FixedType
    kind: str = "requant"
    inputs: tuple[str, ...] = ()


@dataclass
class ScaleShift:
    """Per-channel y = x * scale[c] + shift[c], exact (a batch norm that could not be folded into the layer before
    it); scale is an integer at scale_type.frac, shift an integer at out_type.frac."""

    name: str
    scale: np.ndarray  # (C,) int
    shift: np.ndarray  # (C,) int at out_type.frac
    scale_type: FixedType
    out_type: FixedType  # exact
    kind: str = "scaleshift"
    inputs: tuple[str, ...] = ()


@dataclass
class MaxPool2D:
    name: str
    size: int
    kind: str = "maxpool2d"
    inputs: tuple[str, ...] = ()
    stride: int = 0  # 0: equal to size (non-overlapping); windows that do not fit are dropped (floor)


@dataclass
class MaxPool1D:
    name: str
    size: int
    kind: str = "maxpool1d"
    inputs: tuple[str, ...] = ()
    stride: int = 0


@dataclass
class AvgPool2D:
    """The exact window sum, then times 1/(size*size) cast to out_type (see docs/ir.md for the rounding)."""

    name: str
    size: int
    out_type: FixedType
    kind: str = "avgpool2d"
    inputs: tuple[str, ...] = ()
    stride: int = 0


@dataclass
class AvgPool1D:
    name: str
    size: int
    out_type: FixedType
    kind: str = "avgpool1d"
    inputs: tuple[str, ...] = ()
    stride: int = 0


@dataclass
class GlobalAvgPool:
    """Average over every position of each channel ((C,H,W) or (C,L) -> (C,)), rounded as AvgPool."""

    name: str
    out_type: FixedType
    kind: str = "globalavgpool"
    inputs: tuple[str, ...] = ()


@dataclass
class GlobalMaxPool:
    name: str
    kind: str = "globalmaxpool"
    inputs: tuple[str, ...] = ()


@dataclass
class Add:
    """Element-wise sum of two tensors of one shape, each aligned (exactly) to out_type's fractional bits."""

    name: str
    out_type: FixedType  # exact: wide enough for every sum of the operands' ranges
    kind: str = "add"
    inputs: tuple[str, ...] = ()


@dataclass
class Concatenate:
    """Channel concatenation (axis 0 of (C, ...)); operands aligned exactly to out_type's fractional bits."""

    name: str
    out_type: FixedType
    kind: str = "concatenate"
    inputs: tuple[str, ...] = ()


@dataclass
class Flatten:
    name: str
    kind: str = "flatten"
    inputs: tuple[str, ...] = ()


@dataclass
class Reshape:
    name: str
    shape: tuple[int, ...]
    kind: str = "reshape"
    inputs: tuple[str, ...] = ()


Layer = (Input | Conv2D | Conv1D | Dense | Requant | ScaleShift | MaxPool2D | MaxPool1D | AvgPool2D | AvgPool1D
         | GlobalAvgPool | GlobalMaxPool | Add | Concatenate | Flatten | Reshape)
LAYER_TYPES: dict[str, type] = {c.kind: c for c in (  # type: ignore[attr-defined]
    Input, Conv2D, Conv1D, Dense, Requant, ScaleShift, MaxPool2D, MaxPool1D, AvgPool2D, AvgPool1D, GlobalAvgPool,
    GlobalMaxPool, Add, Concatenate, Flatten, Reshape)}
#: kinds whose output type is their (first) input's type
PASS_TYPE = ("maxpool2d", "maxpool1d", "globalmaxpool", "flatten", "reshape")
#: kinds with two or more inputs
MULTI_INPUT = ("add", "concatenate")

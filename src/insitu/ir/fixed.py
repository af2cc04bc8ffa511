"""Fixed-point types and the two integer operations every backend must reproduce: rounding shift, saturation.

A value of type FixedType(signed, width, frac) is an integer q with value q * 2**-frac, in
[-2**(width-1), 2**(width-1)-1] (signed) or [0, 2**width-1] (unsigned). `hls()` spells the same type for
hls4ml/Vitis (ap_fixed<W, I, Q, O> with I = width - frac integer bits).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

Rounding = Literal["TRN", "RND", "RND_CONV"]
Saturation = Literal["WRAP", "SAT"]


@dataclass(frozen=True)
class FixedType:
    signed: bool
    width: int
    frac: int
    rounding: Rounding = "TRN"
    saturation: Saturation = "WRAP"

    @property
    def int_bits(self) -> int:
        return self.width - self.frac

    @property
    def min_int(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_int(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    def hls(self) -> str:
        base = f"ap_{'' if self.signed else 'u'}fixed<{self.width},{self.int_bits}"
        if self.rounding == "TRN" and self.saturation == "WRAP":
            return base + ">"
        return base + f",AP_{self.rounding},AP_{self.saturation}>"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FixedType:
        return cls(**d)

    @classmethod
    def exact(cls, lo: int, hi: int, frac: int) -> FixedType:
        """The narrowest type holding every integer in [lo, hi] at `frac` fractional bits, without rounding."""
        signed = lo < 0
        width = 1
        while True:
            t = cls(signed, width, frac)
            if t.min_int <= lo and hi <= t.max_int:
                return t
            width += 1


def round_shift(q: np.ndarray, shift: int, rounding: Rounding) -> np.ndarray:
    """q * 2**-shift as an integer: exact for shift <= 0; for shift > 0 truncation (TRN: floor), round half up
    (RND: towards plus infinity, ap_fixed AP_RND, HGQ2's default) or round half to even (RND_CONV: torch.round,
    Brevitas, QKeras, ap_fixed AP_RND_CONV)."""
    q = q.astype(np.int64)
    if shift <= 0:
        return q << (-shift)
    floor = q >> shift
    if rounding == "TRN":
        return floor
    rem = q - (floor << shift)
    half = 1 << (shift - 1)
    if rounding == "RND":
        return floor + (rem >= half).astype(np.int64)
    up = (rem > half) | ((rem == half) & ((floor & 1) == 1))
    return floor + up.astype(np.int64)


def saturate(q: np.ndarray, t: FixedType) -> np.ndarray:
    if t.saturation == "SAT":
        return np.clip(q, t.min_int, t.max_int)
    span = 1 << t.width
    wrapped = (q - t.min_int) % span + t.min_int
    return wrapped


def requantize(q: np.ndarray, frac_in: int, t: FixedType) -> np.ndarray:
    """An integer at frac_in fractional bits cast to type t (its rounding, then its overflow mode)."""
    return saturate(round_shift(q, frac_in - t.frac, t.rounding), t)

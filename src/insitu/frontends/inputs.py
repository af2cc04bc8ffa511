"""The model's input quantizer: user floats -> the integer codes the firmware receives, exactly as the source does.

A user feeds floats to their framework; the model's first quantizer (a QONNX Quant node, a Keras input
quantizer) turns them into integers q with value q * 2**-frac. `InputQuant` reproduces that mapping bit for bit
(the division by a power-of-two scale is exact in float64; then the source's clip and rounding, in the source's
order), so it is part of the reference. It is stored in the QuantModel's meta (`meta["input_quant"]`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from insitu.errors import DataError

#: the rounding modes of QONNX's Quant / Trunc (and the names HGQ2 and QKeras map to) -> numpy's function
ROUNDING_FUNCS = {
    "ROUND": np.round,  # half to even
    "HALF_EVEN": np.round,
    "FLOOR": np.floor,
    "CEIL": np.ceil,
    "DOWN": np.fix,  # towards zero
    "UP": lambda x: np.sign(x) * np.ceil(np.abs(x)),  # away from zero
    "HALF_UP": lambda x: np.sign(x) * np.floor(np.abs(x) + 0.5),  # half away from zero (QONNX's definition)
    "HALF_DOWN": lambda x: np.sign(x) * np.ceil(np.abs(x) - 0.5),
    # ap_fixed's names, as HGQ2 uses them
    "RND": lambda x: np.floor(x + 0.5),  # half up, towards plus infinity
    "RND_CONV": np.round,
    "TRN": np.floor,
}


@dataclass(frozen=True)
class InputQuant:
    frac: int  # scale = 2**-frac
    bits: int
    signed: bool
    narrow: bool
    rounding_mode: str  # one of ROUNDING_FUNCS
    wrap: bool = False  # overflow wraps (HGQ2's WRAP: round, then keep the low bits) instead of clipping

    @property
    def min_int(self) -> int:
        if not self.signed:
            return 0
        return -(1 << (self.bits - 1)) + (1 if self.narrow else 0)

    @property
    def max_int(self) -> int:
        if self.signed:
            return (1 << (self.bits - 1)) - 1
        return (1 << self.bits) - (2 if self.narrow else 1)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> InputQuant:
        return cls(**d)

    def codes(self, x: np.ndarray) -> np.ndarray:
        """The integer codes of float inputs: the cast to the model's float32 input, then clip(x / scale) and the
        rounding, as QONNX's int_quant (and Keras' quantizers) compute them."""
        y = np.asarray(x, dtype=np.float32).astype(np.float64) * 2.0 ** self.frac  # exact: a power-of-two scale
        if self.wrap:
            q = ROUNDING_FUNCS[self.rounding_mode](y).astype(np.int64)
            return (q - self.min_int) % (1 << self.bits) + self.min_int
        y = np.clip(y, self.min_int, self.max_int)
        return ROUNDING_FUNCS[self.rounding_mode](y).astype(np.int64)

    def values(self, codes: np.ndarray) -> np.ndarray:
        return codes.astype(np.float64) * 2.0 ** -self.frac

    def random(self, n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
        """Seeded float inputs covering the quantizer's whole range: every code from min to max is hit in
        proportion (uniform codes), plus values between codes (ties included) and a little beyond each end,
        where the quantizer saturates."""
        rng = np.random.default_rng(seed)
        lo, hi = self.min_int, self.max_int
        codes = rng.integers(lo, hi + 1, size=(n, *shape)).astype(np.float64)
        offset = rng.choice(np.array([0.0, 0.5, -0.5, 0.25, -0.25]), size=codes.shape)
        x = codes + offset
        edge = rng.random(codes.shape) < 0.02  # out of range: the clip is exercised too
        x = np.where(edge, np.where(rng.random(codes.shape) < 0.5, lo - 3.0, hi + 3.0), x)
        return x * 2.0 ** -self.frac


def check_inputs(x: np.ndarray, shape: tuple[int, ...], where: str) -> np.ndarray:
    """User inputs as float64 of shape (N, *shape); a clear error for a wrong shape, dtype or non-finite values."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{where}: inputs have dtype {arr.dtype}, not numbers",
                        "save the inputs as a float or integer array (np.savez(path, x=x))")
    if arr.shape[1:] != tuple(shape):
        if arr.shape == tuple(shape):
            arr = arr[None]
        else:
            want = ", ".join(map(str, shape))
            raise DataError(f"{where}: inputs have shape {arr.shape}, the model takes (N, {want})",
                            "give one input per row, shaped as the model's input without the batch axis")
    if len(arr) == 0:
        raise DataError(f"{where}: no inputs", "give at least one input")
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = np.argwhere(bad)[0]
        at = tuple(int(i) for i in idx[1:])
        raise DataError(f"{where}: input {int(idx[0])} holds a NaN or infinite value (at {at})",
                        "a quantizer maps NaN to no integer: clean or drop those inputs")
    return arr


def load_inputs(path, shape: tuple[int, ...]) -> np.ndarray:
    """`x` from an .npz file (no pickle), checked against the model's input shape."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if "x" not in z:
                raise DataError(f"{path}: no array named 'x' (has {', '.join(z.files) or 'nothing'})",
                                "save the inputs with np.savez(path, x=inputs)")
            x = z["x"]
    except DataError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"cannot read inputs {path}: {exc}", "pass an .npz file written by np.savez with key 'x'") \
            from None
    return check_inputs(x, shape, str(path))

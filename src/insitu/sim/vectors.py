"""Test vectors shared by every backend: the images, their labels and the reference's integer outputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from insitu.errors import DataError
from insitu.rundir import atomic_savez


@dataclass(frozen=True)
class Vectors:
    images: np.ndarray  # (N,H,W) uint8
    labels: np.ndarray  # (N,)
    expected: np.ndarray  # (N,K) int64, reference outputs
    output_frac: int

    def expected_real(self) -> np.ndarray:
        return self.expected.astype(np.float64) * 2.0 ** -self.output_frac

    def head(self, n: int) -> Vectors:
        if n <= 0 or n >= len(self.images):
            return self
        return Vectors(self.images[:n], self.labels[:n], self.expected[:n], self.output_frac)


def save_vectors(path: Path, images: np.ndarray, labels: np.ndarray, expected: np.ndarray, frac: int,
                 **extra: np.ndarray) -> Path:
    """`extra` arrays ride along (`insitu compile` keeps `x`, the inputs as given, and `y`, the reference outputs
    in the model's units); the backends read only images / labels / expected."""
    atomic_savez(path, images=images, labels=labels, expected=expected, output_frac=np.asarray(frac), **extra)
    return path


def load_vectors(path: Path) -> Vectors:
    try:
        with np.load(path, allow_pickle=False) as z:
            return Vectors(z["images"], z["labels"], z["expected"], int(z["output_frac"]))
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"cannot read test vectors {path}: {exc}", "re-run `insitu export`") from None

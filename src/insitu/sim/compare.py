"""Bit-exact comparison of a backend's outputs with the integer reference; never a tolerance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def first_mismatches(expected: np.ndarray, got: np.ndarray, name_a: str, name_b: str, limit: int = 3) -> str:
    bad = np.where(~np.all(expected == got, axis=1))[0]
    lines = []
    for i in bad[:limit]:
        lines.append(f"  sample {i}: {name_a} {np.array2string(expected[i], precision=10)} "
                     f"vs {name_b} {np.array2string(got[i], precision=10)}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Comparison:
    vectors: int
    bit_exact_vectors: int
    report: str  # first failing samples, empty when all equal

    @property
    def ok(self) -> bool:
        return self.vectors == self.bit_exact_vectors and self.vectors > 0

    def to_dict(self) -> dict:
        return {"vectors": self.vectors, "bit_exact_vectors": self.bit_exact_vectors,
                "first_mismatches": self.report}


def compare(expected: np.ndarray, got: np.ndarray, name: str) -> Comparison:
    """Row-wise exact equality of integer outputs (N, K)."""
    if expected.shape != got.shape:
        return Comparison(int(len(expected)), 0, f"shape mismatch: reference {expected.shape} vs {name} {got.shape}")
    exact = np.all(expected == got, axis=1)
    return Comparison(int(len(exact)), int(exact.sum()), first_mismatches(expected, got, "reference", name))

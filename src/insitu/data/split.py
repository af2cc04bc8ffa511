"""Stratified train / pool / test splits that fit the data they are cut from.

`plan(y, asked, seed)` draws the parts from one labelled array. When the data holds fewer images than the
parts ask for, every part is scaled in proportion (`scaled=True`); otherwise each part gets what it asked for.
Every class is represented in every part in proportion to its size, with at least `MIN_PER_CLASS[part]`
images of each class there (a class too small for that is a `DataError` naming it). Which images land where is
seeded, so the same data and seed give the same split.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from insitu.errors import DataError

#: Images of every class that each part must hold when it is not empty: the teacher and the ablation need
#: every class among the labels, the accuracy needs every class among the test images; the pool is unlabelled
#: and takes a class's share only when the class has images to spare.
MIN_PER_CLASS = {"train": 1, "pool": 0, "test": 1}


@dataclass
class Split:
    parts: dict[str, np.ndarray]  # part -> indices into y (shuffled)
    asked: dict[str, int]
    available: int
    scaled: bool
    per_class: dict[str, dict[str, int]] = field(default_factory=dict)

    def describe(self) -> dict:
        used = {p: int(len(i)) for p, i in self.parts.items()}
        out = {"asked": dict(self.asked), "used": used, "available": self.available, "scaled": self.scaled,
               "per_class": self.per_class}
        if self.scaled:
            out["note"] = (f"the data holds {self.available} images, fewer than the {sum(self.asked.values())} asked "
                           f"for ({', '.join(f'{p} {n}' for p, n in self.asked.items())}): every part was scaled "
                           f"in proportion to {', '.join(f'{p} {n}' for p, n in used.items())}")
        return out


def _largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """Non-negative integers proportional to `weights`, summing to `total`."""
    if total <= 0 or weights.sum() <= 0:
        return np.zeros(len(weights), np.int64)
    raw = weights / weights.sum() * total
    out = np.floor(raw).astype(np.int64)
    for i in np.argsort(-(raw - out), kind="stable")[: total - int(out.sum())]:
        out[i] += 1
    return out


def _targets(asked: dict[str, int], n: int) -> tuple[dict[str, int], bool]:
    want = sum(asked.values())
    if want <= n:
        return dict(asked), False
    sizes = _largest_remainder(np.array([asked[p] for p in asked], np.float64), n)
    return dict(zip(asked, sizes.tolist())), True


def plan(y: np.ndarray, asked: dict[str, int], seed: int, class_names: list[str] | None = None,
         source: str = "the data") -> Split:
    """Split labels `y` (0..K-1) into the parts of `asked` (part -> images), stratified by class."""
    y = np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    names = class_names or [f"class {c}" for c in range(int(classes.max()) + 1 if len(classes) else 0)]
    targets, scaled = _targets(asked, len(y))
    active = [p for p in asked if targets[p] > 0]
    need = {p: MIN_PER_CLASS.get(p, 0) for p in active}
    need_total = sum(need.values())
    small = [(names[int(c)], int(k)) for c, k in zip(classes, counts) if k < need_total]
    if small:
        desc = ", ".join(f"{name!r} has {k}" for name, k in small)
        raise DataError(f"{source}: {desc} image(s); every class needs at least {need_total} "
                        f"({', '.join(f'{need[p]} for {p}' for p in active if need[p])})",
                        "add images of that class, or drop the class and renumber the labels")
    # Start from the per-class minimum, then share what each part still needs in proportion to what every
    # class has left; the proportional shares never exceed a class's supply because no part asks for more
    # images than remain.
    alloc = {p: np.full(len(classes), need[p], np.int64) for p in active}
    supply = counts - sum(alloc.values()) if active else counts.copy()
    for p in active:
        extra = max(0, targets[p] - int(alloc[p].sum()))
        share = _largest_remainder(supply.astype(np.float64), min(extra, int(supply.sum())))
        share = np.minimum(share, supply)
        alloc[p] += share
        supply = supply - share
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {p: [] for p in asked}
    for ci, c in enumerate(classes):
        members = rng.permutation(np.flatnonzero(y == c))
        pos = 0
        for p in active:
            k = int(alloc[p][ci])
            parts[p].append(members[pos:pos + k])
            pos += k
    out = {p: rng.permutation(np.concatenate(v)) if v else np.zeros(0, np.int64) for p, v in parts.items()}
    per_class = {names[int(c)]: {p: int(alloc[p][ci]) if p in alloc else 0 for p in asked}
                 for ci, c in enumerate(classes)}
    return Split(out, dict(asked), int(len(y)), scaled, per_class)

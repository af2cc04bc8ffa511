"""The cell dataset of a run: labelled train split, unlabelled pool, test split, at the model's input size.

`prepare(cfg)` builds it from the configured source (synthetic, LymphoMNIST IDX, folder, .npz); images are
resized to `image_size` (antialiased bilinear) and kept as uint8, so the student's 8-bit input (pixel/256)
is exact. The synthetic set is cached on disk with a SHA-256 and regenerated when the cache is damaged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from insitu.config import DataConfig
from insitu.data import byo, idx, split, synth_cells
from insitu.data.npz import load_arrays
from insitu.errors import DataError
from insitu.rundir import atomic_savez, atomic_write_text, sha256_file

log = logging.getLogger(__name__)
GENERATOR_VERSION = 1
DARK_LEVEL = 64  # images whose brightest pixel stays below this are reported as too dark to train well
_CHUNK = 400


@dataclass
class CellData:
    name: str
    class_names: list[str]
    train_x: np.ndarray
    train_y: np.ndarray
    pool_x: np.ndarray
    pool_y: np.ndarray  # kept for evaluation only; -1 where unknown
    test_x: np.ndarray
    test_y: np.ndarray
    source: dict = field(default_factory=dict)

    @property
    def image_size(self) -> int:
        return int(self.train_x.shape[-1])

    def checksum(self) -> str:
        h = hashlib.sha256()
        for a in (self.train_x, self.train_y, self.pool_x, self.test_x, self.test_y):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()

    def describe(self) -> dict:
        return {"name": self.name, "classes": self.class_names, "image_size": self.image_size,
                "sizes": {"train": len(self.train_y), "pool": len(self.pool_x), "test": len(self.test_y)},
                "checksum": self.checksum(), "source": self.source}

    def save(self, path: Path) -> None:
        atomic_savez(path, train_x=self.train_x, train_y=self.train_y, pool_x=self.pool_x, pool_y=self.pool_y,
                     test_x=self.test_x, test_y=self.test_y, class_names=np.asarray(self.class_names),
                     meta=np.asarray(json.dumps({"name": self.name, "source": self.source})))

    @classmethod
    def load(cls, path: Path) -> CellData:
        fix = "re-run `insitu data` for this run"
        z = load_arrays(path, "prepared dataset", fix)
        try:
            meta = json.loads(str(z["meta"]))
            return cls(meta["name"], [str(c) for c in z["class_names"]], z["train_x"], z["train_y"],
                       z["pool_x"], z["pool_y"], z["test_x"], z["test_y"], meta["source"])
        except (KeyError, ValueError, TypeError) as exc:
            raise DataError(f"prepared dataset {path} is incomplete ({type(exc).__name__}: {exc})", fix) from None


def resize_u8(x: np.ndarray, size: int) -> np.ndarray:
    """(N,H,W) uint8 -> (N,size,size) uint8, antialiased bilinear."""
    if x.shape[1:] == (size, size):
        return x
    import torch
    import torch.nn.functional as F

    out = []
    for i in range(0, len(x), 2048):
        t = torch.from_numpy(x[i:i + 2048].astype(np.float32))[:, None]
        r = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out.append(np.clip(np.round(r[:, 0].numpy()), 0, 255).astype(np.uint8))
    return np.concatenate(out) if out else np.zeros((0, size, size), np.uint8)


# --- synthetic -----------------------------------------------------------------------------------------
def cache_dir() -> Path:
    return Path(os.environ.get("INSITU_CACHE", Path.home() / ".cache" / "insitu"))


def _gen_chunk(args: tuple[int, int, int, float]) -> tuple[np.ndarray, np.ndarray]:
    n, seed, classes, separation = args
    return synth_cells.generate(n, seed, classes, separation)


def _generate(n: int, seed_seq: np.random.SeedSequence, classes: int, separation: float, workers: int) -> tuple[np.ndarray, np.ndarray]:
    sizes = [min(_CHUNK, n - i) for i in range(0, n, _CHUNK)]
    seeds = [int(s.generate_state(1)[0]) for s in seed_seq.spawn(len(sizes))]
    jobs = [(k, s, classes, separation) for k, s in zip(sizes, seeds)]
    parts = []
    with Progress(TextColumn("rendering cells"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), transient=True) as bar:
        task = bar.add_task("cells", total=n)
        if workers > 1 and len(jobs) > 1:
            with ProcessPoolExecutor(workers) as pool:
                for part in pool.map(_gen_chunk, jobs):
                    parts.append(part)
                    bar.advance(task, len(part[1]))
        else:
            for job in jobs:
                parts.append(_gen_chunk(job))
                bar.advance(task, job[0])
    if not parts:
        return np.zeros((0, synth_cells.SIZE, synth_cells.SIZE), np.uint8), np.zeros(0, np.int64)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def synthetic(cfg: DataConfig, workers: int | None = None) -> CellData:
    """The built-in synthetic set (64x64 native, resized to cfg.image_size), cached with a checksum."""
    key = hashlib.sha256(json.dumps([GENERATOR_VERSION, cfg.seed, cfg.classes, cfg.n_train, cfg.n_pool,
                                     cfg.n_test, cfg.separation]).encode()).hexdigest()[:16]
    path = cache_dir() / "synthetic" / f"cells-{key}.npz"
    names = list(synth_cells.CLASS_NAMES_3) if cfg.classes == 3 else ["B", "T"]
    source = {"kind": "synthetic", "generator_version": GENERATOR_VERSION, "seed": cfg.seed,
              "separation": cfg.separation, "cache_key": key}
    arrays = _read_cache(path)
    if arrays is None:
        workers = workers or min(2, os.cpu_count() or 1)
        root = np.random.SeedSequence(cfg.seed)
        s_train, s_pool, s_test = root.spawn(3)
        tx, ty = _generate(cfg.n_train, s_train, cfg.classes, cfg.separation, workers)
        px, py = _generate(cfg.n_pool, s_pool, cfg.classes, cfg.separation, workers)
        vx, vy = _generate(cfg.n_test, s_test, cfg.classes, cfg.separation, workers)
        arrays = {"train_x": tx, "train_y": ty, "pool_x": px, "pool_y": py, "test_x": vx, "test_y": vy}
        _write_cache(path, arrays)
    d = {k: (resize_u8(v, cfg.image_size) if k.endswith("_x") else v) for k, v in arrays.items()}
    return CellData("synthetic-lymphocytes", names, d["train_x"], d["train_y"], d["pool_x"], d["pool_y"],
                    d["test_x"], d["test_y"], source)


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
    digest = path.with_suffix(".sha256")
    if not (path.is_file() and digest.is_file()):
        return None
    if sha256_file(path) != digest.read_text().strip():
        log.warning("synthetic data cache %s is corrupt (checksum mismatch): regenerating", path)
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        log.warning("synthetic data cache %s unreadable (%s): regenerating", path, exc)
        return None


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    try:
        atomic_savez(path, **arrays)
        atomic_write_text(path.with_suffix(".sha256"), sha256_file(path) + "\n")
    except OSError as exc:  # a read-only cache only costs time
        log.warning("could not write data cache %s: %s", path, exc)


# --- files on disk -------------------------------------------------------------------------------------
def _merge_splits(*splits: split.Split) -> dict:
    """One description of the parts drawn from one or more source arrays (LymphoMNIST: train and test files)."""
    out = {"asked": {}, "used": {}, "available": 0, "scaled": False, "per_class": {}, "notes": []}
    for s in splits:
        d = s.describe()
        out["asked"].update(d["asked"])
        out["used"].update(d["used"])
        out["available"] += d["available"]
        out["scaled"] |= d["scaled"]
        for name, parts in d["per_class"].items():
            out["per_class"].setdefault(name, {}).update(parts)
        if "note" in d:
            out["notes"].append(d["note"])
    return out


def from_files(cfg: DataConfig) -> CellData:
    assert cfg.path is not None
    if cfg.source == "lymphomnist":
        trx, try_, tex, tey = idx.load_lymphomnist(cfg.path, cfg.classes)
        names = ["B", "T4", "T8"] if cfg.classes == 3 else ["B", "T"]
        s_tr = split.plan(try_, {"train": cfg.n_train, "pool": cfg.n_pool}, cfg.seed, names,
                          f"{cfg.path} (train files)")
        s_te = split.plan(tey, {"test": cfg.n_test}, cfg.seed + 1, names, f"{cfg.path} (test files)")
        tr, po, te = s_tr.parts["train"], s_tr.parts["pool"], s_te.parts["test"]
        parts = (trx[tr], try_[tr], trx[po], try_[po], tex[te], tey[te])
        info = _merge_splits(s_tr, s_te)
    else:
        x, y, names, adapted = byo.load_folder(cfg.path) if cfg.source == "folder" else byo.load_npz(cfg.path)
        s = split.plan(y, {"train": cfg.n_train, "pool": cfg.n_pool, "test": cfg.n_test}, cfg.seed, names,
                       str(cfg.path))
        tr, po, te = s.parts["train"], s.parts["pool"], s.parts["test"]
        parts = (x[tr], y[tr], x[po], y[po], x[te], y[te])
        info = _merge_splits(s)
        if adapted:
            info["notes"].append(adapted)
    top = int(max(int(a.max(initial=0)) for a in (parts[0], parts[2], parts[4])))
    if top < DARK_LEVEL:
        info["notes"].append(f"the images use grey levels 0..{top} only: the student reads pixel/256, so its input "
                             f"spans 0..{top / 256:.3f} and trains poorly (sklearn's 0..16 digits: a no-KD student "
                             f"stayed at chance, 86% after scaling to 0..255); scale the images to 0..255 before "
                             f"training, and feed the board the same scaled pixels")
    for note in info["notes"]:
        log.warning("%s", note)
    trx, try_, pox, poy, tex, tey = parts
    size = cfg.image_size
    return CellData(f"{cfg.source}:{Path(cfg.path).name}", names, resize_u8(trx, size), try_, resize_u8(pox, size),
                    poy, resize_u8(tex, size), tey, {"kind": cfg.source, "path": str(cfg.path), "split": info})


def prepare(cfg: DataConfig) -> CellData:
    return synthetic(cfg) if cfg.source == "synthetic" else from_files(cfg)

"""Bring-your-own cell images: a folder with one sub-folder per class, or an .npz with `x` (N,H,W) and `y` (N,).

Any number of classes and any image size (resized later to the model input). Everything a user can get
wrong is a `DataError` naming the file and the fix. No pickle: .npz files load with allow_pickle=False.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from insitu.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"cannot read image {path}: {exc}", "remove or replace the file") from None


def load_folder(folder: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images of `folder/<class>/*.png|jpg|tif|bmp`, classes in sorted folder-name order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"data folder {folder} does not exist", "pass a folder with one sub-folder per class")
    class_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_dirs) < 2:
        raise DataError(f"{folder} has {len(class_dirs)} class sub-folder(s); at least 2 are needed",
                        "put the images of each class into their own sub-folder")
    xs, ys, shape, first = [], [], None, None
    for label, cdir in enumerate(class_dirs):
        files = sorted(p for p in cdir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"class folder {cdir} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})",
                            "add images to it or remove the folder")
        for f in files:
            img = _read_image(f)
            if shape is None:
                shape, first = img.shape, f
            elif img.shape != shape:
                raise DataError(f"images of mixed sizes: {f} is {img.shape[1]}x{img.shape[0]} but {first} is "
                                f"{shape[1]}x{shape[0]}", "crop or resize them all to one size first")
            xs.append(img)
            ys.append(label)
    return np.stack(xs), np.asarray(ys, dtype=np.int64), [p.name for p in class_dirs]


def load_npz(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """`x` (N,H,W) uint8 or float (0..1 or 0..255), `y` (N,) int labels 0..K-1, optional `class_names`."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise DataError(f"{path} does not exist", "check the path passed with --data") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"cannot read {path} as .npz: {exc}", "save it with numpy.savez(path, x=..., y=...)") from None
    for key in ("x", "y"):
        if key not in arrays:
            raise DataError(f"{path} has no array '{key}' (it has {sorted(arrays)})", "save x (N,H,W) and y (N,)")
    x, y = arrays["x"], arrays["y"]
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3:
        raise DataError(f"{path}: x has shape {x.shape}; expected (N, H, W) grayscale", "squeeze or convert to gray")
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{path}: y has shape {y.shape} but x holds {len(x)} images", "y must be (N,)")
    if x.dtype != np.uint8:
        xf = x.astype(np.float64)
        bad = ~np.isfinite(xf)
        if bad.any():
            i = int(np.argmax(bad.reshape(len(x), -1).any(axis=1)))
            raise DataError(f"{path}: x holds NaN or inf (first in image {i})", "clean the images before training")
        lo, hi = float(xf.min()), float(xf.max())
        if lo < 0 or hi > 255:
            raise DataError(f"{path}: x values span [{lo}, {hi}]; expected 0..1 or 0..255", "rescale the images")
        x = np.clip(np.round(xf * (255.0 if hi <= 1.0 else 1.0)), 0, 255).astype(np.uint8)
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise DataError(f"{path}: y must hold integer class labels", "store labels as integers 0..K-1")
    y = y.astype(np.int64)
    k = int(y.max()) + 1 if len(y) else 0
    missing = sorted(set(range(k)) - set(np.unique(y).tolist()))
    if y.min(initial=0) < 0 or k < 2 or missing:
        raise DataError(f"{path}: labels must be 0..K-1 with every class present and K >= 2 "
                        f"(found min {y.min(initial=0)}, K={k}, missing {missing})", "renumber the labels")
    names = [str(n) for n in arrays["class_names"]] if "class_names" in arrays else [f"class{i}" for i in range(k)]
    if len(names) != k:
        raise DataError(f"{path}: {len(names)} class_names for {k} classes", "give one name per class")
    return x, y, names

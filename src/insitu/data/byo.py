"""Bring-your-own cell images: a folder with one sub-folder per class, or an .npz with `x` and `y` (N,).

Any number of classes and any image size (resized later to the model input). Everything a user can get
wrong is a `DataError` naming the file and the fix. No pickle: .npz files load with allow_pickle=False.

Adaptations (each one returned as a note that the run logs and reports):
- colour: x of shape (N,H,W,C) or (N,C,H,W) with C = 1, 3 or 4. Channels that are all equal (grayscale stored
  as RGB) are taken as they are; real colour becomes ITU-R 601 luma (the weights of PIL's "L" conversion,
  which is what folder images go through); an alpha channel is dropped.
- bit depth: integer images above 255 (16-bit microscopy) are scaled by 255 / the largest value of the whole
  set, so relative intensities between images survive; float images must be in 0..1 or 0..255.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from insitu.data.npz import load_arrays
from insitu.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}


LUMA = np.array([0.299, 0.587, 0.114])
_HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def read_image(path: Path) -> np.ndarray:
    """One image as a 2-D array: uint8 for 8-bit and colour images (luma), int64 for 16/32-bit integer images."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in _HIGH_DEPTH_MODES:
                return np.asarray(im, dtype=np.int64)
            if im.mode == "F":
                raise DataError(f"image {path} holds floating-point pixels", "save the images as 8- or 16-bit")
            return np.asarray(im.convert("L"), dtype=np.uint8)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - PIL raises many types (SyntaxError, struct.error, ...) on bad files
        raise DataError(f"cannot read image {path} ({type(exc).__name__}: {exc})",
                        "remove or replace the file") from None


def to_gray(x: np.ndarray, where: str) -> tuple[np.ndarray, str]:
    """(N,H,W[,C]) or (N,C,H,W) -> (N,H,W) and a note of what was done ('' when nothing)."""
    if x.ndim == 3:
        return x, ""
    if x.ndim != 4:
        raise DataError(f"{where}: x has shape {x.shape}; expected (N, H, W), (N, H, W, C) or (N, C, H, W)",
                        "store one 2-D image per sample")
    if x.shape[-1] in (1, 3, 4):
        chans = x
    elif x.shape[1] in (1, 3, 4):
        chans = np.moveaxis(x, 1, -1)
    else:
        raise DataError(f"{where}: x has shape {x.shape}: {x.shape[-1]} or {x.shape[1]} channels; 1, 3 (RGB) or 4 "
                        "(RGBA) are understood", "convert the images to grayscale first")
    c = chans.shape[-1]
    note = ""
    if c == 4:
        chans, note = chans[..., :3], "alpha channel dropped; "
    if c == 1:
        return chans[..., 0], ""
    if all(np.array_equal(chans[..., 0], chans[..., i]) for i in range(1, chans.shape[-1])):
        return chans[..., 0], f"{where}: {note}grayscale stored as {c} equal channels: one channel taken"
    gray = chans.astype(np.float64) @ LUMA
    if np.issubdtype(x.dtype, np.integer):
        gray = np.round(gray).astype(np.int64)
    return gray, f"{where}: {note}colour images converted to luma (0.299 R + 0.587 G + 0.114 B)"


def to_u8(x: np.ndarray, where: str) -> tuple[np.ndarray, str]:
    """Images of any numeric type -> uint8 (see the module docstring); a note when they were rescaled."""
    if x.dtype == np.uint8:
        return x, ""
    if x.dtype == np.bool_:
        return x.astype(np.uint8) * 255, f"{where}: binary images mapped to 0/255"
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise DataError(f"{where}: x has dtype {x.dtype}", "store images as uint8, uint16 or float")
    xf = x.astype(np.float64)
    bad = ~np.isfinite(xf)
    if bad.any():
        i = int(np.argmax(bad.reshape(len(x), -1).any(axis=1)))
        raise DataError(f"{where}: x holds NaN or inf (first in image {i})", "clean the images before training")
    lo, hi = (float(xf.min()), float(xf.max())) if xf.size else (0.0, 0.0)
    if lo < 0:
        raise DataError(f"{where}: x values span [{lo}, {hi}]; negative pixel values", "rescale the images to 0..255")
    if np.issubdtype(x.dtype, np.integer):
        if hi <= 255:
            return x.astype(np.uint8), ""
        return (np.clip(np.round(xf * (255.0 / hi)), 0, 255).astype(np.uint8),
                f"{where}: integer pixels up to {int(hi)} (more than 8 bits) scaled by 255/{int(hi)}")
    if hi > 255:
        raise DataError(f"{where}: x values span [{lo}, {hi}]; expected 0..1 or 0..255", "rescale the images")
    return np.clip(np.round(xf * (255.0 if hi <= 1.0 else 1.0)), 0, 255).astype(np.uint8), ""


def load_folder(folder: Path) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """Images of `folder/<class>/*.png|jpg|tif|bmp`, classes in sorted folder-name order, and a note of any
    adaptation (see the module docstring)."""
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
            img = read_image(f)
            if shape is None:
                shape, first = img.shape, f
            elif img.shape != shape:
                raise DataError(f"images of mixed sizes: {f} is {img.shape[1]}x{img.shape[0]} but {first} is "
                                f"{shape[1]}x{shape[0]}", "crop or resize them all to one size first")
            xs.append(img)
            ys.append(label)
    x, note = to_u8(np.stack(xs), str(folder))
    return x, np.asarray(ys, dtype=np.int64), [p.name for p in class_dirs], note


def load_npz(path: Path) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """`x` (N,H,W) or with channels, `y` (N,) int labels 0..K-1, optional `class_names`; and a note of any
    adaptation (see the module docstring)."""
    path = Path(path)
    arrays = load_arrays(path, "dataset", "save it with numpy.savez(path, x=..., y=...)")
    for key in ("x", "y"):
        if key not in arrays:
            raise DataError(f"{path} has no array '{key}' (it has {sorted(arrays)})", "save x (N,H,W) and y (N,)")
    x, y = arrays["x"], arrays["y"]
    if x.ndim < 3 or min(x.shape[1:3]) < 1 or len(x) == 0:
        raise DataError(f"{path}: x has shape {x.shape}; expected (N, H, W) images, N >= 1",
                        "store one 2-D image per sample")
    x, gray_note = to_gray(x, str(path))
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{path}: y has shape {y.shape} but x holds {len(x)} images", "y must be (N,)")
    x, depth_note = to_u8(x, str(path))
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating) or y.dtype == np.bool_):
        raise DataError(f"{path}: y has dtype {y.dtype}", "store labels as integers 0..K-1")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise DataError(f"{path}: y must hold integer class labels", "store labels as integers 0..K-1")
    y = y.astype(np.int64)
    k = int(y.max()) + 1 if len(y) else 0
    missing = sorted(set(range(k)) - set(np.unique(y).tolist())) if 0 < k <= 1_000_000 else []
    if y.min(initial=0) < 0 or k < 2 or k > 65536 or missing:
        raise DataError(f"{path}: labels must be 0..K-1 with every class present and 2 <= K <= 65536 "
                        f"(found min {y.min(initial=0)}, K={k}, missing {missing[:10]})", "renumber the labels")
    names = [str(n) for n in np.atleast_1d(arrays["class_names"])] if "class_names" in arrays else \
        [f"class{i}" for i in range(k)]
    if len(names) != k:
        raise DataError(f"{path}: {len(names)} class_names for {k} classes", "give one name per class")
    return x, y, names, "; ".join(n for n in (gray_note, depth_note) if n)

"""MNIST IDX files (the LymphoMNIST format): strict reader and writer.

Format: 2 zero bytes, a type code (0x08 = uint8), the number of dimensions, then one big-endian uint32 per
dimension, then the data in C order. Images are 3-D (0x00000803), labels 1-D (0x00000801). Files may be
gzip-compressed (`.gz`). Every inconsistency raises `DataError` naming the file and what is wrong.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from insitu.errors import DataError

_TYPES = {0x08: np.dtype(np.uint8)}


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if path.suffix == ".gz" else raw
    except FileNotFoundError:
        raise DataError(f"IDX file {path} does not exist", "check the path you passed with --data") from None
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"cannot read IDX file {path}: {exc}", "re-copy the file; it is damaged") from None


def read_idx(path: Path, expect_ndim: int | None = None) -> np.ndarray:
    """Read one IDX file; `expect_ndim` (3 for images, 1 for labels) is checked against the magic number."""
    path = Path(path)
    buf = _read_bytes(path)
    if len(buf) < 4:
        raise DataError(f"{path} is {len(buf)} bytes long: too short to hold an IDX header",
                        "the file is truncated or empty; re-copy it")
    zero, code, ndim = struct.unpack(">HBB", buf[:4])
    magic = f"0x{buf[:4].hex()}"
    if zero != 0 or code not in _TYPES or ndim == 0:
        raise DataError(f"{path} has magic {magic}, which is not an IDX magic number "
                        "(expected 0x00000803 for images or 0x00000801 for labels)",
                        "pass the LymphoMNIST IDX files themselves, not another format")
    if expect_ndim is not None and ndim != expect_ndim:
        want = f"0x000008{expect_ndim:02x}"
        raise DataError(f"{path} has magic {magic} ({ndim}-D) but a {expect_ndim}-D file ({want}) was expected",
                        "images and labels files may be swapped")
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise DataError(f"{path} is truncated inside its header", "re-copy the file")
    dims = struct.unpack(f">{ndim}I", buf[4:header])
    dtype = _TYPES[code]
    need = math.prod(dims) * dtype.itemsize  # Python ints: a damaged header must not overflow int64
    have = len(buf) - header
    if have != need:
        kind = "truncated" if have < need else "longer than its header says"
        raise DataError(f"{path} is {kind}: header {dims} needs {need} data bytes, file has {have}",
                        "re-copy the file; it is damaged")
    return np.frombuffer(buf, dtype=dtype, offset=header).reshape(dims).copy()


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (gzip when the name ends in .gz)."""
    arr = np.ascontiguousarray(array)
    if arr.dtype != np.uint8:
        raise DataError(f"IDX writer supports uint8 only, got {arr.dtype}", "convert the array to uint8")
    head = struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = head + arr.tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


_NAMES = {
    "train_images": ("train_images", "train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train_labels": ("train_labels", "train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test_images": ("test_images", "t10k-images-idx3-ubyte", "test-images-idx3-ubyte"),
    "test_labels": ("test_labels", "t10k-labels-idx1-ubyte", "test-labels-idx1-ubyte"),
}
_SUFFIXES = ("", ".idx", ".gz", ".idx.gz", ".idx3-ubyte", ".idx1-ubyte")


def find_idx_file(folder: Path, role: str) -> Path:
    """Locate e.g. 'train_images' in a folder, accepting the usual MNIST-style names and a .gz suffix."""
    for stem in _NAMES[role]:
        for suffix in _SUFFIXES:
            p = folder / f"{stem}{suffix}"
            if p.is_file():
                return p
    raise DataError(f"no {role} IDX file in {folder}",
                    f"the folder must hold {', '.join(_NAMES)} (optionally .gz); see README 'Your own data'")


def load_lymphomnist(folder: Path, classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_x, train_y, test_x, test_y) from LymphoMNIST IDX files; 2-class mode merges T4 and T8 into T."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"LymphoMNIST folder {folder} does not exist", "pass the folder holding the IDX files")
    out = []
    for split in ("train", "test"):
        x = read_idx(find_idx_file(folder, f"{split}_images"), expect_ndim=3)
        y = read_idx(find_idx_file(folder, f"{split}_labels"), expect_ndim=1)
        if len(x) != len(y):
            raise DataError(f"{split}: {len(x)} images but {len(y)} labels", "the two files do not belong together")
        if y.size and int(y.max()) > 2:
            bad = int(np.argmax(y > 2))
            raise DataError(f"{split} label {int(y[bad])} at index {bad} is out of range (LymphoMNIST has 0=B, "
                            "1=T4, 2=T8)", "check the labels file")
        if classes == 2:
            y = np.minimum(y, 1)
        out += [x, y.astype(np.int64)]
    return out[0], out[1], out[2], out[3]

"""Mutation fuzz of every reader of user files: bytes flipped, overwritten, inserted, deleted, duplicated and
truncated, starting from valid files. Each input must either read or fail with insitu's own error naming the
file; anything else (a raw numpy, zipfile, zlib, PIL or TOML exception) fails the test with the seed that
reproduces it.

Seeded and time-bounded: INSITU_FUZZ_SECONDS per reader (default 1.5) and at most INSITU_FUZZ_MAX inputs.
"""

import gzip
import io
import json
import os
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from insitu.data import byo, idx, kitti
from insitu.data.cells import CellData
from insitu.data.lidar_sensor import read_sensor_file
from insitu.errors import InsituError

SECONDS = float(os.environ.get("INSITU_FUZZ_SECONDS", "1.5"))
MAX_INPUTS = int(os.environ.get("INSITU_FUZZ_MAX", "100000"))


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        op = int(rng.integers(0, 6))
        n = len(b)
        if n == 0:
            b += rng.bytes(int(rng.integers(1, 16)))
            continue
        i = int(rng.integers(0, n))
        if op == 0:  # flip bits
            b[i] ^= 1 << int(rng.integers(0, 8))
        elif op == 1:  # overwrite a run with random bytes
            k = int(rng.integers(1, 9))
            b[i:i + k] = rng.bytes(min(k, n - i))
        elif op == 2:  # insert
            b[i:i] = rng.bytes(int(rng.integers(1, 17)))
        elif op == 3:  # delete
            del b[i:i + int(rng.integers(1, 33))]
        elif op == 4:  # truncate
            del b[i:]
        else:  # duplicate a chunk
            k = int(rng.integers(1, 65))
            b[i:i] = b[max(0, i - k):i]
    return bytes(b)


def _npz_bytes(compressed: bool, **arrays) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def _idx(array: np.ndarray) -> bytes:
    import struct

    return struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def _png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(buf, format="PNG")
    return buf.getvalue()


def _tiff16() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).save(buf, format="TIFF")
    return buf.getvalue()


rng0 = np.random.default_rng(0)
_IMAGES = rng0.integers(0, 256, (6, 5, 5), dtype=np.uint8)
_LABELS = np.array([0, 1, 2, 0, 1, 2], np.uint8)
_SCAN = np.column_stack([rng0.normal(size=(8, 3)) * 10, rng0.random(8)]).astype("<f4")
_POSES = "\n".join(" ".join(f"{v:.6e}" for v in np.eye(4)[:3].reshape(-1)) for _ in range(2)) + "\n"
_CELLS = dict(train_x=_IMAGES, train_y=_LABELS.astype(np.int64), pool_x=_IMAGES[:2], pool_y=np.array([-1, -1]),
              test_x=_IMAGES[:3], test_y=np.array([0, 1, 2]), class_names=np.array(["a", "b", "c"]),
              meta=np.array(json.dumps({"name": "x", "source": {}})))

def _model_files() -> tuple[bytes, bytes]:
    import tempfile
    from pathlib import Path

    from insitu.ir.synthetic import random_model

    with tempfile.TemporaryDirectory() as d:
        random_model(seed=0, size=8, channels=(2,)).save(Path(d))
        return (Path(d) / "quantmodel.json").read_bytes(), (Path(d) / "quantmodel.npz").read_bytes()


_QM_JSON, _QM_NPZ = _model_files()


def _load_model_with(name: str, other: bytes):
    """QuantModel.load on a folder whose `name` file is the fuzzed one and whose other file is intact."""
    from insitu.ir.model import QuantModel

    def call(path):
        twin = "quantmodel.npz" if name == "quantmodel.json" else "quantmodel.json"
        (path.parent / twin).write_bytes(other)
        return QuantModel.load(path.parent)

    return call


#: reader name -> (file name, valid seed bytes, the call)
READERS = {
    "idx images": ("train_images", _idx(_IMAGES), lambda p: idx.read_idx(p, expect_ndim=3)),
    "idx images .gz": ("train_images.gz", gzip.compress(_idx(_IMAGES)), lambda p: idx.read_idx(p, expect_ndim=3)),
    "idx labels": ("train_labels", _idx(_LABELS), lambda p: idx.read_idx(p, expect_ndim=1)),
    "kitti scan": ("000000.bin", _SCAN.tobytes(), kitti.read_scan),
    "kitti labels": ("000000.label", np.arange(8, dtype="<u4").tobytes(), lambda p: kitti.read_label(p, 8)),
    "kitti poses": ("poses.txt", _POSES.encode(), lambda p: kitti.read_poses(p, 2)),
    "npz dataset": ("data.npz", _npz_bytes(False, x=_IMAGES, y=_LABELS), byo.load_npz),
    "npz dataset, compressed": ("data.npz", _npz_bytes(True, x=_IMAGES, y=_LABELS), byo.load_npz),
    "prepared dataset": ("cells.npz", _npz_bytes(True, **_CELLS), CellData.load),
    "image png": ("0.png", _png(), byo.read_image),
    "image tiff 16-bit": ("0.tif", _tiff16(), byo.read_image),
    "sensor toml": ("sensor.toml", b'name = "s"\nbeam_angles_deg = [2.0, 0.5, -1.0, -3.25]\n', read_sensor_file),
    "sensor json": ("sensor.json", json.dumps({"beam_angles_deg": [2.0, 0.5, -1.0]}).encode(), read_sensor_file),
    "model structure": ("quantmodel.json", _QM_JSON, _load_model_with("quantmodel.json", _QM_NPZ)),
    "model weights": ("quantmodel.npz", _QM_NPZ, _load_model_with("quantmodel.npz", _QM_JSON)),
}


@pytest.mark.parametrize("reader", list(READERS))
def test_every_failure_is_a_named_insitu_error(tmp_path, reader):
    name, seed_bytes, call = READERS[reader]
    path = tmp_path / name
    path.write_bytes(seed_bytes)
    call(path)  # the seed file itself is valid
    rng = np.random.default_rng(sum(map(ord, reader)))
    t_end, n, failed_cleanly = time.monotonic() + SECONDS, 0, 0
    while time.monotonic() < t_end and n < MAX_INPUTS:
        data = mutate(seed_bytes, rng)
        path.write_bytes(data)
        n += 1
        try:
            call(path)
        except InsituError as exc:
            failed_cleanly += 1
            assert name in str(exc), f"{reader}: error does not name the file: {exc}"
        except Exception as exc:  # noqa: BLE001 - the point of the test
            pytest.fail(f"{reader}: input {n} escaped as {type(exc).__name__}: {exc}\n"
                        f"reproduce: mutate(seed, default_rng({sum(map(ord, reader))})) x{n}; bytes {data[:80]!r}")
    print(f"fuzz {reader}: {n} inputs, {failed_cleanly} refused by name, {n - failed_cleanly} read")
    assert n > 20 and failed_cleanly > 0, f"{reader}: {n} inputs, {failed_cleanly} refused"


def test_npz_zip_oddities_are_named(tmp_path):
    """The two escapes a long fuzz found: a zip member of an unknown version, and one flagged as encrypted."""
    raw = bytearray(_npz_bytes(False, x=_IMAGES, y=_LABELS))
    for field_offset, value, label in ((4, 0xFF, "version"), (6, 0x01, "encrypted")):
        bad = bytearray(raw)
        for off in [i for i in range(len(bad) - 4) if bad[i:i + 4] == b"PK\x01\x02"]:  # central directory
            bad[off + field_offset + 2] = value  # +2: central records carry 'version made by' first
        path = tmp_path / f"{label}.npz"
        path.write_bytes(bytes(bad))
        with pytest.raises(InsituError, match=f"{label}.npz"):
            byo.load_npz(path)
    with zipfile.ZipFile(tmp_path / "member.npz", "w") as z:
        z.writestr("x.npy", b"\x93NUMPY garbage")
    with pytest.raises(InsituError, match="member.npz"):
        byo.load_npz(tmp_path / "member.npz")


def test_escapes_found_by_longer_fuzzing_are_named(tmp_path):
    import struct

    # an IDX header whose dimensions overflow int64 when multiplied
    (tmp_path / "train_images").write_bytes(struct.pack(">HBB3I", 0, 8, 3, 3271557120, 100663296, 83886080))
    with pytest.raises(InsituError, match="train_images is truncated"):
        idx.read_idx(tmp_path / "train_images", expect_ndim=3)
    # an .npy member whose header dict is cut inside a bracket (numpy's tokenizer raises TokenError)
    head = b"{'descr': '|u1', 'fortran_order': False, 'shape': (6,\n"
    with zipfile.ZipFile(tmp_path / "tok.npz", "w") as z:
        z.writestr("x.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head)
    with pytest.raises(InsituError, match="tok.npz"):
        byo.load_npz(tmp_path / "tok.npz")

import gzip
import struct

import numpy as np
import pytest

from insitu.data.idx import load_lymphomnist, read_idx, write_idx
from insitu.errors import DataError


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_round_trip(tmp_path, name):
    x = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    write_idx(tmp_path / name, x)
    assert np.array_equal(read_idx(tmp_path / name, expect_ndim=3), x)


def test_magic_numbers_are_the_mnist_ones(tmp_path):
    write_idx(tmp_path / "i", np.zeros((2, 4, 4), np.uint8))
    write_idx(tmp_path / "l", np.zeros(2, np.uint8))
    assert (tmp_path / "i").read_bytes()[:4] == bytes.fromhex("00000803")
    assert (tmp_path / "l").read_bytes()[:4] == bytes.fromhex("00000801")


def test_truncated_data(tmp_path):
    write_idx(tmp_path / "a", np.zeros((3, 4, 4), np.uint8))
    raw = (tmp_path / "a").read_bytes()
    (tmp_path / "a").write_bytes(raw[:-5])
    with pytest.raises(DataError, match="truncated"):
        read_idx(tmp_path / "a")


def test_extra_bytes(tmp_path):
    write_idx(tmp_path / "a", np.zeros((3, 4, 4), np.uint8))
    (tmp_path / "a").write_bytes((tmp_path / "a").read_bytes() + b"xx")
    with pytest.raises(DataError, match="longer than its header"):
        read_idx(tmp_path / "a")


def test_truncated_header_and_tiny_file(tmp_path):
    (tmp_path / "a").write_bytes(struct.pack(">HBB", 0, 8, 3) + b"\x00\x00")
    with pytest.raises(DataError, match="header"):
        read_idx(tmp_path / "a")
    (tmp_path / "b").write_bytes(b"\x00")
    with pytest.raises(DataError, match="too short"):
        read_idx(tmp_path / "b")


def test_wrong_magic(tmp_path):
    (tmp_path / "a").write_bytes(b"\x89PNG" + bytes(100))
    with pytest.raises(DataError, match="not an IDX magic"):
        read_idx(tmp_path / "a")


def test_wrong_dimensionality(tmp_path):
    write_idx(tmp_path / "a", np.zeros(4, np.uint8))
    with pytest.raises(DataError, match="swapped"):
        read_idx(tmp_path / "a", expect_ndim=3)


def test_corrupt_gzip(tmp_path):
    (tmp_path / "a.gz").write_bytes(gzip.compress(b"abc")[:-4] + b"zzzz")
    with pytest.raises(DataError, match="cannot read"):
        read_idx(tmp_path / "a.gz")


def _write_set(folder, labels_train, labels_test):
    rng = np.random.default_rng(1)
    for split, lab in (("train", labels_train), ("test", labels_test)):
        write_idx(folder / f"{split}_images", rng.integers(0, 256, (len(lab), 8, 8), dtype=np.uint8))
        write_idx(folder / f"{split}_labels", np.asarray(lab, np.uint8))


def test_lymphomnist_modes(tmp_path):
    _write_set(tmp_path, [0, 1, 2, 1], [2, 0])
    trx, try_, tex, tey = load_lymphomnist(tmp_path, classes=3)
    assert trx.shape == (4, 8, 8) and try_.tolist() == [0, 1, 2, 1] and tey.tolist() == [2, 0]
    _, try2, _, tey2 = load_lymphomnist(tmp_path, classes=2)
    assert try2.tolist() == [0, 1, 1, 1] and tey2.tolist() == [1, 0]


def test_label_out_of_range(tmp_path):
    _write_set(tmp_path, [0, 1, 3], [0])
    with pytest.raises(DataError, match="label 3 at index 2 is out of range"):
        load_lymphomnist(tmp_path, classes=3)


def test_count_mismatch(tmp_path):
    _write_set(tmp_path, [0, 1], [0])
    write_idx(tmp_path / "train_labels", np.zeros(3, np.uint8))
    with pytest.raises(DataError, match="2 images but 3 labels"):
        load_lymphomnist(tmp_path, classes=3)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no train_images IDX file"):
        load_lymphomnist(tmp_path, classes=3)

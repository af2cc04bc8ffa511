import numpy as np
import pytest
from PIL import Image

from insitu.data.byo import load_folder, load_npz
from insitu.errors import DataError


def _img(path, size=(10, 12), value=0):
    Image.fromarray(np.full(size, value, np.uint8)).save(path)


def test_folder(tmp_path):
    for cls, n in (("b", 2), ("t", 3)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            _img(tmp_path / cls / f"{i}.png", value=10 * i)
    x, y, names, note = load_folder(tmp_path)
    assert x.shape == (5, 10, 12) and y.tolist() == [0, 0, 1, 1, 1] and names == ["b", "t"]


def test_mixed_sizes(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _img(tmp_path / "a" / "0.png")
    _img(tmp_path / "b" / "0.png", size=(11, 12))
    with pytest.raises(DataError, match="mixed sizes"):
        load_folder(tmp_path)


def test_empty_class_folder(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _img(tmp_path / "a" / "0.png")
    with pytest.raises(DataError, match="holds no images"):
        load_folder(tmp_path)


def test_unreadable_image(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _img(tmp_path / "a" / "0.png")
    (tmp_path / "b" / "0.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="cannot read image"):
        load_folder(tmp_path)


def test_npz_float_and_uint8(tmp_path):
    x = np.random.default_rng(0).random((6, 9, 9))
    np.savez(tmp_path / "d.npz", x=x, y=np.array([0, 1, 2, 0, 1, 2]))
    xs, ys, names, note = load_npz(tmp_path / "d.npz")
    assert xs.dtype == np.uint8 and xs.shape == (6, 9, 9) and names == ["class0", "class1", "class2"]
    assert np.array_equal(xs, np.round(x * 255).astype(np.uint8))


def test_npz_nan(tmp_path):
    x = np.zeros((4, 5, 5))
    x[2, 1, 1] = np.nan
    np.savez(tmp_path / "d.npz", x=x, y=np.array([0, 1, 0, 1]))
    with pytest.raises(DataError, match="NaN or inf \\(first in image 2\\)"):
        load_npz(tmp_path / "d.npz")


@pytest.mark.parametrize("y,msg", [([0, 0, 0, 0], "2 <= K"), ([0, 2, 0, 2], "missing \\[1\\]"), ([0, 1, 1], "y has shape")])
def test_npz_bad_labels(tmp_path, y, msg):
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 5, 5), np.uint8), y=np.array(y))
    with pytest.raises(DataError, match=msg):
        load_npz(tmp_path / "d.npz")


def test_npz_not_a_zip(tmp_path):
    (tmp_path / "d.npz").write_bytes(b"garbage")
    with pytest.raises(DataError, match="cannot read"):
        load_npz(tmp_path / "d.npz")

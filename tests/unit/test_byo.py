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


@pytest.mark.parametrize("y,msg", [([0, 0, 0, 0], "2 <= K"), ([0, 2, 0, 2], "missing \\[1\\]"),
                                   ([0, 1, 1], "y has shape")])
def test_npz_bad_labels(tmp_path, y, msg):
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 5, 5), np.uint8), y=np.array(y))
    with pytest.raises(DataError, match=msg):
        load_npz(tmp_path / "d.npz")


def test_npz_not_a_zip(tmp_path):
    (tmp_path / "d.npz").write_bytes(b"garbage")
    with pytest.raises(DataError, match="cannot read"):
        load_npz(tmp_path / "d.npz")


@pytest.mark.parametrize("layout", ["nhwc", "nchw", "nhwc1", "rgba"])
def test_npz_grayscale_stored_as_channels(tmp_path, layout):
    g = np.random.default_rng(1).integers(0, 256, (4, 7, 9), dtype=np.uint8)
    x = {"nhwc": np.repeat(g[..., None], 3, -1), "nchw": np.repeat(g[:, None], 3, 1), "nhwc1": g[..., None],
         "rgba": np.concatenate([np.repeat(g[..., None], 3, -1), np.full((4, 7, 9, 1), 255, np.uint8)], -1)}[layout]
    np.savez(tmp_path / "d.npz", x=x, y=np.array([0, 1, 0, 1]))
    xs, _, _, note = load_npz(tmp_path / "d.npz")
    assert np.array_equal(xs, g)
    assert ("one channel taken" in note) == (layout != "nhwc1") and ("alpha" in note) == (layout == "rgba")


def test_npz_colour_becomes_luma_and_16_bit_is_scaled(tmp_path):
    rgb = np.zeros((2, 3, 3, 3), np.uint8)
    rgb[0, ..., 0] = 200  # red
    rgb[1, ..., 2] = 100  # blue
    np.savez(tmp_path / "c.npz", x=rgb, y=np.array([0, 1]))
    xs, _, _, note = load_npz(tmp_path / "c.npz")
    assert xs[0, 0, 0] == round(0.299 * 200) and xs[1, 0, 0] == round(0.114 * 100) and "luma" in note
    x16 = (np.arange(2 * 4 * 4, dtype=np.uint16).reshape(2, 4, 4) * 2000)
    np.savez(tmp_path / "h.npz", x=x16, y=np.array([0, 1]))
    xs, _, _, note = load_npz(tmp_path / "h.npz")
    assert xs.max() == 255 and xs[0, 0, 0] == 0 and "scaled by 255/62000" in note
    np.savez(tmp_path / "bad.npz", x=np.zeros((2, 6, 6, 5)), y=np.array([0, 1]))
    with pytest.raises(DataError, match="channels"):
        load_npz(tmp_path / "bad.npz")
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(DataError, match="single .npy array"):
        load_npz(tmp_path / "single.npy")


def test_folder_of_16_bit_and_rgb_images(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
    Image.fromarray((np.arange(16, dtype=np.uint16).reshape(4, 4) * 4000)).save(tmp_path / "a" / "0.tif")
    Image.fromarray(np.full((4, 4, 3), 120, np.uint8)).save(tmp_path / "b" / "0.png")
    x, y, names, note = load_folder(tmp_path)
    assert x.dtype == np.uint8 and x[0].max() == 255 and x[1, 0, 0] == round(120 * 255 / 60000)
    assert "scaled by 255/60000" in note and y.tolist() == [0, 1]

"""Data nobody here made, through the real CLI: datasets smaller than the split, classes of very different sizes,
no unlabelled pool, a class with one image, images from 8x8 to 256x256, grayscale stored as three channels,
LymphoMNIST files with a single test image. Each either runs to a report (saying what was adapted) or stops
with an error that names the field or file, before anything trains."""

import json

import numpy as np
import pytest

from insitu.data import idx, synth_cells

from .cli import cli as _cli

FAST = ["--preset", "tiny", "--set", "firmware.enabled=false", "--set", "rtl.sim_vectors=8"]


def _cells(counts, size=64, seed=0):
    """Synthetic bright-field cells, `counts[k]` of class k (so class sizes can differ wildly)."""
    x, y = synth_cells.generate(4 * sum(counts), seed, 3, 1.0)
    keep = np.concatenate([np.flatnonzero(y == k)[:n] for k, n in enumerate(counts)])
    assert all((y[keep] == k).sum() == n for k, n in enumerate(counts))
    x = x[keep]
    if size != x.shape[-1]:
        from insitu.data.cells import resize_u8

        x = resize_u8(x, size)
    return x, y[keep]


@pytest.mark.slow
def test_digits_smaller_than_the_default_split_runs_to_a_report(tmp_path):
    """The reported crash: 1,797 real 8x8 images in 10 classes with the default split sizes."""
    from sklearn.datasets import load_digits

    d = load_digits()
    np.savez(tmp_path / "digits.npz", x=d.images, y=d.target)  # float 0..16
    out = tmp_path / "run"
    _cli("run", "cells", "--data", str(tmp_path / "digits.npz"), *FAST, "--set", "data.n_train=3000",
         "--set", "data.n_pool=9000", "--set", "data.n_test=2000", "--out", str(out))
    rep = json.loads((out / "report.json").read_text())
    split = rep["dataset"]["split"]
    assert split["scaled"] and split["available"] == 1797 and sum(split["used"].values()) == 1797
    assert split["used"] == rep["dataset"]["sizes"] and split["used"]["pool"] > split["used"]["train"]
    assert all(min(c.values()) > 0 for c in split["per_class"].values()) and len(split["per_class"]) == 10
    assert rep["student"]["distill_mode"] == "label_free"
    assert rep["csim"]["vectors"] == rep["csim"]["bit_exact_vectors"] == split["used"]["test"]
    md = (out / "report.md").read_text()
    assert "scaled in proportion" in md and "grey levels 0..16" in md  # the dark data is called out


@pytest.mark.slow
def test_no_pool_falls_back_to_labelled_and_explicit_label_free_stops_early(tmp_path):
    """A few hundred 256x256 images stored as three equal channels, classes of 200, 60 and 12 images."""
    x, y = _cells([200, 60, 12], size=256)
    np.savez_compressed(tmp_path / "rgb.npz", x=np.repeat(x[..., None], 3, axis=-1), y=y,
                        class_names=np.array(["B", "T4", "T8"]))
    data = str(tmp_path / "rgb.npz")
    out = tmp_path / "labelled"
    _cli("run", "cells", "--data", data, *FAST, "--set", "data.n_pool=0", "--out", str(out))
    rep = json.loads((out / "report.json").read_text())
    assert rep["student"]["distill_mode"] == "labelled"
    assert "pool is empty" in rep["student"]["distill_mode_reason"]
    per_class = rep["dataset"]["split"]["per_class"]
    assert per_class["T8"]["train"] >= 1 and per_class["T8"]["test"] >= 1 and per_class["B"]["pool"] == 0
    assert "one channel taken" in (out / "report.md").read_text()
    assert rep["csim"]["vectors"] == rep["csim"]["bit_exact_vectors"] == rep["dataset"]["sizes"]["test"]

    stopped = tmp_path / "label_free"
    proc = _cli("run", "cells", "--data", data, *FAST, "--set", "data.n_pool=0", "--set",
                "distill.mode=label_free", "--out", str(stopped), check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr + proc.stdout
    msg = proc.stdout + proc.stderr
    assert "distill.mode=label_free" in msg and "data.n_pool=0" in msg and "272 images" in msg
    assert not (stopped / "teacher").exists()  # refused before the teacher trained


@pytest.mark.slow
def test_tiny_and_degenerate_datasets_are_refused_by_name(tmp_path):
    x, y = _cells([30, 30, 1], size=8)
    np.savez(tmp_path / "one.npz", x=x, y=y, class_names=np.array(["B", "T4", "T8"]))
    proc = _cli("run", "cells", "--data", str(tmp_path / "one.npz"), *FAST, "--out", str(tmp_path / "r1"), check=False)
    assert proc.returncode == 2 and "'T8' has 1 image(s)" in proc.stdout + proc.stderr

    x, y = _cells([20, 20, 20], size=8)
    np.savez(tmp_path / "small.npz", x=x, y=y)
    proc = _cli("run", "cells", "--data", str(tmp_path / "small.npz"), *FAST, "--set", "data.image_size=8",
                "--out", str(tmp_path / "r2"), check=False)
    msg = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "data.image_size=8 is too small" in msg and "data.image_size=10" in msg
    assert not (tmp_path / "r2" / "teacher").exists()


@pytest.mark.slow
def test_8x8_images_and_a_single_lymphomnist_test_image_run_to_a_report(tmp_path):
    x, y = _cells([40, 40, 40], size=8)
    folder = tmp_path / "lymph"
    folder.mkdir()
    idx.write_idx(folder / "train_images", x)
    idx.write_idx(folder / "train_labels", y.astype(np.uint8))
    idx.write_idx(folder / "test_images", x[:1])
    idx.write_idx(folder / "test_labels", y[:1].astype(np.uint8))
    out = tmp_path / "run"
    _cli("run", "cells", "--data", str(folder), *FAST, "--out", str(out))
    rep = json.loads((out / "report.json").read_text())
    assert rep["dataset"]["sizes"]["test"] == 1 and rep["dataset"]["split"]["scaled"]
    assert rep["csim"]["vectors"] == rep["csim"]["bit_exact_vectors"] == 1
    assert rep["rtl"]["vectors"] == rep["rtl"]["bit_exact_vectors"] == 1

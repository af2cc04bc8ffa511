import numpy as np

from insitu.config import DataConfig
from insitu.data import cells
from insitu.data.synth_cells import generate


def test_generator_is_seeded_balanced_and_realistic():
    x1, y1 = generate(30, seed=3)
    x2, y2 = generate(30, seed=3)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert x1.shape == (30, 64, 64) and x1.dtype == np.uint8
    assert np.bincount(y1).tolist() == [10, 10, 10]
    assert 60 < x1.mean() < 200 and x1.std() > 5  # a grey background with structure, not saturated
    assert not np.array_equal(generate(30, seed=4)[0], x1)


def test_two_class_mode_merges_t_cells():
    _, y = generate(12, seed=0, classes=2)
    assert set(y.tolist()) == {0, 1} and (y == 1).sum() == 8


def test_synthetic_cache_is_checked_and_regenerated(tmp_path, monkeypatch):
    monkeypatch.setenv("INSITU_CACHE", str(tmp_path))
    cfg = DataConfig(n_train=12, n_pool=6, n_test=6, image_size=32)
    first = cells.synthetic(cfg, workers=1)
    assert first.train_x.shape == (12, 32, 32)
    (cache,) = list((tmp_path / "synthetic").glob("*.npz"))
    cache.write_bytes(cache.read_bytes()[:-100] + bytes(100))  # corrupt it
    again = cells.synthetic(cfg, workers=1)
    assert again.checksum() == first.checksum()


def test_prepared_dataset_round_trip(tmp_path):
    cfg = DataConfig(n_train=12, n_pool=6, n_test=6, image_size=24)
    d = cells.synthetic(cfg, workers=1)
    d.save(tmp_path / "c.npz")
    d2 = cells.CellData.load(tmp_path / "c.npz")
    assert d2.checksum() == d.checksum() and d2.class_names == ["B", "T4", "T8"]


def test_npz_source_split_and_resize(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (50, 30, 40), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(50) % 4)
    cfg = DataConfig(source="npz", path=tmp_path / "d.npz", n_train=20, n_pool=100, n_test=10, image_size=16)
    d = cells.from_files(cfg)
    # 50 images for 130 asked: scaled in proportion (7.7 / 38.5 / 3.8 -> 8 / 38 / 4), each class in train and test
    assert d.train_x.shape == (8, 16, 16) and len(d.test_y) == 4 and len(d.pool_x) == 38
    assert len(d.class_names) == 4 and sorted(d.test_y.tolist()) == [0, 1, 2, 3]
    assert d.source["split"]["scaled"] and d.source["split"]["used"] == {"train": 8, "pool": 38, "test": 4}
    enough = cells.from_files(cfg.model_copy(update={"n_pool": 20}))  # 50 = 20 + 20 + 10: sizes as asked
    assert (len(enough.train_y), len(enough.pool_y), len(enough.test_y)) == (20, 20, 10)
    assert not enough.source["split"]["scaled"]

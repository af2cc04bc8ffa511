import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Tests never touch the user's data cache."""
    os.environ["INSITU_CACHE"] = str(tmp_path_factory.mktemp("insitu-cache"))
    yield


@pytest.fixture(autouse=True, scope="session")
def _two_threads():
    import torch

    torch.set_num_threads(2)
    yield


def _calibrated(cfg, classes=3, size=20, seed=0):
    """A QAT student whose activation scales were learned from data (training-mode passes)."""
    import numpy as np
    import torch

    from insitu.distill.student import build_student
    from insitu.distill.train import to_input

    torch.manual_seed(seed)
    m = build_student(cfg, classes, size, quantized=True)
    x = np.random.default_rng(seed).integers(0, 256, (64, size, size), dtype=np.uint8)
    opt = torch.optim.SGD(m.parameters(), lr=0.05)
    m.train()
    for _ in range(35):  # past Brevitas' statistics-collection steps, with weight updates
        loss = m(to_input(x)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return m.eval()


@pytest.fixture
def calibrated():
    return _calibrated

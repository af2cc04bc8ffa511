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

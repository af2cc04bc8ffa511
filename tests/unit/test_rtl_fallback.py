"""rtl.architecture=auto: a graph the streaming core cannot build goes to the unrolled core, and says why."""

import numpy as np
import pytest

from insitu.config import build_config
from insitu.errors import RTLError
from insitu.ir.builder import GraphBuilder
from insitu.ir.fixed import FixedType
from insitu.rundir import RunDir
from insitu.steps import rtl


def _residual_then_pool(tmp_path):
    rng = np.random.default_rng(0)
    t = FixedType(False, 8, 8)
    b = GraphBuilder(rng.integers(0, 256, (16, 1, 8, 8)), t, rng)
    x = b.requant(b.conv2d("inp", 3, 3, bits=4, padding=(1, 1, 1, 1)), bits=4)
    y = b.requant(b.conv2d(x, 3, 3, bits=4, padding=(1, 1, 1, 1)), bits=4)
    s = b.requant(b.add(x, y), bits=4)
    b.dense(b.flatten(b.avgpool(s, 2)), 3, bits=4)  # a pooling after a join: not a streaming block
    run = RunDir(tmp_path)
    b.model().save(run.path("export"))
    return run


def test_auto_falls_back_to_unrolled(tmp_path):
    run = _residual_then_pool(tmp_path)
    res = rtl.run(build_config("default", {"rtl": {"architecture": "auto"}}), run)
    assert res.summary["architecture"] == "unrolled" and "streaming RTL builds" in res.summary["streaming_refused"]
    assert (run.path("rtl", "design.json")).exists()


def test_streaming_asked_for_is_refused_by_name(tmp_path):
    run = _residual_then_pool(tmp_path)
    with pytest.raises(RTLError, match="after the blocks it could build"):
        rtl.run(build_config("default", {"rtl": {"architecture": "streaming"}}), run)

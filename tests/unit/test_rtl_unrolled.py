"""The unrolled core (a sample per clock) in cocotb + Icarus: every layer kind of the IR, on random graphs at
2-, 4-, 6- and 8-bit weights with signed and unsigned inputs, bit-exact with the reference under random
tvalid/tready gaps; the lowering to flat ops equals the reference; MLPs keep an initiation interval of 1."""

import shutil

import numpy as np
import pytest

from insitu.ir import lower, reference
from insitu.ir.synthetic import random_mlp
from insitu.rtl import unrolled
from insitu.sim.rtl import simulate
from tests.unit.test_ir_graph import GRAPHS

needs_icarus = pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs Icarus Verilog")
# (bits, signed) per graph: the large ones at two points, the small ones at all four
_POINTS = {"conv_padding_stride": [(2, False), (8, True)], "depthwise_separable_gap": [(4, True), (6, False)],
           "residual_add_concat": [(2, False), (4, True)]}
_ALL = [(2, False), (4, True), (6, False), (8, True)]
CASES = [(name, bits, signed) for name in GRAPHS for bits, signed in _POINTS.get(name, _ALL)]


def _save(x, tmp_path):
    path = tmp_path / "vectors.npz"
    np.savez(path, images=x)
    return path


@pytest.mark.parametrize("name", list(GRAPHS))
@pytest.mark.parametrize("bits,signed", _ALL)
def test_lowering_equals_the_reference(name, bits, signed):
    qm, x = GRAPHS[name](bits * 7 + 1, bits, signed)
    assert np.array_equal(lower.run(lower.lower(qm), x), reference.run(qm, x).reshape(len(x), -1))


@needs_icarus
@pytest.mark.parametrize("name,bits,signed", CASES)
def test_every_kind_is_bit_exact_unrolled(name, bits, signed, tmp_path):
    qm, x = GRAPHS[name](bits * 7, bits, signed)
    expected = reference.run(qm, x).reshape(len(x), -1)
    assert len(np.unique(expected)) >= 2  # the outputs vary: the comparison means something
    design = unrolled.generate(qm, tmp_path / "v", 2)
    assert design.beats == 1 and design.lanes == x[0].size
    r = simulate(design.files, design.to_dict(), _save(x, tmp_path), expected, tmp_path / "sim", len(x), 0.7, 0.6,
                 seed=bits, simulator="icarus")
    assert r.comparison.ok and r.comparison.vectors == len(x) and not r.frame_error


@needs_icarus
def test_unrolled_mlp_is_bit_exact_with_gaps_and_back_to_back(tmp_path):
    model = random_mlp(1, size=4, hidden=(8, 6))
    x = np.random.default_rng(0).integers(0, 256, (30, 4, 4), dtype=np.uint8)
    expected = reference.run(model, x)
    design = unrolled.generate(model, tmp_path / "v", 2)
    assert design.beats == 1 and design.to_dict()["architecture"] == "unrolled"
    vec = _save(x, tmp_path)
    r = simulate(design.files, design.to_dict(), vec, expected, tmp_path / "sim", 30, 0.7, 0.6, simulator="icarus")
    assert r.comparison.ok and r.comparison.vectors == 30
    r = simulate(design.files, design.to_dict(), vec, expected, tmp_path / "sim2", 30, simulator="icarus", shards=1)
    assert r.comparison.ok and r.ii_cycles == 1  # a sample per clock, back to back
    # sustained: 30 samples leave within 30 + latency cycles (the result FIFO never throttles the input)
    assert r.latency_first_to_valid >= 4
    assert r.edges <= 30 + r.latency_first_to_valid + 25


@needs_icarus
def test_unrolled_argmax_tree_many_outputs(tmp_path):
    model = random_mlp(3, size=4, hidden=(12,), n_classes=19)  # a 5-level registered argmax tree, odd sizes
    x = np.random.default_rng(1).integers(0, 256, (25, 4, 4), dtype=np.uint8)
    design = unrolled.generate(model, tmp_path / "v", 2)
    r = simulate(design.files, design.to_dict(), _save(x, tmp_path), reference.run(model, x), tmp_path / "sim", 25,
                 0.8, 0.7, simulator="icarus")
    assert r.comparison.ok and r.comparison.vectors == 25


def test_auto_architecture_streams_images_and_unrolls_sequences():
    from insitu.ir.synthetic import random_model

    assert unrolled.architecture_for(random_model(0, size=12)) == "streaming"
    assert unrolled.architecture_for(GRAPHS["sequence_1d"](0, 4, False)[0]) == "unrolled"  # 1-D convolutions
    assert unrolled.architecture_for(random_mlp(0)) == "unrolled"

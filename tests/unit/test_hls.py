import numpy as np
import pytest

from insitu.config import HLSConfig, StudentConfig
from insitu.distill.export import export_quantmodel
from insitu.hls import csim
from insitu.hls.project import write_project
from insitu.ir import reference


def _csim(tmp_path, calibrated, io_type, bits=(4, 4)):
    cfg = StudentConfig(channels=[3, 4], weight_bits=bits[0], act_bits=bits[1])
    qm = export_quantmodel(calibrated(cfg, size=16), 16, list("abc"))
    images = np.random.default_rng(2).integers(0, 256, (150, 16, 16), dtype=np.uint8)
    ref = reference.run(qm, images)
    hcfg = HLSConfig(io_type=io_type)
    project = write_project(qm, hcfg, tmp_path / "prj", images, reference.to_real(qm, ref))
    got = csim.run(project, hcfg)
    return project, ref, got


def test_csim_is_bit_exact_io_stream(tmp_path, calibrated):
    project, ref, got = _csim(tmp_path, calibrated, "io_stream", bits=(5, 3))
    assert got.shape == ref.shape == (150, 3)
    assert np.array_equal(got, ref)
    assert len(np.unique(ref, axis=0)) > 10
    # the project is usable with Vitis: testbench data and build scripts are there
    assert (project.path / "tb_data" / "tb_input_features.dat").exists()
    assert (project.path / "build_prj.tcl").exists() and (project.path / "insitu_csim_build.sh").exists()
    assert "xcku035-fbva676-2-e" in (project.path / "project.tcl").read_text()


@pytest.mark.slow
def test_csim_is_bit_exact_io_parallel(tmp_path, calibrated):
    _, ref, got = _csim(tmp_path, calibrated, "io_parallel", bits=(6, 6))
    assert np.array_equal(got, ref)


def test_parse_rejects_off_grid_values(tmp_path):
    from insitu.errors import ToolError

    (tmp_path / "r.log").write_text("0.5 0.25\n0.3 1\n")
    with pytest.raises(ToolError, match="not on the output grid"):
        csim.parse_results(tmp_path / "r.log", 2, 4)
    (tmp_path / "r.log").write_text("0.5 0.25\n")
    assert csim.parse_results(tmp_path / "r.log", 2, 4).tolist() == [[8, 4]]


def _strided_graph():
    from insitu.ir.builder import GraphBuilder
    from insitu.ir.fixed import FixedType

    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (120, 1, 13, 12))
    b = GraphBuilder(x, FixedType(False, 8, 8), rng)
    h = b.requant(b.conv2d("inp", 3, (2, 3), 4, stride=(2, 1), padding=(1, 0, 2, 1)), bits=4)  # asymmetric
    h = b.requant(b.conv2d(h, 4, 3, 5, stride=(2, 2), padding=(1, 1, 1, 1)), bits=3)  # symmetric
    b.dense(b.flatten(b.maxpool(h, 2)), 3, 4)
    return b.model(list("abc")), x[:, 0].astype(np.uint8)


@pytest.mark.parametrize("io_type", ["io_stream", pytest.param("io_parallel", marks=pytest.mark.slow)])
def test_csim_strided_padded_rectangular_convolutions(tmp_path, io_type):
    qm, images = _strided_graph()
    ref = reference.run(qm, images)
    hcfg = HLSConfig(io_type=io_type)
    project = write_project(qm, hcfg, tmp_path / "prj", images, reference.to_real(qm, ref))
    got = csim.run(project, hcfg)
    assert np.array_equal(got, ref) and len(np.unique(ref, axis=0)) > 10


def test_hls_refuses_what_it_lacks_by_name(tmp_path):
    from insitu.errors import ExportError
    from insitu.ir.builder import GraphBuilder
    from insitu.ir.fixed import FixedType

    rng = np.random.default_rng(0)
    b = GraphBuilder(rng.integers(0, 256, (8, 1, 8, 8)), FixedType(False, 8, 8), rng)
    b.reshape(b.requant(b.conv2d("inp", 2, 3, 4, depthwise=False), bits=4), (2, 36))
    with pytest.raises(ExportError, match="'reshape3' \\(reshape\\) is not supported by the hls_stream"):
        write_project(b.model(), HLSConfig(), tmp_path / "prj", np.zeros((1, 8, 8), np.uint8), np.zeros((1, 72)))
    assert not (tmp_path / "prj").exists()
    b = GraphBuilder(rng.integers(0, 256, (8, 1, 8, 8)), FixedType(False, 8, 8), rng)
    b.maxpool(b.requant(b.conv2d("inp", 2, 3, 4), bits=4), 3, stride=2)
    with pytest.raises(ExportError, match="(?s)maxpool overlapping.*requires stride = size.*use io_parallel"):
        write_project(b.model(), HLSConfig(), tmp_path / "prj", np.zeros((1, 8, 8), np.uint8), np.zeros((1, 18)))


def _global_max_scale_shift(seed, bits, signed, overlap):
    """Multi-channel signed or unsigned input, padded conv, an unfolded batch norm on a map, identity requant,
    max pooling (overlapping or not), global max pooling, a scale-and-shift on the vector."""
    from tests.unit.test_ir_graph import _builder

    b, x = _builder(seed, (3, 9, 8), signed, n=40)
    h = b.requant(b.conv2d("inp", 4, 3, bits, padding=(1, 1, 1, 1)), bits=bits)
    h = b.requant(b.scaleshift(h, bits), relu=False, bits=bits + 1, signed=True)
    h = b.maxpool(h, 3, stride=2) if overlap else b.maxpool(h, 2)
    b.scaleshift(b.global_maxpool(h), bits)
    return b.model(), x


def _overlapping_averages(seed, bits, signed, dims):
    """Average pooling with stride < size (windows of 9 and 3, or 3 and 2), 2-D or 1-D, both roundings."""
    from tests.unit.test_ir_graph import _builder

    b, x = _builder(seed, (3, 9, 10) if dims == 2 else (3, 17), signed, n=60)
    h = b.avgpool("inp", 3, stride=2, extra_frac=1, rounding="RND_CONV")
    h = b.avgpool(h, 2, stride=1, extra_frac=0, rounding="TRN")
    b.dense(b.flatten(h), 3, bits)
    return b.model(), x


def _every_kind_cases():
    from tests.unit.test_ir_graph import GRAPHS

    def gmp(overlap):
        return lambda seed, bits, signed: _global_max_scale_shift(seed, bits, signed, overlap)

    def avg(dims):
        return lambda seed, bits, signed: _overlapping_averages(seed, bits, signed, dims)

    graphs = {"sequence_1d": GRAPHS["sequence_1d"], "mlp_gap_1d": GRAPHS["mlp_gap_1d"], "gmp_scaleshift": gmp(False),
              "gmp_overlapping_pool": gmp(True), "residual_add_concat": GRAPHS["residual_add_concat"],
              "overlapping_avg_2d": avg(2), "overlapping_avg_1d": avg(1)}
    parallel_only = ("gmp_overlapping_pool", "residual_add_concat", "overlapping_avg_2d", "overlapping_avg_1d")
    cases = []
    for i, name in enumerate(graphs):
        for io_type in ("io_stream", "io_parallel"):
            if io_type == "io_stream" and name in parallel_only:
                continue  # overlapping pooling: io_parallel only
            bits, signed = [(2, False), (4, True), (6, False), (8, True)][(i + len(cases)) % 4]
            slow = [pytest.mark.slow] if io_type == "io_parallel" and name == "residual_add_concat" else []
            cases.append(pytest.param(graphs[name], io_type, bits, signed, id=f"{name}-{io_type}-{bits}",
                                      marks=slow))
    return cases


@pytest.mark.parametrize("make,io_type,bits,signed", _every_kind_cases())
def test_csim_is_bit_exact_on_every_kind(tmp_path, make, io_type, bits, signed):
    """1-D convolutions (asymmetric padding, stride, depthwise), 1-D max and average pooling, 1-D global
    average, scale-and-shift, global max, overlapping max pooling, map outputs (channels-last in hls4ml,
    reordered), multi-channel signed inputs."""
    qm, x = make(bits * 5 + 1, bits, signed)
    ref = reference.run(qm, x).reshape(len(x), -1)
    assert len(np.unique(ref)) > 2
    hcfg = HLSConfig(io_type=io_type)
    project = write_project(qm, hcfg, tmp_path / "prj", x, reference.to_real(qm, ref))
    assert np.array_equal(csim.run(project, hcfg), ref)


@pytest.mark.parametrize("io_type", ["io_stream", pytest.param("io_parallel", marks=pytest.mark.slow)])
def test_csim_depthwise_separable(tmp_path, io_type):
    from insitu.ir.builder import GraphBuilder
    from insitu.ir.fixed import FixedType

    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (100, 1, 12, 12))
    b = GraphBuilder(x, FixedType(False, 8, 8), rng)
    h = b.requant(b.conv2d("inp", 3, 3, 4, stride=(2, 2), padding=(1, 1, 1, 1)), bits=4)
    h = b.requant(b.conv2d(h, 3, 3, 4, padding=(1, 1, 1, 1), depthwise=True), bits=4)
    h = b.requant(b.conv2d(h, 6, 1, 4), bits=4)
    b.dense(b.flatten(h), 3, 4)
    qm, images = b.model(list("abc")), x[:, 0].astype(np.uint8)
    ref = reference.run(qm, images)
    hcfg = HLSConfig(io_type=io_type)
    project = write_project(qm, hcfg, tmp_path / "prj", images, reference.to_real(qm, ref))
    assert np.array_equal(csim.run(project, hcfg), ref) and len(np.unique(ref, axis=0)) > 10


def _pooled(seed, pool, after_relu=True, dense=True):
    from insitu.ir.builder import GraphBuilder
    from insitu.ir.fixed import FixedType

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (200, 1, 12, 12))
    b = GraphBuilder(x, FixedType(False, 8, 8), rng)
    h = b.conv2d("inp", 3, 3, 4)  # 10x10
    if after_relu:
        h = b.requant(h, bits=5)
    h = b.global_avgpool(h, extra_frac=1) if pool == "gap" else b.flatten(b.avgpool(h, pool, extra_frac=0))
    if dense:
        b.dense(h, 3, 4)
    return b.model(), x[:, 0].astype(np.uint8)


@pytest.mark.parametrize("io_type", ["io_stream", pytest.param("io_parallel", marks=pytest.mark.slow)])
@pytest.mark.parametrize("pool,after_relu,dense", [("gap", True, False), ("gap", False, True), (2, True, False),
                                                   (5, False, False)])
def test_csim_average_pooling(tmp_path, io_type, pool, after_relu, dense):
    """Averages over 100, 4 (round-half-even ties are frequent) and 25 values; unsigned and signed inputs
    (a pool straight after a convolution sees its signed accumulators); the pooled values themselves as outputs."""
    qm, images = _pooled(7, pool, after_relu, dense)
    ref = reference.run(qm, images)
    hcfg = HLSConfig(io_type=io_type)
    project = write_project(qm, hcfg, tmp_path / "prj", images, reference.to_real(qm, ref))
    assert np.array_equal(csim.run(project, hcfg), ref) and len(np.unique(ref)) > 5


def test_hls_refuses_pooling_it_does_not_map(tmp_path):
    from insitu.errors import ExportError
    from insitu.ir.builder import GraphBuilder
    from insitu.ir.fixed import FixedType

    rng = np.random.default_rng(0)
    b = GraphBuilder(rng.integers(0, 256, (8, 1, 8, 8)), FixedType(False, 8, 8), rng)
    b.flatten(b.avgpool(b.requant(b.conv2d("inp", 2, 3, 4), bits=4), 3, stride=1))
    with pytest.raises(ExportError, match="(?s)avgpool overlapping.*hls_stream.*requires stride = size"):
        write_project(b.model(), HLSConfig(), tmp_path / "prj", np.zeros((1, 8, 8), np.uint8), np.zeros((1, 32)))



@pytest.mark.parametrize("io_type", ["io_stream", pytest.param("io_parallel", marks=pytest.mark.slow)])
def test_csim_residual_add_and_concatenate(tmp_path, io_type):
    """A graph: padded convolutions, a residual add of operands with different fractional bits, a channel
    concatenation with a 1x1 branch, pooling and a dense layer."""
    from insitu.hls.torch_model import GraphNet, to_torch
    from insitu.ir.builder import GraphBuilder
    from insitu.ir.fixed import FixedType

    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (150, 1, 10, 10))
    b = GraphBuilder(x, FixedType(False, 8, 8), rng)
    a = b.requant(b.conv2d("inp", 3, 3, 4, padding=(1, 1, 1, 1)), bits=4)
    c = b.requant(b.conv2d(a, 3, 3, 4, padding=(1, 1, 1, 1)), bits=5)
    s = b.add(a, c)
    j = b.concatenate(s, b.requant(b.conv2d(a, 2, 1, 4), bits=4))
    s2 = b.add(j, b.requant(b.conv2d(j, 5, 1, 4), bits=4))  # a second join: hls4ml names it add_1
    b.dense(b.flatten(b.maxpool(s2, 2)), 3, 4)
    qm, images = b.model(list("abc")), x[:, 0].astype(np.uint8)
    assert not qm.is_sequence() and isinstance(to_torch(qm), GraphNet)
    ref = reference.run(qm, images)
    hcfg = HLSConfig(io_type=io_type)
    project = write_project(qm, hcfg, tmp_path / "prj", images, reference.to_real(qm, ref))
    assert np.array_equal(csim.run(project, hcfg), ref) and len(np.unique(ref, axis=0)) > 10


@pytest.mark.parametrize("io_type", ["io_stream", pytest.param("io_parallel", marks=pytest.mark.slow)])
@pytest.mark.parametrize("rounding,saturation", [("RND_CONV", "SAT"), ("TRN", "WRAP")])
def test_csim_identity_requant_signed(tmp_path, io_type, rounding, saturation):
    """A requantisation without activation (signed output), as the model's output and inside it."""
    from insitu.ir.builder import GraphBuilder
    from insitu.ir.fixed import FixedType

    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, (200, 1, 10, 10))
    b = GraphBuilder(x, FixedType(False, 8, 8), rng)
    h = b.requant(b.conv2d("inp", 3, 3, 4), relu=False, bits=4, signed=True, rounding=rounding,
                  saturation=saturation)
    b.requant(b.dense(b.flatten(h), 4, 4), relu=False, bits=5, signed=True, rounding=rounding, saturation=saturation)
    qm, images = b.model(), x[:, 0].astype(np.uint8)
    ref = reference.run(qm, images)
    assert (ref < 0).any() and len(np.unique(ref)) > 8
    hcfg = HLSConfig(io_type=io_type)
    project = write_project(qm, hcfg, tmp_path / "prj", images, reference.to_real(qm, ref))
    assert np.array_equal(csim.run(project, hcfg), ref)

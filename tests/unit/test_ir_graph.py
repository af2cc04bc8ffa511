"""The graph IR and its layer set: the integer reference against an independent oracle (PyTorch in float64 on
integer values, Python Fractions for every rounding) on seeded random graphs of every kind, at 2-8 bit weights,
signed and unsigned inputs and odd sizes; save/load round trips; and every refusal naming the layer."""

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from insitu.errors import ExportError, RTLError
from insitu.ir import reference, support
from insitu.ir.builder import GraphBuilder
from insitu.ir.fixed import FixedType
from insitu.ir.layers import (Add, AvgPool1D, AvgPool2D, Concatenate, Conv1D, Conv2D, Dense, Flatten, GlobalAvgPool,
                              GlobalMaxPool, Input, MaxPool1D, MaxPool2D, Requant, Reshape, ScaleShift)
from insitu.ir.model import QuantModel


# --- the oracle: written independently of ir/reference.py ------------------------------------------------
def _round(v: Fraction, rounding: str) -> int:
    return round(v) if rounding == "RND_CONV" else int(np.floor(v))  # round(): half to even


def _cast(values: np.ndarray, frac_in: int, t: FixedType) -> np.ndarray:
    out = np.empty(values.shape, np.int64)
    for i, v in np.ndenumerate(values):
        q = _round(Fraction(int(v)) * Fraction(2) ** (t.frac - frac_in), t.rounding)
        if t.saturation == "SAT":
            q = min(max(q, t.min_int), t.max_int)
        else:
            q = (q - t.min_int) % (1 << t.width) + t.min_int
        out[i] = q
    return out


def _mean(sums: np.ndarray, count: int, frac_in: int, t: FixedType) -> np.ndarray:
    out = np.empty(sums.shape, np.int64)
    for i, v in np.ndenumerate(sums):
        q = _round(Fraction(int(v), count) * Fraction(2) ** (t.frac - frac_in), t.rounding)
        out[i] = min(max(q, t.min_int), t.max_int)
    return out


def oracle(qm: QuantModel, x: np.ndarray) -> np.ndarray:
    vals: dict[str, tuple[torch.Tensor, int]] = {}
    ins = qm.inputs_of()
    d = torch.float64
    for layer in qm.layers:
        srcs = [vals[s] for s in ins[layer.name]]
        if isinstance(layer, Input):
            vals[layer.name] = (torch.tensor(x, dtype=d), layer.out_type.frac)
            continue
        v, f = srcs[0]
        if isinstance(layer, (Conv2D, Conv1D)):
            conv = F.conv2d if isinstance(layer, Conv2D) else F.conv1d
            pad = layer.padding
            padded = F.pad(v, (pad[2], pad[3], pad[0], pad[1]) if isinstance(layer, Conv2D) else tuple(pad))
            out = conv(padded, torch.tensor(layer.weight, dtype=d), torch.tensor(layer.bias, dtype=d),
                       stride=layer.stride, groups=layer.groups)
            vals[layer.name] = (out, layer.out_type.frac)
        elif isinstance(layer, Dense):
            vals[layer.name] = (v @ torch.tensor(layer.weight, dtype=d).T + torch.tensor(layer.bias, dtype=d),
                                layer.out_type.frac)
        elif isinstance(layer, ScaleShift):
            shape = (1, -1) + (1,) * (v.dim() - 2)
            vals[layer.name] = (v * torch.tensor(layer.scale, dtype=d).reshape(shape)
                                + torch.tensor(layer.shift, dtype=d).reshape(shape), layer.out_type.frac)
        elif isinstance(layer, Requant):
            src = torch.clamp(v, min=0) if layer.relu else v
            vals[layer.name] = (torch.tensor(_cast(src.numpy(), f, layer.out_type), dtype=d), layer.out_type.frac)
        elif isinstance(layer, (MaxPool2D, MaxPool1D)):
            pool = F.max_pool2d if isinstance(layer, MaxPool2D) else F.max_pool1d
            vals[layer.name] = (pool(v, layer.size, layer.stride or layer.size), f)
        elif isinstance(layer, (AvgPool2D, AvgPool1D)):
            two = isinstance(layer, AvgPool2D)
            pool = F.avg_pool2d if two else F.avg_pool1d
            n = layer.size ** (2 if two else 1)
            sums = torch.round(pool(v, layer.size, layer.stride or layer.size) * n)  # exact: small integers
            vals[layer.name] = (torch.tensor(_mean(sums.numpy(), n, f, layer.out_type), dtype=d), layer.out_type.frac)
        elif isinstance(layer, GlobalAvgPool):
            flat = v.reshape(v.shape[0], v.shape[1], -1)
            vals[layer.name] = (torch.tensor(_mean(flat.sum(2).numpy(), flat.shape[2], f, layer.out_type), dtype=d),
                                layer.out_type.frac)
        elif isinstance(layer, GlobalMaxPool):
            vals[layer.name] = (v.reshape(v.shape[0], v.shape[1], -1).amax(2), f)
        elif isinstance(layer, (Add, Concatenate)):
            t = layer.out_type.frac
            parts = [s * 2.0 ** (t - fs) for s, fs in srcs]
            vals[layer.name] = (sum(parts) if isinstance(layer, Add) else torch.cat(parts, 1), t)
        elif isinstance(layer, Flatten):
            vals[layer.name] = (v.reshape(v.shape[0], -1), f)
        elif isinstance(layer, Reshape):
            vals[layer.name] = (v.reshape(v.shape[0], *layer.shape), f)
        else:
            raise AssertionError(f"oracle lacks {layer.kind}")
    out = vals[qm.layers[-1].name][0].numpy()
    assert np.array_equal(out, np.round(out))
    return out.astype(np.int64)


# --- random graphs of every kind ----------------------------------------------------------------------
def _builder(seed, shape, signed=False, n=12):
    rng = np.random.default_rng(seed)
    t = FixedType(True, 8, 7) if signed else FixedType(False, 8, 8)
    x = rng.integers(t.min_int, t.max_int + 1, (n, *shape))
    return GraphBuilder(x, t, rng), x


GRAPHS = {}


def graph(fn):
    GRAPHS[fn.__name__] = fn
    return fn


@graph
def conv_padding_stride(seed, bits, signed):
    b, x = _builder(seed, (2, 11, 9), signed)
    h = b.conv2d("inp", 3, 3, bits, stride=(2, 1), padding=(1, 1, 2, 0))
    h = b.requant(h, relu=True, bits=bits)
    h = b.conv2d(h, 4, (2, 4), bits, stride=(3, 2), padding=(1, 0, 1, 2))  # even and non-square kernels
    h = b.requant(h, relu=False, bits=bits, signed=True)
    return b.model(), x


@graph
def depthwise_separable_gap(seed, bits, signed):
    b, x = _builder(seed, (1, 13, 13), signed)
    h = b.requant(b.conv2d("inp", 4, 3, bits, stride=(2, 2)), bits=bits)
    h = b.requant(b.conv2d(h, 4, 3, bits, padding=(1, 1, 1, 1), depthwise=True), bits=bits)  # depthwise 3x3
    h = b.requant(b.conv2d(h, 6, 1, bits), bits=bits)  # pointwise
    h = b.global_avgpool(h, extra_frac=1)
    return b.model(), x


@graph
def residual_add_concat(seed, bits, signed):
    b, x = _builder(seed, (2, 8, 8), signed)
    a = b.requant(b.conv2d("inp", 3, 3, bits, padding=(1, 1, 1, 1)), bits=bits)
    c = b.requant(b.conv2d(a, 3, 3, bits, padding=(1, 1, 1, 1)), bits=bits + 1)
    s = b.add(a, c)  # the skip path: operands of different fractional bits, aligned
    j = b.concatenate(s, b.requant(b.conv2d(a, 2, 1, bits), bits=bits))
    h = b.maxpool(j, 3, stride=2)  # overlapping
    return b.model(), x


@graph
def pools_and_reshape(seed, bits, signed):
    b, x = _builder(seed, (3, 9, 10), signed)
    h = b.avgpool("inp", 3, extra_frac=0, rounding="TRN")  # window of 9: a non-power-of-two average
    h = b.avgpool(b.maxpool(h, 1), 1)
    h = b.reshape(h, (3, 3, 3))
    h = b.scaleshift(h, bits)
    h = b.global_maxpool(b.requant(h, relu=False, bits=max(bits, 3), signed=True))
    return b.model(), x


@graph
def sequence_1d(seed, bits, signed):
    b, x = _builder(seed, (3, 17), signed)  # (C, L): the lidar column with a kernel along the beams
    h = b.requant(b.conv1d("inp", 4, 3, bits, padding=(1, 1)), bits=bits)
    h = b.requant(b.conv1d(h, 4, 5, bits, stride=2, padding=(2, 1), depthwise=True), bits=bits)
    h = b.maxpool(h, 2)
    h = b.avgpool(h, 2, extra_frac=1)
    h = b.dense(b.flatten(h), 5, bits)
    return b.model(), x


@graph
def mlp_gap_1d(seed, bits, signed):
    b, x = _builder(seed, (5, 7), signed)
    h = b.global_avgpool("inp", extra_frac=3, rounding="TRN")
    h = b.requant(b.dense(h, 6, bits), relu=False, bits=bits, signed=True, saturation="WRAP")
    return b.model(), x


@pytest.mark.parametrize("name", list(GRAPHS))
@pytest.mark.parametrize("bits", [2, 4, 6, 8])
@pytest.mark.parametrize("signed", [False, True])
def test_reference_equals_the_oracle_on_random_graphs(name, bits, signed, tmp_path):
    seen = set()
    for seed in range(2):
        qm, x = GRAPHS[name](seed * 97 + bits, bits, signed)
        ref = reference.run(qm, x)
        assert np.array_equal(ref, oracle(qm, x)), f"{name} seed {seed}"
        seen |= set(np.unique(ref).tolist())
        qm.save(tmp_path / name)
        again = QuantModel.load(tmp_path / name)
        assert np.array_equal(reference.run(again, x), ref) and again.shapes() == qm.shapes()
    assert len(seen) >= 3  # outputs vary: the comparison means something


def test_sequences_stay_sequences_and_graphs_name_their_inputs():
    qm, _ = GRAPHS["residual_add_concat"](0, 4, False)
    assert not qm.is_sequence() and qm.inputs_of()[qm.layers[-2].name] == tuple(qm.layers[-2].inputs)
    from insitu.ir.synthetic import random_model

    seq = random_model(seed=1, size=10, channels=(2,))
    assert seq.is_sequence() and all(not l.inputs for l in seq.layers)


# --- refusals that name the layer ---------------------------------------------------------------------
def _tiny():
    b, x = _builder(0, (1, 6, 6))
    h = b.requant(b.conv2d("inp", 2, 3, 4), bits=4)
    return b, h


def _layers_of(b):
    return list(b.layers)


def test_graph_errors_name_the_layer():
    b, h = _tiny()
    layers = _layers_of(b)
    t = FixedType(False, 4, 4)
    with pytest.raises(ExportError, match="reads 'nowhere'.*dangling"):
        QuantModel(layers + [Requant("r", True, t, inputs=("nowhere",))], []).validate()
    with pytest.raises(ExportError, match="repeated: r"):
        QuantModel(layers + [Requant("r", True, t), Requant("r", True, t)], []).validate()
    cyc = [layers[0], Requant("a", True, t, inputs=("b",)), Requant("b", True, t, inputs=("a",))]
    with pytest.raises(ExportError, match="cycle or is out of order"):
        QuantModel(cyc, []).validate()
    from insitu.ir.graph import topological_order

    with pytest.raises(ExportError, match="cycle: a -> b -> a"):
        topological_order(cyc)
    with pytest.raises(ExportError, match="never used"):
        QuantModel(layers + [Requant("side", True, t, inputs=(layers[1].name,)),
                             Requant("end", True, t, inputs=(h,))], []).validate()
    add = Add("add", FixedType(True, 12, 4), inputs=(h,))
    with pytest.raises(ExportError, match="'add' \\(add\\) has 1 inputs"):
        QuantModel(layers + [add], []).validate()


def test_layer_parameters_are_checked_by_name():
    b, h = _tiny()
    conv = b.layers[1]
    base = [b.layers[0]]

    def bad(**kw):
        c = Conv2D(conv.name, kw.pop("weight", conv.weight), conv.bias, conv.weight_type, conv.out_type, **kw)
        return QuantModel(base + [c], []).validate

    with pytest.raises(ExportError, match="groups=3 on 1 channels; allowed: 1 or 1"):
        bad(groups=3)()
    with pytest.raises(ExportError, match="stride=5 is not supported"):
        bad(stride=(5, 1))()
    with pytest.raises(ExportError, match="kernel height=8"):
        bad(weight=np.zeros((2, 1, 8, 3), np.int64))()
    with pytest.raises(ExportError, match="has no valid output"):
        QuantModel(base + [MaxPool2D("p", 7)], []).validate()
    with pytest.raises(ExportError, match="padding .* must be 0 to kernel-1"):
        bad(padding=(3, 0, 0, 0))()
    narrow = Conv2D(conv.name, conv.weight, conv.bias, conv.weight_type, FixedType(True, 4, conv.out_type.frac))
    with pytest.raises(ExportError, match="narrower than the exact"):
        QuantModel(base + [narrow], []).validate()
    with pytest.raises(ExportError, match="limit is 10"):
        QuantModel(base + [conv], []).validate(max_acc_bits=10)
    with pytest.raises(ExportError, match="expects \\(7,\\) inputs"):
        QuantModel(base + [Flatten("f"), Dense("d", np.ones((2, 7), np.int64), np.zeros(2, np.int64),
                                               FixedType(True, 4, 3), FixedType(True, 16, 11))], []).validate()
    with pytest.raises(ExportError, match="cannot reshape"):
        QuantModel(base + [Reshape("r", (5, 5))], []).validate()


def test_older_ir_files_are_refused_with_the_fix(tmp_path):
    from insitu.ir.synthetic import random_model

    random_model(seed=0, size=8, channels=(2,)).save(tmp_path)
    doc = json.loads((tmp_path / "quantmodel.json").read_text())
    doc["ir_version"] = 1
    (tmp_path / "quantmodel.json").write_text(json.dumps(doc))
    with pytest.raises(ExportError, match="IR version 1, this insitu reads version 2") as err:
        QuantModel.load(tmp_path)
    assert "insitu export" in err.value.fix


# --- the support table --------------------------------------------------------------------------------
def test_support_table_in_docs_is_the_registry():
    doc = Path(__file__).resolve().parents[2] / "docs" / "support.md"
    assert doc.read_text() == support.markdown(), "regenerate: python -m insitu.ir.support > docs/support.md"


def test_backends_refuse_unsupported_kinds_by_name(tmp_path):
    from insitu.rtl import streaming, unrolled

    qm, _ = GRAPHS["depthwise_separable_gap"](0, 4, False)
    with pytest.raises(RTLError, match="this model has: GlobalAvgPool"):  # padding and stride stream
        streaming.generate(qm, tmp_path / "s", 1, 2.0)
    support.require(qm, "rtl_unrolled", RTLError)  # every kind lowers to flat ops
    big = GraphBuilder(np.zeros((2, 1, 48, 48), np.int64), FixedType(False, 8, 8), np.random.default_rng(0))
    big.conv2d("inp", 8, 3)
    with pytest.raises(RTLError, match="(?s)conv2d1.*16928 x 2304 constant matrix.*rtl.architecture=streaming"):
        unrolled.generate(big.model(), tmp_path / "u", 2.0)
    support.require(qm, "hls_stream")  # a depthwise-separable CNN with global average pooling runs in hls4ml
    residual, _ = GRAPHS["residual_add_concat"](0, 4, False)
    with pytest.raises(RTLError, match="is not supported by the rtl_streaming backend"):
        support.require(residual, "rtl_streaming", RTLError)
    pools, _ = GRAPHS["pools_and_reshape"](0, 4, False)
    with pytest.raises(ExportError, match="\\(reshape\\) is not supported by the hls_stream backend"):
        support.require(pools, "hls_stream")
    support.require(pools, "reference")
    # every row names every backend, and every kind of the IR has a row
    from insitu.ir.layers import LAYER_TYPES

    assert all(set(v) == set(support.BACKENDS) for v in support.SUPPORT.values())
    rows = " ".join(support.SUPPORT)
    assert all(kind in rows for kind in LAYER_TYPES)

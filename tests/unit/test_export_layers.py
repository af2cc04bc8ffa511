"""Brevitas modules built from the IR's layer kinds export to the IR, and the reference equals Brevitas' own
forward pass bit for bit: 1-D convolutions (padding, stride, depthwise), padded and strided 2-D convolutions,
overlapping max pooling, 1-D max pooling, global max pooling, average and global average pooling completed by their quantizer,
identity requantisation to signed types, at 2-, 4-, 6- and 8-bit weights with signed and unsigned inputs, with
power-of-two weight scales per tensor and per output channel."""

from collections import OrderedDict

import brevitas.nn as qnn
import numpy as np
import pytest
import torch
from brevitas.inject.enum import ScalingImplType
from brevitas.quant import Int8ActPerTensorFixedPoint, Int32Bias
from torch import nn

from insitu.distill.export import export_quantmodel, verify_against_brevitas
from insitu.distill.student import act_quant, weight_quant
from insitu.errors import ExportError
from insitu.ir import reference


from insitu.distill.student import InputQuant as UnsignedInput  # noqa: E402  (uint8 codes / 256)


class SignedInput(Int8ActPerTensorFixedPoint):
    """int8 codes / 128: a constant scale of 2^-7."""

    scaling_impl_type = ScalingImplType.CONST
    scaling_const = 1.0
    max_val = 1.0
    min_val = -1.0


def signed_act(bits: int) -> type:
    return type(f"Int{bits}Act", (Int8ActPerTensorFixedPoint,), {"bit_width": bits})


PER_CHANNEL = {"flag": False}  # set by the test: the weight quantizers of the models below


def _wq(bits):
    return weight_quant(bits, PER_CHANNEL["flag"])


def _conv(cls, cin, cout, k, bits, **kw):
    return cls(cin, cout, k, weight_quant=_wq(bits), bias_quant=Int32Bias, return_quant_tensor=True, **kw)


def _relu(bits):
    return qnn.QuantReLU(act_quant=act_quant(bits), return_quant_tensor=True)


def _ident(bits):
    return qnn.QuantIdentity(act_quant=signed_act(bits), return_quant_tensor=True)


def seq_1d(bits, signed):
    c = 3
    return (c, 17), OrderedDict([
        ("inp", qnn.QuantIdentity(act_quant=SignedInput if signed else UnsignedInput, return_quant_tensor=True)),
        ("conv0", _conv(qnn.QuantConv1d, c, 4, 3, bits, padding=1)),
        ("relu0", _relu(bits)),
        ("conv1", _conv(qnn.QuantConv1d, 4, 4, 5, bits, padding=2, stride=2, groups=4)),  # depthwise, strided
        ("id1", _ident(bits)),
        ("pool1", nn.MaxPool1d(2)),
        ("avg1", nn.AvgPool1d(2)), ("q1", _ident(bits + 2)),
        ("gmp", nn.AdaptiveMaxPool1d(1)), ("flat", nn.Flatten()),  # global max pooling
        ("fc", qnn.QuantLinear(4, 5, bias=True, weight_quant=_wq(bits), bias_quant=Int32Bias,
                               return_quant_tensor=True)),
    ])


def image_gap(bits, signed):
    return (2, 11, 10), OrderedDict([
        ("inp", qnn.QuantIdentity(act_quant=SignedInput if signed else UnsignedInput, return_quant_tensor=True)),
        ("conv0", _conv(qnn.QuantConv2d, 2, 4, 3, bits, padding=1, stride=2)),  # 6 x 5
        ("relu0", _relu(bits)),
        ("pool0", nn.MaxPool2d(3, stride=1)),  # overlapping: 4 x 3
        ("conv1", _conv(qnn.QuantConv2d, 4, 4, 3, bits, padding=1, groups=4)),
        ("id1", _ident(bits)),
        ("avg1", nn.AvgPool2d(3, stride=1)), ("q1", _ident(bits + 1)),  # overlapping averages of 9 values
        ("gap", nn.AdaptiveAvgPool2d(1)), ("flat", nn.Flatten()), ("q2", _relu(bits + 2)),  # GAP, ReLU after
        ("fc", qnn.QuantLinear(4, 3, bias=True, weight_quant=_wq(bits), bias_quant=Int32Bias,
                               return_quant_tensor=True)),
    ])


def _calibrate(model: nn.Sequential, x: torch.Tensor) -> nn.Sequential:
    torch.manual_seed(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.02)
    model.train()
    for _ in range(30):  # past Brevitas' statistics collection, with weight updates
        out = model(x)
        loss = getattr(out, "value", out).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.mark.parametrize("make", [seq_1d, image_gap])
@pytest.mark.parametrize("bits,signed,per_channel", [(2, False, False), (4, True, False), (6, False, False),
                                                     (8, True, False), (4, False, True), (6, True, True),
                                                     (8, False, True)])
def test_brevitas_layers_export_bit_exact(make, bits, signed, per_channel, monkeypatch):
    monkeypatch.setitem(PER_CHANNEL, "flag", per_channel)
    shape, mods = make(bits, signed)
    torch.manual_seed(bits)
    model = nn.Sequential(mods)
    with torch.no_grad():  # per channel: one channel of each weighted layer 2x larger, on its own scale
        for m in model.modules():
            if per_channel and isinstance(m, (qnn.QuantConv1d, qnn.QuantConv2d, qnn.QuantLinear)):
                m.weight[0] *= 2
    rng = np.random.default_rng(bits)
    lo, hi = (-128, 127) if signed else (0, 255)
    codes = rng.integers(lo, hi + 1, (300, *shape))
    frac = 7 if signed else 8
    _calibrate(model, torch.from_numpy(codes * 2.0 ** -frac).float())
    qm = export_quantmodel(model, 0, list("abcde")[: 5 if make is seq_1d else 3], input_shape=shape)
    assert qm.input.out_type.signed == signed and qm.input.out_type.frac == frac
    kinds = [layer.kind for layer in qm.layers]
    if make is seq_1d:
        assert kinds == ["input", "conv1d", "requant", "conv1d", "requant", "maxpool1d", "avgpool1d", "globalmaxpool",
                         "dense"]
        assert qm.layers[3].groups == 4 and qm.layers[3].stride == 2 and not qm.layers[4].relu
    else:
        assert kinds == ["input", "conv2d", "requant", "maxpool2d", "conv2d", "requant", "avgpool2d",
                         "globalavgpool", "dense"]
        assert qm.layers[3].stride == 1 and qm.layers[6].stride == 1 and not qm.layers[7].out_type.signed
    weighted = [layer for layer in qm.layers if hasattr(layer, "weight_type")]
    widths = [layer.weight_type.width for layer in weighted]
    if per_channel:  # channels on different scales: the finest shared, the others shifted (a wider type)
        assert any(wd > bits for wd in widths), widths
    else:
        assert widths == [bits] * len(weighted)
    ref = reference.run(qm, codes)
    assert len(np.unique(ref)) > 3
    r = verify_against_brevitas(qm, model, codes, ref)
    assert r["bit_exact_vectors"] == r["vectors"] == 300


def test_an_average_needs_its_quantizer():
    shape, mods = image_gap(4, False)
    del mods["q1"]
    model = nn.Sequential(mods).eval()
    with pytest.raises(ExportError, match="(?s)'avg1' is followed by AdaptiveAvgPool2d.*QuantIdentity or QuantReLU"):
        export_quantmodel(model, 0, list("abc"), input_shape=shape)
    shape, mods = image_gap(4, False)
    mods["gap"] = nn.AdaptiveAvgPool2d(2)
    with pytest.raises(ExportError, match="(?s)does not run on an input of shape \\(2, 11, 10\\).*mat1 and mat2"):
        export_quantmodel(nn.Sequential(mods).eval(), 0, list("abc"), input_shape=shape)
    mods["fc"] = qnn.QuantLinear(16, 3, bias=True, weight_quant=weight_quant(4), bias_quant=Int32Bias)
    with pytest.raises(ExportError, match="adaptive average pooling to 2"):
        export_quantmodel(nn.Sequential(mods).eval(), 0, list("abc"), input_shape=shape)

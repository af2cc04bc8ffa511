from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from insitu.config import StudentConfig
from insitu.distill.export import export_quantmodel, verify_against_brevitas
from insitu.distill.student import build_student
from insitu.errors import ExportError
from insitu.ir import reference
from insitu.ir.model import QuantModel


@pytest.mark.parametrize("bits", [(3, 3), (4, 6), (6, 4), (8, 8)])
def test_reference_equals_brevitas(bits, calibrated):
    cfg = StudentConfig(channels=[6, 5], weight_bits=bits[0], act_bits=bits[1])
    m = calibrated(cfg)
    qm = export_quantmodel(m, 20, ["a", "b", "c"])
    images = np.random.default_rng(9).integers(0, 256, (300, 20, 20), dtype=np.uint8)
    result = verify_against_brevitas(qm, m, images)
    assert result == {"vectors": 300, "bit_exact_vectors": 300}
    ints = reference.run(qm, images)
    assert len(np.unique(ints, axis=0)) > 10  # a model that outputs constants would prove nothing


def test_ir_types_follow_the_quantizers(calibrated):
    qm = export_quantmodel(calibrated(StudentConfig(arch="plain", channels=[4, 4], weight_bits=5, act_bits=4,
                                                           weight_scale="tensor")), 20,
                           list("abc"))
    kinds = [l.kind for l in qm.layers]
    assert kinds == ["input", "conv2d", "requant", "maxpool2d", "conv2d", "requant", "maxpool2d", "flatten", "dense"]
    assert qm.layers[0].out_type.hls() == "ap_ufixed<8,0>"
    assert qm.layers[1].weight_type.width == 5 and np.abs(qm.layers[1].weight).max() <= 15
    assert qm.layers[2].out_type.width == 4 and qm.layers[2].out_type.rounding == "RND_CONV"


def _channel_codes(weight: np.ndarray) -> list[np.ndarray]:
    """Each output channel's integers with the common power of two divided out: its codes at its own scale."""
    out = []
    for w in weight.reshape(weight.shape[0], -1):
        shift = 0
        while np.any(w) and np.all(w % (2 << shift) == 0):
            shift += 1
        out.append(w >> shift)
    return out


@pytest.mark.parametrize("scale", ["tensor", "channel"])
def test_pointwise_weight_bits(calibrated, scale):
    """The 1x1 convolutions of a separable student at their own width; the reference still equals Brevitas.
    Per channel, every channel's codes keep the quantizer's width; the layer's integers share the finest scale."""
    m = calibrated(StudentConfig(channels=[4, 6, 8], weight_bits=6, pointwise_weight_bits=3, act_bits=5,
                                 weight_scale=scale), size=24)
    qm = export_quantmodel(m, 24, list("abc"))
    convs = [l for l in qm.layers if l.kind == "conv2d"]
    if scale == "tensor":
        widths = {tuple(l.weight.shape[2:]): l.weight_type.width for l in convs}
        assert widths == {(3, 3): 6, (1, 1): 3}
        assert max(np.abs(l.weight).max() for l in convs if l.weight.shape[2:] == (1, 1)) <= 3
    else:
        for layer in convs:
            bits = 3 if layer.weight.shape[2:] == (1, 1) else 6
            codes = _channel_codes(layer.weight)
            assert max(np.abs(c).max() for c in codes) <= 2 ** (bits - 1) - 1
            assert layer.weight_type.width >= bits and np.abs(layer.weight).max() <= 2 ** (layer.weight_type.width - 1)
        assert any(l.weight_type.width > (3 if l.weight.shape[2:] == (1, 1) else 6) for l in convs)
    images = np.random.default_rng(1).integers(0, 256, (100, 24, 24), dtype=np.uint8)
    assert verify_against_brevitas(qm, m, images) == {"vectors": 100, "bit_exact_vectors": 100}


def test_first_weight_bits(calibrated):
    """The first convolution (repeated on every pixel lane) at its own width, the others at weight_bits."""
    m = calibrated(StudentConfig(channels=[4, 6, 8], weight_bits=6, first_weight_bits=3, act_bits=5,
                                 weight_scale="tensor"), size=24)
    qm = export_quantmodel(m, 24, list("abc"))
    convs = [l for l in qm.layers if l.kind == "conv2d"]
    assert [l.weight_type.width for l in convs] == [3] + [6] * (len(convs) - 1)
    assert np.abs(convs[0].weight).max() <= 3 < max(np.abs(l.weight).max() for l in convs[1:])
    images = np.random.default_rng(2).integers(0, 256, (100, 24, 24), dtype=np.uint8)
    assert verify_against_brevitas(qm, m, images) == {"vectors": 100, "bit_exact_vectors": 100}


def test_save_load_round_trip(tmp_path, calibrated):
    qm = export_quantmodel(calibrated(StudentConfig(channels=[4, 4])), 20, list("abc"))
    qm.save(tmp_path)
    qm2 = QuantModel.load(tmp_path)
    images = np.random.default_rng(1).integers(0, 256, (20, 20, 20), dtype=np.uint8)
    assert np.array_equal(reference.run(qm, images), reference.run(qm2, images))
    assert qm2.class_names == ["a", "b", "c"] and qm2.n_params() == qm.n_params()


def test_unsupported_layer_is_named(calibrated):
    m = calibrated(StudentConfig(channels=[4, 4]))
    layers = OrderedDict(m.named_children())
    layers = OrderedDict([*list(layers.items())[:2], ("mystery", nn.Identity()), *list(layers.items())[2:]])
    with pytest.raises(ExportError, match="'mystery' of type Identity is not supported"):
        export_quantmodel(nn.Sequential(layers), 20, list("abc"))


def test_float_student_is_refused():
    m = build_student(StudentConfig(channels=[4, 4]), 3, 20, quantized=False)
    with pytest.raises(ExportError, match="must start with an input QuantIdentity"):
        export_quantmodel(m, 20, list("abc"))


def test_eight_bit_paper_student_with_wide_accumulators(calibrated):
    """8-bit weights and activations into a 1,600-input dense layer: accumulators exceed float32's 24-bit
    mantissa, so only an exact comparison (Brevitas in float64, integer reference) can pass."""
    m = calibrated(StudentConfig(arch="plain", channels=[16, 16], weight_bits=8, act_bits=8), classes=2, size=48)
    qm = export_quantmodel(m, 48, ["B", "T"])
    assert qm.n_params() == 5682 and qm.output_type.width > 24
    images = np.random.default_rng(5).integers(0, 256, (100, 48, 48), dtype=np.uint8)
    assert verify_against_brevitas(qm, m, images) == {"vectors": 100, "bit_exact_vectors": 100}


def _strided_student(bits):
    """A Brevitas student of the new convolution variants: stride 2, zero padding, rectangular and even kernels."""
    import brevitas.nn as qnn
    from brevitas.quant import Int32Bias

    from insitu.distill.student import InputQuant, act_quant, weight_quant

    wq, aq = weight_quant(bits), act_quant(bits)
    return nn.Sequential(OrderedDict(
        inp=qnn.QuantIdentity(act_quant=InputQuant, return_quant_tensor=True),
        conv0=qnn.QuantConv2d(1, 4, (3, 2), stride=(2, 1), padding=(1, 1), weight_quant=wq, bias_quant=Int32Bias,
                              return_quant_tensor=True),
        relu0=qnn.QuantReLU(act_quant=aq, return_quant_tensor=True),
        conv1=qnn.QuantConv2d(4, 3, 4, stride=2, padding=(2, 0), weight_quant=wq, bias_quant=Int32Bias,
                              return_quant_tensor=True),
        relu1=qnn.QuantReLU(act_quant=aq, return_quant_tensor=True),
        flatten=nn.Flatten(),
        fc=qnn.QuantLinear(3 * 6 * 9, 3, bias=True, weight_quant=wq, bias_quant=Int32Bias)))


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_strided_padded_rectangular_convolutions_equal_brevitas(bits):
    from insitu.distill.train import to_input

    torch.manual_seed(bits)
    m = _strided_student(bits)
    x = np.random.default_rng(bits).integers(0, 256, (64, 21, 20), dtype=np.uint8)
    opt = torch.optim.SGD(m.parameters(), lr=0.05)
    m.train()
    for _ in range(35):  # calibrate the activation scales
        loss = m(to_input(x)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    qm = export_quantmodel(m, (21, 20), list("abc"))
    conv0, conv1 = qm.layers[1], qm.layers[3]
    assert conv0.stride == (2, 1) and conv0.padding == (1, 1, 1, 1) and conv0.weight.shape[2:] == (3, 2)
    assert conv1.stride == (2, 2) and conv1.padding == (2, 2, 0, 0)
    images = np.random.default_rng(1).integers(0, 256, (200, 21, 20), dtype=np.uint8)
    assert verify_against_brevitas(qm, m, images) == {"vectors": 200, "bit_exact_vectors": 200}
    assert len(np.unique(reference.run(qm, images), axis=0)) > 10


def test_dilated_or_grouped_convolutions_are_refused_by_name():
    import brevitas.nn as qnn

    from insitu.distill.student import InputQuant

    m = nn.Sequential(OrderedDict(inp=qnn.QuantIdentity(act_quant=InputQuant, return_quant_tensor=True),
                                  conv0=qnn.QuantConv2d(1, 2, 3, dilation=2, return_quant_tensor=True)))
    with pytest.raises(ExportError, match="conv0: only zero-padded.*dilation=\\(2, 2\\)"):
        export_quantmodel(m, 12, list("ab"))


def test_depthwise_separable_brevitas_student_equals_the_reference():
    import brevitas.nn as qnn
    from brevitas.quant import Int32Bias

    from insitu.distill.student import InputQuant, act_quant, weight_quant
    from insitu.distill.train import to_input

    wq, aq = weight_quant(4), act_quant(4)
    torch.manual_seed(0)
    m = nn.Sequential(OrderedDict(
        inp=qnn.QuantIdentity(act_quant=InputQuant, return_quant_tensor=True),
        conv0=qnn.QuantConv2d(1, 4, 3, weight_quant=wq, bias_quant=Int32Bias, return_quant_tensor=True),
        relu0=qnn.QuantReLU(act_quant=aq, return_quant_tensor=True),
        dw=qnn.QuantConv2d(4, 4, 3, groups=4, padding=1, weight_quant=wq, bias_quant=Int32Bias,
                           return_quant_tensor=True),
        relu1=qnn.QuantReLU(act_quant=aq, return_quant_tensor=True),
        pw=qnn.QuantConv2d(4, 6, 1, weight_quant=wq, bias_quant=Int32Bias, return_quant_tensor=True),
        relu2=qnn.QuantReLU(act_quant=aq, return_quant_tensor=True),
        flatten=nn.Flatten(),
        fc=qnn.QuantLinear(6 * 10 * 10, 3, bias=True, weight_quant=wq, bias_quant=Int32Bias)))
    x = np.random.default_rng(0).integers(0, 256, (64, 12, 12), dtype=np.uint8)
    opt = torch.optim.SGD(m.parameters(), lr=0.05)
    m.train()
    for _ in range(35):
        loss = m(to_input(x)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    qm = export_quantmodel(m, 12, list("abc"))
    assert qm.layers[3].groups == 4 and qm.layers[3].weight.shape == (4, 1, 3, 3)
    images = np.random.default_rng(1).integers(0, 256, (200, 12, 12), dtype=np.uint8)
    assert verify_against_brevitas(qm, m, images) == {"vectors": 200, "bit_exact_vectors": 200}

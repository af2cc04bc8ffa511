import pytest
import torch

from insitu.config import StudentConfig, build_config
from insitu.distill.student import build_student, fold_batchnorm, load_float_into_quant, weight_params
from insitu.errors import ConfigError


PAPER = build_config("paper").student


def test_paper_student_has_exactly_5682_parameters_in_two_class_mode():
    assert weight_params(build_student(PAPER, 2, 48, True)) == 5682
    assert weight_params(fold_batchnorm(build_student(PAPER, 2, 48, False))) == 5682  # batch norms fold away


def test_three_class_students():
    # 160 + 2320 + (1600*3 + 3)
    assert weight_params(build_student(PAPER, 3, 48, True)) == 7283
    # the default: conv 3x3 1->16, depthwise 3x3 + pointwise 16->32, depthwise 3x3 + pointwise 32->48, dense 768->3
    assert weight_params(build_student(StudentConfig(), 3, 48, True)) == 160 + 160 + 544 + 320 + 1584 + 2307


def test_batch_norm_folds_exactly_and_loads_into_the_qat_student():
    torch.manual_seed(0)
    f = build_student(StudentConfig(channels=[4, 6, 8]), 3, 32, quantized=False)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in f.modules()) == 5
    f.train()
    for _ in range(3):  # running statistics away from the identity
        f(torch.rand(16, 1, 32, 32) * 3)
    with torch.no_grad():
        for m in f.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 2.0)
                m.bias.uniform_(-0.5, 0.5)
    f.eval()
    folded = fold_batchnorm(f)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.rand(8, 1, 32, 32)
    torch.testing.assert_close(folded(x), f(x), rtol=1e-4, atol=1e-5)
    q = build_student(StudentConfig(channels=[4, 6, 8]), 3, 32, quantized=True)
    load_float_into_quant(f, q)
    assert torch.equal(q.conv0.weight, folded.conv0.weight) and torch.equal(q.dw1.bias, folded.dw1.bias)


def test_sizes_are_config():
    m = build_student(StudentConfig(channels=[8, 8, 8]), 3, 48, True)
    assert m(torch.rand(2, 1, 48, 48)).shape == (2, 3)


def test_image_too_small():
    with pytest.raises(ConfigError, match="shrink a 12x12 input to nothing at stage 2; they need at least 22x22"):
        build_student(StudentConfig(channels=[4, 4, 4]), 2, 12, True)
    build_student(StudentConfig(channels=[4, 4, 4]), 2, 22, True)  # the size it names fits


def test_float_weights_load_into_quant_student():
    f = build_student(PAPER.model_copy(update={"batchnorm": False}), 2, 48, False)
    q = build_student(PAPER, 2, 48, True)
    load_float_into_quant(f, q)
    assert torch.equal(q.conv0.weight, f.conv0.weight) and torch.equal(q.fc.bias, f.fc.bias)


def test_separable_gap_student_exports_bit_exact_and_streams(calibrated, tmp_path):
    """A depthwise-separable student with global average pooling: float weights load into the QAT one, the
    export reads depthwise, pointwise and the global average, and the reference equals Brevitas."""
    import numpy as np

    from insitu.distill.export import export_quantmodel, verify_against_brevitas
    from insitu.ir import reference, support
    from insitu.ir.layers import GlobalAvgPool

    cfg = StudentConfig(arch="separable", head="gap", channels=[4, 6, 8], weight_bits=4, act_bits=4)
    load_float_into_quant(build_student(cfg, 3, 32, quantized=False), build_student(cfg, 3, 32, quantized=True))
    model = calibrated(cfg, size=32)
    qm = export_quantmodel(model, 32, list("abc"))
    kinds = [layer.kind for layer in qm.layers]
    assert kinds.count("conv2d") == 5 and qm.layers[4].groups == 4 and qm.layers[6].weight.shape[2:] == (1, 1)
    assert any(isinstance(layer, GlobalAvgPool) for layer in qm.layers)
    images = np.random.default_rng(0).integers(0, 256, (100, 32, 32), dtype=np.uint8)
    ref = reference.run(qm, images)
    assert verify_against_brevitas(qm, model, images, ref)["bit_exact_vectors"] == 100
    for backend in ("hls_stream", "rtl_streaming", "rtl_unrolled"):
        support.require(qm, backend)

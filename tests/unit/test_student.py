import pytest
import torch

from insitu.config import StudentConfig
from insitu.distill.student import build_student, load_float_into_quant, weight_params
from insitu.errors import ConfigError


def test_paper_student_has_exactly_5682_parameters_in_two_class_mode():
    for quantized in (False, True):
        assert weight_params(build_student(StudentConfig(), 2, 48, quantized)) == 5682


def test_three_class_student():
    # 160 + 2320 + (1600*3 + 3)
    assert weight_params(build_student(StudentConfig(), 3, 48, True)) == 7283


def test_sizes_are_config():
    m = build_student(StudentConfig(channels=[8, 8, 8]), 3, 48, True)
    assert m(torch.rand(2, 1, 48, 48)).shape == (2, 3)


def test_image_too_small():
    with pytest.raises(ConfigError, match="shrink a 12x12 input to nothing at stage 2; they need at least 22x22"):
        build_student(StudentConfig(channels=[4, 4, 4]), 2, 12, True)
    build_student(StudentConfig(channels=[4, 4, 4]), 2, 22, True)  # the size it names fits


def test_float_weights_load_into_quant_student():
    f = build_student(StudentConfig(), 2, 48, False)
    q = build_student(StudentConfig(), 2, 48, True)
    load_float_into_quant(f, q)
    assert torch.equal(q.conv0.weight, f.conv0.weight) and torch.equal(q.fc.bias, f.fc.bias)

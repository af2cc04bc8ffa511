"""Attention transfer: the maps, the stage pairing, gradients into the student only, and hooks in training."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from insitu.config import TeacherConfig, build_config
from insitu.distill.attention import AttentionTransfer, attention_map, teacher_stage_ends
from insitu.distill.student import build_student
from insitu.distill.teacher import ResNetTeacher
from insitu.steps.distill import train_kd


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.floats(0.1, 10.0), st.integers(0, 2**16))
def test_map_is_unit_norm_and_blind_to_activation_scale(channels, scale, seed):
    f = torch.randn(3, channels, 5, 5, generator=torch.Generator().manual_seed(seed))
    a = attention_map(f)
    assert a.shape == (3, 25) and torch.allclose(a.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(attention_map(scale * f), a, atol=1e-5)


def test_resize_averages_areas():
    f = torch.zeros(1, 1, 4, 4)
    f[0, 0, :2, :2] = 1.0  # all attention in the top-left quarter
    assert torch.allclose(attention_map(f, (2, 2)), torch.tensor([[1.0, 0, 0, 0]]))


@pytest.mark.parametrize("blocks, n_ends", [([1, 1, 1], 3), ([2, 1], 2), ([1], 1)])
def test_one_teacher_map_per_resolution(blocks, n_ends):
    teacher = ResNetTeacher(TeacherConfig(width=4, blocks=blocks), 3)
    ends = teacher_stage_ends(teacher)
    assert len(ends) == n_ends and ends[-1] is list(teacher.stages)[-1]


def test_loss_trains_the_student_and_leaves_the_teacher_alone():
    torch.manual_seed(0)
    teacher = ResNetTeacher(TeacherConfig(width=8, blocks=[1, 1]), 3)
    student = build_student(build_config("tiny").student, 3, 24, quantized=False)
    at = AttentionTransfer(teacher, beta=10.0)
    remove = at.attach(student)
    xb = torch.rand(4, 1, 24, 24)
    student(xb)
    loss = at.loss(xb)
    assert loss.item() > 0
    loss.backward()
    assert all(p.grad is not None for n, p in student.named_parameters() if n.startswith("conv0"))
    assert all(p.grad is None for p in teacher.parameters())
    remove()
    assert all(not m._forward_hooks for m in student.modules())


@pytest.mark.parametrize("in_qat", [False, True])
def test_kd_training_with_attention_runs_the_teacher_every_step(in_qat):
    rng = np.random.default_rng(0)
    n, size = 48, 24
    data = SimpleNamespace(train_x=rng.integers(0, 256, (n, size, size), dtype=np.uint8),
                           pool_x=rng.integers(0, 256, (n, size, size), dtype=np.uint8),
                           train_y=rng.integers(0, 3, n), class_names=["a", "b", "c"], image_size=size)
    cfg = build_config("tiny", {"distill": {"attention": 50.0, "attention_in_qat": in_qat, "float_epochs": 1,
                                            "qat_epochs": 1, "batch_size": 16}})
    teacher = ResNetTeacher(cfg.teacher, 3)
    calls = []
    teacher.register_forward_hook(lambda *_: calls.append(1))
    soft = np.zeros((n, 3), np.float32)
    fl, q, steps = train_kd(cfg, data, soft, soft, "label_free", torch.device("cpu"), teacher)
    # fixed soft labels: the teacher runs once per step for the maps, in float training (and QAT when asked)
    assert steps == 2 * 6 and len(calls) == (steps if in_qat else steps // 2)
    assert all(not m._forward_hooks for m in list(fl.modules()) + list(q.modules()))
    assert all(not m._forward_hooks for m in teacher.stages.modules())  # the teacher's hooks are gone too
    with pytest.raises(ValueError, match="need the teacher"):
        train_kd(cfg, data, soft, soft, "label_free", torch.device("cpu"))

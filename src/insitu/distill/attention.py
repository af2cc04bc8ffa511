"""Attention transfer (Zagoruyko & Komodakis, 2017): the student matches the teacher's spatial attention maps.

A stage's attention map is the channel mean of its squared activations, flattened and scaled to unit L2 norm,
so a student with 16 channels can match a teacher with 128. Student stage i (the output of `pool{i}`) is
paired with teacher stage min(i, last) (the output of its last block at that resolution); the teacher's map is
resized to the student's by area averaging. The loss is `beta * sum_i mean_batch ||a_s,i - a_t,i||^2`, added to
the KD loss; the teacher runs (eval mode, no gradient) on the very augmented batch the student sees.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def attention_map(features: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """(N, C, H, W) -> (N, H*W) unit-norm map of mean_c(f^2); resized to `size` first when given."""
    a = features.pow(2).mean(1, keepdim=True)
    if size is not None and tuple(a.shape[-2:]) != tuple(size):
        a = F.adaptive_avg_pool2d(a, size)
    return F.normalize(a.flatten(1), dim=1)


def _value(out) -> torch.Tensor:
    return out.value if hasattr(out, "value") else out  # a Brevitas QuantTensor carries its float value


def teacher_stage_ends(teacher: nn.Module) -> list[nn.Module]:
    """The last block of each resolution of a ResNetTeacher (blocks whose successor changes the resolution)."""
    blocks = list(teacher.stages)
    ends = [b for b, nxt in zip(blocks, blocks[1:]) if nxt.conv1.stride != (1, 1)]
    return ends + blocks[-1:]


def student_stages(student: nn.Sequential) -> list[nn.Module]:
    pools = [m for name, m in student.named_children() if name.startswith("pool")]
    if not pools:
        raise ValueError("attention transfer needs a student with pooling stages (pool0, pool1, ...)")
    return pools


class AttentionTransfer:
    """Holds the teacher's hooks; `attach(student)` hooks a student (returns a remover); `loss(xb)` runs the
    teacher on the batch the student has just seen and compares the maps captured by both."""

    def __init__(self, teacher: nn.Module, beta: float) -> None:
        self.teacher, self.beta = teacher.eval(), beta
        self._t: list[torch.Tensor] = []
        self._s: dict[int, torch.Tensor] = {}
        self._handles = [m.register_forward_hook(lambda _m, _i, out: self._t.append(_value(out)))
                         for m in teacher_stage_ends(teacher)]

    def close(self) -> None:
        """Remove the teacher's hooks (the teacher may be used again)."""
        for h in self._handles:
            h.remove()

    def attach(self, student: nn.Sequential) -> Callable[[], None]:
        handles = []
        for i, module in enumerate(student_stages(student)):
            def hook(_m, _i, out, i=i):
                self._s[i] = _value(out)
            handles.append(module.register_forward_hook(hook))
        return lambda: [h.remove() for h in handles]

    def loss(self, xb: torch.Tensor) -> torch.Tensor:
        self._t.clear()
        with torch.no_grad():
            self.teacher(xb)
        t_maps = list(self._t)
        total = xb.new_zeros(())
        for i, s in sorted(self._s.items()):
            t = t_maps[min(i, len(t_maps) - 1)]
            diff = attention_map(s) - attention_map(t, tuple(s.shape[-2:]))
            total = total + diff.pow(2).sum(1).mean()
        return self.beta * total

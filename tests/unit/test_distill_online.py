"""The online teacher: run on the very augmented batch the student sees, every step of float and QAT training."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from insitu.config import build_config
from insitu.steps.distill import train_kd


class RecordingTeacher(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.seen = []
        self.lin = torch.nn.Linear(1, 3)

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.lin(x.mean(dim=(1, 2, 3))[:, None])


def _data(n=48, size=12):
    rng = np.random.default_rng(0)
    return SimpleNamespace(train_x=rng.integers(0, 256, (n, size, size), dtype=np.uint8),
                           pool_x=rng.integers(0, 256, (n, size, size), dtype=np.uint8),
                           train_y=rng.integers(0, 3, n), class_names=["a", "b", "c"], image_size=size)


@pytest.mark.parametrize("flips,tta", [(True, True), (False, True), (True, False)])
def test_online_teacher_sees_every_augmented_batch(flips, tta):
    data = _data()
    over = {"data": {"flips": flips}, "student": {"channels": [2], "weight_bits": 4, "act_bits": 4},
            "distill": {"teacher_view": "online", "teacher_tta": tta, "float_epochs": 1, "qat_epochs": 1,
                        "batch_size": 16}}
    cfg = build_config("tiny", over)
    teacher = RecordingTeacher()
    soft = np.zeros((len(data.train_x), 3), np.float32)
    _, _, steps = train_kd(cfg, data, soft, soft, "label_free", torch.device("cpu"), teacher)
    views = 4 if flips and tta else 1
    assert len(teacher.seen) == steps * views and steps == 2 * 6
    # the batches are augmented views on the 2^-8 grid, not the stored images
    stored = {torch.from_numpy(np.concatenate([data.train_x, data.pool_x])[i]).float().div(256).sum().item()
              for i in range(96)}
    first = teacher.seen[0]
    assert torch.equal(first * 256, torch.round(first * 256))
    assert any(round(img.sum().item(), 3) not in {round(v, 3) for v in stored} for img in first)
    assert not teacher.training


def test_online_view_needs_a_teacher():
    data = _data()
    cfg = build_config("tiny", {"distill": {"teacher_view": "online"}})
    soft = np.zeros((len(data.train_x), 3), np.float32)
    with pytest.raises(ValueError, match="need the teacher"):
        train_kd(cfg, data, soft, soft, "label_free", torch.device("cpu"))

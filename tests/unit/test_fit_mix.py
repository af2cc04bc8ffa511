"""Mixup and the moving average of the weights in the one training loop (`insitu.distill.train.fit`)."""

import numpy as np
import pytest
import torch

from insitu.config import build_config
from insitu.distill.train import FitSpec, WeightAverage, fit
from insitu.errors import ConfigError
from insitu.steps.distill import train_kd

from .test_distill_online import RecordingTeacher, _data


class Recorder(torch.nn.Module):
    """A tiny classifier that keeps every batch it is given."""

    def __init__(self):
        super().__init__()
        self.seen = []
        self.lin = torch.nn.Linear(16, 3)

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.lin(x.flatten(1))


def _images(n=24):
    return np.random.default_rng(0).integers(0, 256, (n, 4, 4), dtype=np.uint8)


def test_mixup_blends_each_batch_with_a_permutation_and_weights_both_losses():
    x = _images()
    calls = []

    def loss(logits, idx):
        calls.append(idx.clone())
        return logits.square().mean()

    model = Recorder()
    fit(model, x, loss, FitSpec(steps=6, batch_size=8, lr=1e-2, augment=False, mixup=0.4), torch.device("cpu"),
        "mix")
    assert len(calls) == 12 and len(model.seen) == 6  # two loss terms per step, one forward pass
    lams = []
    for step, seen in enumerate(model.seen):
        idx, idx_perm = calls[2 * step], calls[2 * step + 1]
        assert sorted(idx.tolist()) == sorted(idx_perm.tolist()) and not torch.equal(idx, idx_perm)
        a = torch.from_numpy(x[idx.numpy()]).float().div(256).unsqueeze(1)
        b = torch.from_numpy(x[idx_perm.numpy()]).float().div(256).unsqueeze(1)
        differ = (a - b).abs() > 1e-6
        lam = float(((seen - b)[differ] / (a - b)[differ]).median())
        assert 0.0 <= lam <= 1.0
        torch.testing.assert_close(seen, lam * a + (1 - lam) * b, atol=1e-5, rtol=0)
        lams.append(lam)
    assert len({round(v, 4) for v in lams}) == 6  # a new weight every batch


def test_moving_average_starts_a_third_of_the_way_in_and_replaces_the_weights():
    x = _images()
    snapshots = []

    def loss(logits, idx):
        snapshots.append(model.lin.weight.detach().clone())
        return (logits - 1.0).square().mean()

    spec = FitSpec(steps=9, batch_size=8, lr=5e-2, augment=False, seed=3)
    torch.manual_seed(0)
    model = Recorder()
    init = {k: v.clone() for k, v in model.state_dict().items()}
    fit(model, x, loss, spec, torch.device("cpu"), "plain")
    plain = model.lin.weight.detach().clone()
    # decay 0: the average is the last weights
    model.load_state_dict(init)
    fit(model, x, loss, FitSpec(**{**spec.__dict__, "ema": 0.0}), torch.device("cpu"), "plain again")
    torch.testing.assert_close(model.lin.weight, plain, rtol=0, atol=0)
    # decay ~1: the average stays at the weights after the optimiser step of step 9 // 3 = 3
    model.load_state_dict(init)
    snapshots.clear()
    fit(model, x, loss, FitSpec(**{**spec.__dict__, "ema": 1 - 1e-12}), torch.device("cpu"), "frozen average")
    torch.testing.assert_close(model.lin.weight, snapshots[4], rtol=0, atol=1e-6)
    assert not torch.allclose(model.lin.weight, plain)


def test_weight_average_covers_parameters_and_float_buffers_only():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    avg = WeightAverage(model, decay=0.75)
    old_w, old_mean = model[0].weight.detach().clone(), model[1].running_mean.clone()
    with torch.no_grad():
        model[0].weight.add_(4.0)
        model[1].running_mean.add_(8.0)
        model[1].num_batches_tracked.add_(5)
    avg.update()
    avg.apply()
    torch.testing.assert_close(model[0].weight, old_w + 1.0)
    torch.testing.assert_close(model[1].running_mean, old_mean + 2.0)
    assert int(model[1].num_batches_tracked) == 5  # integer state is the model's own, not averaged


def test_online_teacher_sees_the_blended_images():
    """Function matching: with mixup the teacher is asked about the very blend the student sees."""

    data = _data()
    cfg = build_config("tiny", {"data": {"flips": False}, "student": {"channels": [2], "weight_bits": 4, "act_bits": 4},
                                "distill": {"teacher_view": "online", "mixup": 0.4, "float_epochs": 1,
                                            "qat_epochs": 1, "batch_size": 16}})
    teacher = RecordingTeacher()
    soft = np.zeros((len(data.train_x), 3), np.float32)
    _, _, steps = train_kd(cfg, data, soft, soft, "label_free", torch.device("cpu"), teacher)
    assert len(teacher.seen) == steps
    off_grid = [not torch.equal(b * 256, torch.round(b * 256)) for b in teacher.seen]
    assert sum(off_grid) >= steps - 1  # a blend leaves the 2^-8 grid (unless lam happens to be 0 or 1)


def test_mixup_with_attention_on_fixed_soft_labels_is_refused():
    data = _data()
    cfg = build_config("tiny", {"distill": {"mixup": 0.4, "attention": 1.0}})
    soft = np.zeros((len(data.train_x), 3), np.float32)
    with pytest.raises(ConfigError, match="teacher_view=online"):
        train_kd(cfg, data, soft, soft, "label_free", torch.device("cpu"), torch.nn.Linear(1, 3))

"""The teacher: a ResNet-style CNN that trains on a CPU in minutes (width and depth are config)."""

from __future__ import annotations

import torch
from torch import nn

from insitu.config import TeacherConfig


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.short(x))


class ResNetTeacher(nn.Module):
    """Stem (3x3, stride 2) -> stages of BasicBlocks (channels double, resolution halves) -> GAP -> linear.

    Input: (N,1,H,W) float in [0,1); normalised inside with fixed statistics so checkpoints are self-contained.
    """

    def __init__(self, cfg: TeacherConfig, num_classes: int) -> None:
        super().__init__()
        w = cfg.width
        self.register_buffer("mean", torch.tensor(0.5))
        self.register_buffer("std", torch.tensor(0.1))
        self.stem = nn.Sequential(nn.Conv2d(1, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU())
        stages, cin = [], w
        for i, nblocks in enumerate(cfg.blocks):
            cout = w * 2**i
            for b in range(nblocks):
                stages.append(BasicBlock(cin, cout, 2 if (i > 0 and b == 0) else 1))
                cin = cout
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(cin, num_classes)

    def set_normalisation(self, mean: float, std: float) -> None:
        self.mean.fill_(mean)
        self.std.fill_(max(std, 1e-3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        x = self.stages(self.stem(x))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

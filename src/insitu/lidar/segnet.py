"""The supervised stream: a range-image network for semantic classes and moving/static (SalsaNext/LMNet-like,
small enough for a CPU), trained on labelled normal scenes.

Input channels per range-image cell: range/50, z/3, remission, the normalised range residual to the previous
scan brought into this scan's frame (what moving-object segmentation networks read motion from), and a validity
mask. Convolutions pad circularly along the azimuth. A point is dynamic for this stream when its predicted class
is a movable one (car, person, bicyclist) and the motion head says moving.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from insitu.config_lidar import SegNetConfig
from insitu.data.range_image import BeamTable, Projection, project

log = logging.getLogger(__name__)
CLASSES = ["road", "sidewalk", "building", "vegetation", "pole", "car", "person", "bicyclist"]
MOVABLE = [5, 6, 7]
IGNORE = 255
_KITTI_TO_CLASS = {40: 0, 44: 0, 48: 1, 49: 1, 72: 1, 50: 2, 51: 2, 52: 2, 70: 3, 71: 3, 80: 4, 81: 4,
                   10: 5, 13: 5, 16: 5, 18: 5, 20: 5, 252: 5, 256: 5, 257: 5, 258: 5, 259: 5,
                   30: 6, 254: 6, 11: 7, 15: 7, 31: 7, 32: 7, 253: 7, 255: 7}
MOVING_IDS = (252, 253, 254, 255, 256, 257, 258, 259)
CHANNELS = 5


def class_of(semantic: np.ndarray) -> np.ndarray:
    lut = np.full(1 << 16, IGNORE, np.uint8)
    for k, v in _KITTI_TO_CLASS.items():
        lut[k] = v
    return lut[semantic.astype(np.int64)]


def features(points: np.ndarray, prev_in_cur: np.ndarray | None, table: BeamTable, columns: int
             ) -> tuple[np.ndarray, Projection]:
    """(CHANNELS, B, W) float32 network input of a scan, and its projection."""
    proj = project(points, table, columns)
    ok = proj.index >= 0
    rng = proj.range_
    z = proj.image(points[:, 2].astype(np.float32))
    rem = proj.image(points[:, 3].astype(np.float32))
    resid = np.zeros_like(rng)
    if prev_in_cur is not None and len(prev_in_cur):
        prev_r = project(prev_in_cur, table, columns).range_
        both = ok & (prev_r > 0)
        resid[both] = np.minimum(np.abs(rng[both] - prev_r[both]) / rng[both], 1.0)
    x = np.stack([rng / 50.0, z / 3.0, rem, resid, ok.astype(np.float32)]).astype(np.float32)
    return x, proj


class _Conv(nn.Module):
    def __init__(self, cin: int, cout: int, dil: int) -> None:
        super().__init__()
        self.dil = dil
        self.conv = nn.Conv2d(cin, cout, 3, padding=(dil, 0), dilation=dil, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (self.dil, self.dil, 0, 0), mode="circular")
        return F.relu(self.bn(self.conv(x)))


class SegNet(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        w = width
        self.body = nn.Sequential(_Conv(CHANNELS, w, 1), _Conv(w, w, 1), _Conv(w, 2 * w, 2), _Conv(2 * w, 2 * w, 4),
                                  _Conv(2 * w, 2 * w, 1))
        self.sem = nn.Conv2d(2 * w, len(CLASSES), 1)
        self.mov = nn.Conv2d(2 * w, 2, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.sem(h), self.mov(h)


@dataclass(frozen=True)
class SegSample:
    x: np.ndarray  # (C,B,W)
    cls: np.ndarray  # (B,W) uint8, IGNORE where unknown/empty
    moving: np.ndarray  # (B,W) int64 0/1, -100 where ignored


def sample(points: np.ndarray, semantic: np.ndarray, prev_in_cur: np.ndarray | None, table: BeamTable,
           columns: int) -> SegSample:
    x, proj = features(points, prev_in_cur, table, columns)
    cls = proj.image(class_of(semantic), fill=IGNORE)
    mov = proj.image(np.isin(semantic, MOVING_IDS).astype(np.int64), fill=-100)
    mov[cls == IGNORE] = -100
    return SegSample(x, cls, mov)


def train(samples: list[SegSample], cfg: SegNetConfig, seed: int) -> SegNet:
    torch.manual_seed(seed)
    gen = np.random.default_rng(seed)
    model = SegNet(cfg.width)
    x = torch.from_numpy(np.stack([s.x for s in samples]))
    cls = torch.from_numpy(np.stack([s.cls for s in samples]).astype(np.int64))
    mov = torch.from_numpy(np.stack([s.moving for s in samples]))
    n, cols = len(samples), x.shape[-1]
    crop = min(cfg.crop_columns, cols)
    steps = max(1, cfg.epochs * int(np.ceil(n * cols / crop / cfg.batch_size)))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=steps)
    mov_w = torch.tensor([1.0, 2.0])
    model.train()
    for step in range(steps):
        idx = gen.integers(0, n, cfg.batch_size)
        c0 = gen.integers(0, cols, cfg.batch_size)
        take = (c0[:, None] + np.arange(crop)[None, :]) % cols
        xb = torch.stack([x[i][..., take[k]] for k, i in enumerate(idx)])
        cb = torch.stack([cls[i][..., take[k]] for k, i in enumerate(idx)])
        mb = torch.stack([mov[i][..., take[k]] for k, i in enumerate(idx)])
        s, m = model(xb)
        loss = F.cross_entropy(s, cb, ignore_index=IGNORE) + F.cross_entropy(m, mb, weight=mov_w, ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % max(1, steps // 5) == 0 or step == steps - 1:
            log.info("segnet step %d/%d loss %.4f", step + 1, steps, loss.item())
    return model.eval()


@dataclass(frozen=True)
class SupervisedResult:
    cls: np.ndarray  # (N,) predicted class per point
    p_moving: np.ndarray  # (N,)
    p_dynamic: np.ndarray  # (N,) P(movable class) * P(moving)
    dynamic: np.ndarray  # (N,) bool: movable class and moving


@torch.no_grad()
def predict(model: SegNet, points: np.ndarray, prev_in_cur: np.ndarray | None, table: BeamTable,
            columns: int) -> SupervisedResult:
    x, proj = features(points, prev_in_cur, table, columns)
    s, m = model(torch.from_numpy(x)[None])
    ps, pm = torch.softmax(s[0], 0).numpy(), torch.softmax(m[0], 0)[1].numpy()
    cls_img = ps.argmax(0)
    movable = ps[MOVABLE].sum(0)
    cls, p_mov = proj.back(cls_img), proj.back(pm)
    p_dyn = proj.back(movable * pm)
    dyn = np.isin(cls, MOVABLE) & (p_mov > 0.5)
    return SupervisedResult(cls, p_mov, p_dyn, dyn)

"""One training loop for every network of insitu (teacher, float student, QAT student), plus evaluation.

Images travel as uint8 (N,H,W) and become float x = pixel/256 here: exactly the student's 8-bit input grid.
`fit` reads top to bottom: seeded shuffling, augmentation (optionally mixup), AdamW with a warm-up + cosine
schedule, optionally an exponential moving average of the weights, a rich progress bar with the running loss. The
loss is a callable on (logits, batch indices) so distillation, plain cross-entropy and label-free training all
share this loop.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import nn

from insitu import cancel
from insitu.errors import ConfigError

log = logging.getLogger(__name__)
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device = 'cuda' but no CUDA GPU is visible", "use --device cpu or --device auto")
    return torch.device(name)


def to_input(x_u8: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(x_u8)
    return (t.to(torch.float32) / 256.0).unsqueeze(1)


def augment(x: torch.Tensor, gen: torch.Generator, photometric: bool, flips: bool = True) -> torch.Tensor:
    """Random dihedral transform per batch element (when `flips`), one random shift per batch; optional
    brightness/contrast jitter per element.

    Geometric changes keep x on the 2^-8 grid (the student's input type); photometric ones are for the teacher.
    """
    n = x.shape[0]
    flip_h = torch.rand(n, generator=gen) < 0.5
    flip_v = torch.rand(n, generator=gen) < 0.5
    transpose = torch.rand(n, generator=gen) < 0.5
    if flips:
        x = torch.where(flip_h[:, None, None, None], x.flip(-1), x)
        x = torch.where(flip_v[:, None, None, None], x.flip(-2), x)
        if x.shape[-1] == x.shape[-2]:
            x = torch.where(transpose[:, None, None, None], x.transpose(-1, -2), x)
    pad = max(1, x.shape[-1] // 16)
    h, w = x.shape[-2:]
    dy, dx = (int(v) for v in torch.randint(0, 2 * pad + 1, (2,), generator=gen))
    x = nn.functional.pad(x, (pad, pad, pad, pad), mode="replicate")[..., dy:dy + h, dx:dx + w]
    return x if not photometric else _photometric(x, gen)


def _photometric(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    contrast = torch.empty(n, 1, 1, 1).uniform_(0.8, 1.25, generator=gen)
    bright = torch.empty(n, 1, 1, 1).uniform_(-0.05, 0.05, generator=gen)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * contrast + mean + bright).clamp(0.0, 255.0 / 256.0)


@dataclass(frozen=True)
class FitSpec:
    steps: int
    batch_size: int
    lr: float
    weight_decay: float = 1e-4
    augment: bool = True
    photometric: bool = False
    seed: int = 0
    flips: bool = True  # the data's class is invariant under flips and transposes
    #: mixup: each batch is blended with a permutation of itself, weight lam ~ Beta(mixup, mixup) (0: off); the
    #: loss is lam * L(idx) + (1 - lam) * L(idx[perm]), or, for a loss that sees the input (an online teacher),
    #: L on the blended images themselves (function matching)
    mixup: float = 0.0
    #: decay of an exponential moving average of the weights (and float buffers), started a third of the way in
    #: (after Brevitas' activation-scale statistics) and copied into the model at the end (0: off)
    ema: float = 0.0


def steps_for(epochs: int, n: int, batch_size: int) -> int:
    return max(1, epochs * math.ceil(n / batch_size))


def _lr_at(step: int, total: int, base: float) -> float:
    warm = max(1, total // 20)
    if step < warm:
        return base * (step + 1) / warm
    return base * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


class WeightAverage:
    """An exponential moving average of a model's parameters and floating-point buffers (batch-norm statistics,
    quantizer state), updated in place after each optimiser step and copied into the model by `apply`."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.tensors = [t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
        self.shadow = [t.detach().clone() for t in self.tensors]

    @torch.no_grad()
    def update(self) -> None:
        for avg, t in zip(self.shadow, self.tensors):
            avg.lerp_(t.detach(), 1.0 - self.decay)

    @torch.no_grad()
    def apply(self) -> None:
        for avg, t in zip(self.shadow, self.tensors):
            t.copy_(avg)


def _mix(xb: torch.Tensor, alpha: float, rng: np.random.Generator, gen: torch.Generator):
    """(blended batch, lam, permutation): one lam ~ Beta(alpha, alpha) per batch, from the loop's seeded generators."""
    lam = float(rng.beta(alpha, alpha))
    perm = torch.randperm(len(xb), generator=gen)
    return lam * xb + (1.0 - lam) * xb[perm.to(xb.device)], lam, perm


def fit(model: nn.Module, x_u8: np.ndarray, loss_fn: LossFn, spec: FitSpec, device: torch.device,
        desc: str, loss_sees_input: bool = False) -> list[float]:
    """Train `model` for `spec.steps` steps on x_u8; loss_fn(logits, batch_indices) -> scalar, or with
    `loss_sees_input` loss_fn(logits, batch_indices, augmented_batch) (an online teacher). Returns losses."""
    torch.manual_seed(spec.seed)
    gen = torch.Generator().manual_seed(spec.seed)
    rng = np.random.default_rng(spec.seed)
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    ema_start, ema = spec.steps // 3, None
    x_all = torch.from_numpy(np.ascontiguousarray(x_u8))
    n, losses, step, order, pos = len(x_all), [], 0, torch.randperm(len(x_all), generator=gen), 0
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task(desc, total=spec.steps, loss=float("nan"))
        while step < spec.steps:
            cancel.check()
            if pos + spec.batch_size > n and pos > 0:
                order, pos = torch.randperm(n, generator=gen), 0
            idx = order[pos:pos + spec.batch_size]
            pos += spec.batch_size
            xb = to_input(x_all[idx])
            if spec.augment:
                xb = augment(xb, gen, spec.photometric, spec.flips)
            for group in opt.param_groups:
                group["lr"] = _lr_at(step, spec.steps, spec.lr)
            xb = xb.to(device)
            if spec.mixup > 0:
                xb, lam, perm = _mix(xb, spec.mixup, rng, gen)
                logits = model(xb)
                loss = loss_fn(logits, idx, xb) if loss_sees_input else \
                    lam * loss_fn(logits, idx) + (1.0 - lam) * loss_fn(logits, idx[perm])
            else:
                loss = loss_fn(model(xb), idx, xb) if loss_sees_input else loss_fn(model(xb), idx)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{desc}: loss became {loss.item()} at step {step}; lower the learning rate")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if spec.ema > 0 and step == ema_start:
                ema = WeightAverage(model, spec.ema)
            elif ema is not None:
                ema.update()
            losses.append(loss.item())
            step += 1
            bar.update(task, advance=1, loss=float(np.mean(losses[-20:])))
    if ema is not None:
        ema.apply()
    log.info("%s: %d steps, final loss %.4f%s", desc, spec.steps, float(np.mean(losses[-20:])),
             f" (weights: moving average, decay {spec.ema}, from step {ema_start})" if ema is not None else "")
    return losses


@torch.no_grad()
def predict_logits(model: nn.Module, x_u8: np.ndarray, device: torch.device, batch: int = 512,
                   tta: bool = False) -> np.ndarray:
    """Logits (N,K) in eval mode; `tta` averages over the 4 flips (identity, h, v, both)."""
    model.to(device).eval()
    out = []
    for i in range(0, len(x_u8), batch):
        xb = to_input(x_u8[i:i + batch]).to(device)
        views = [xb, xb.flip(-1), xb.flip(-2), xb.flip(-1).flip(-2)] if tta else [xb]
        out.append(torch.stack([model(v).float() for v in views]).mean(0).cpu().numpy())
    if not out:  # an empty set still has K columns, so that it concatenates with others
        k = model(to_input(np.zeros((1, *np.shape(x_u8)[1:]), np.uint8)).to(device)).shape[1]
        return np.zeros((0, k), np.float32)
    return np.concatenate(out)


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    return float((logits.argmax(1) == y).mean()) if len(y) else float("nan")


def confusion(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    m = np.zeros((k, k), dtype=np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m

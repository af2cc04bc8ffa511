"""The knowledge-distillation loss: (1-a)*CE(y) + a*T^2*KL(teacher_T || student_T), label-free where no label.

For samples without a label (`labelled` False) only the distillation term counts, at full weight: T^2*KL.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
            labelled: torch.Tensor, temperature: float, alpha: float) -> torch.Tensor:
    t = temperature
    log_p_s = F.log_softmax(student_logits / t, dim=1)
    p_t = F.softmax(teacher_logits / t, dim=1)
    kl = (p_t * (torch.log(p_t.clamp_min(1e-12)) - log_p_s)).sum(dim=1) * (t * t)
    ce = F.cross_entropy(student_logits, labels.clamp_min(0), reduction="none")
    per_sample = torch.where(labelled, (1 - alpha) * ce + alpha * kl, kl)
    return per_sample.mean()


def ce_loss(student_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(student_logits, labels)

"""Brevitas models of the IR's layer kinds with power-of-two scales, calibrated, for the frontend tests."""

from __future__ import annotations

import brevitas.nn as qnn
import torch
from brevitas.quant import (Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint, Int32Bias,
                            Uint8ActPerTensorFixedPoint)
from torch import nn


def _w(bits: int) -> type:
    return type(f"W{bits}", (Int8WeightPerTensorFixedPoint,), {"bit_width": bits})


def _u(bits: int) -> type:
    return type(f"U{bits}", (Uint8ActPerTensorFixedPoint,), {"bit_width": bits})


def _s(bits: int) -> type:
    return type(f"S{bits}", (Int8ActPerTensorFixedPoint,), {"bit_width": bits})


class MLP(nn.Module):
    """Signed inputs, two hidden layers (QuantReLU), a linear output (the exact accumulator)."""

    def __init__(self, n_in: int = 12, bits: int = 6) -> None:
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=_s(8), return_quant_tensor=True)
        self.fc1 = qnn.QuantLinear(n_in, 16, bias=True, weight_quant=_w(bits), bias_quant=Int32Bias,
                                   return_quant_tensor=True)
        self.r1 = qnn.QuantReLU(act_quant=_u(bits), return_quant_tensor=True)
        self.fc2 = qnn.QuantLinear(16, 8, bias=True, weight_quant=_w(bits), bias_quant=Int32Bias,
                                   return_quant_tensor=True)
        self.r2 = qnn.QuantReLU(act_quant=_u(bits), return_quant_tensor=True)
        self.fc3 = qnn.QuantLinear(8, 3, bias=True, weight_quant=_w(bits), bias_quant=Int32Bias)

    def forward(self, x):
        return self.fc3(self.r2(self.fc2(self.r1(self.fc1(self.inp(x))))))


class CNN(nn.Module):
    """Padding, depthwise and pointwise, max pooling, a residual add, average pooling, stride 2, global average
    pooling, a dense: every block one the streaming core builds."""

    def __init__(self, bits: int = 6) -> None:
        super().__init__()
        w = _w(bits)

        def conv(cin, cout, k, **kw):
            return qnn.QuantConv2d(cin, cout, k, weight_quant=w, bias_quant=Int32Bias, return_quant_tensor=True, **kw)

        def relu():
            return qnn.QuantReLU(act_quant=_u(bits), return_quant_tensor=True)

        self.inp = qnn.QuantIdentity(act_quant=_u(8), return_quant_tensor=True)
        self.c1, self.r1, self.p1 = conv(1, 8, 3, padding=1), relu(), nn.MaxPool2d(2)
        self.dw, self.r2 = conv(8, 8, 3, padding=1, groups=8), relu()
        self.pw, self.r3 = conv(8, 8, 1), relu()
        self.c2, self.r4, self.p2 = conv(8, 8, 3, padding=1), relu(), qnn.TruncAvgPool2d(2)
        self.c3, self.r5 = conv(8, 8, 3, stride=2, padding=1), relu()
        self.gap = qnn.TruncAdaptiveAvgPool2d((1, 1))
        self.q = qnn.QuantIdentity(act_quant=_s(8), return_quant_tensor=True)
        self.fc = qnn.QuantLinear(8, 3, bias=True, weight_quant=w, bias_quant=Int32Bias)

    def forward(self, x):
        x = self.p1(self.r1(self.c1(self.inp(x))))
        y = self.r1(self.pw(self.r2(self.dw(x))))  # r1 again: the residual operands share their scale
        x = self.r3(x + y)
        x = self.p2(self.r4(self.c2(x)))
        x = self.r5(self.c3(x))
        return self.fc(self.q(self.gap(x)).flatten(1))


def calibrated(model: nn.Module, shape: tuple[int, ...], seed: int = 0, signed: bool = False) -> nn.Module:
    """Training-mode passes so that activation scales are learned; then eval."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(40):
        x = torch.rand((32, *shape), generator=g)
        model(x * 2 - 1 if signed else x)
    return model.eval()

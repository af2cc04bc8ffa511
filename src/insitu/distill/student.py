"""The student: conv -> ReLU -> max-pool stages, then flatten -> dense, as a float or a Brevitas QAT network.

Both share module names (inp, conv0, relu0, pool0, ..., flatten, fc) so a float student's weights load
into the quantized one for QAT fine-tuning. Quantizers use power-of-two scales (Brevitas FixedPoint
quantizers) so that every tensor is a fixed-point number and hls4ml / RTL can reproduce it bit for bit:
- input: 8-bit unsigned, scale 2^-8 (pixel/256: exactly the uint8 image)
- weights: `weight_bits` signed, narrow range, a power-of-two scale per output channel (`weight_scale`; the
  export gives a layer's weights the finest one, the others shifted left) or per tensor
- biases: integers at the accumulator scale (input scale * weight scale), 32 bits
- ReLU outputs: `act_bits` unsigned, per-tensor power-of-two scale learned from statistics, rounded half to
  even (Brevitas' default) or half up (`act_rounding`, FINN's thresholds)
- the dense output is the exact accumulator (no rounding): the class scores.
The `paper` preset is the paper's student (1x48x48, 16/16 filters, 3x3, pool 2): 5,682 parameters for 2 classes.
"""

from __future__ import annotations

from collections import OrderedDict

import brevitas.nn as qnn
from brevitas.inject.enum import ScalingImplType
from brevitas.quant import Int8WeightPerTensorFixedPoint, Int32Bias, Uint8ActPerTensorFixedPoint
from brevitas.quant.fixed_point import Int8WeightPerChannelFixedPoint
import torch
from torch import nn

from insitu.config import StudentConfig
from insitu.errors import ConfigError


class InputQuant(Uint8ActPerTensorFixedPoint):
    """uint8 pixel / 256: a constant scale of 2^-8 (threshold 255/256)."""

    scaling_impl_type = ScalingImplType.CONST
    scaling_const = 255 / 256
    max_val = 255 / 256


def weight_quant(bits: int, per_channel: bool = False) -> type:
    """Signed narrow-range `bits`-bit weights with a power-of-two scale per tensor, or per output channel."""
    if per_channel:
        return type(f"Int{bits}WeightPerChannelFixedPoint", (Int8WeightPerChannelFixedPoint,), {"bit_width": bits})
    return type(f"Int{bits}WeightFixedPoint", (Int8WeightPerTensorFixedPoint,), {"bit_width": bits})


class RoundHalfUpSte(nn.Module):
    """floor(x + 1/2) forward, identity backward: round half up, as FINN's thresholds compute it (a code is the
    number of thresholds step/2 + t*step at or below x). Brevitas' own ROUND is half to even (torch.round)."""

    def __init__(self) -> None:  # an explicit signature: Brevitas' injector builds it by its arguments
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (torch.floor(x + 0.5) - x).detach()


#: StudentConfig.act_rounding -> the attributes of an activation quantizer that round so; the QONNX export
#: writes float_to_int_impl_type as the Quant node's rounding_mode (HALF_UP: half away from zero, which for
#: these unsigned quantizers is half up: a negative input clamps to 0 either way)
ACT_ROUNDING: dict[str, dict] = {
    "half_even": {},
    "half_up": {"float_to_int_impl": RoundHalfUpSte, "float_to_int_impl_type": "HALF_UP"},
}


def act_quant(bits: int, rounding: str = "half_even") -> type:
    name = f"Uint{bits}Act{'HalfUp' if rounding == 'half_up' else ''}FixedPoint"
    return type(name, (Uint8ActPerTensorFixedPoint,), {"bit_width": bits, **ACT_ROUNDING[rounding]})


def feature_shape(cfg: StudentConfig, image_size: int) -> tuple[int, int, int]:
    """(C,H,W) entering the flatten; raises ConfigError when the image is too small for the stages."""
    side = image_size
    for i, _ in enumerate(cfg.channels):
        side = (side - cfg.kernel + 1) // cfg.pool
        if side < 1:
            need = 1
            for _ in cfg.channels:
                need = need * cfg.pool + cfg.kernel - 1
            raise ConfigError(f"data.image_size={image_size} is too small for the student: its "
                              f"{len(cfg.channels)} stages (student.kernel={cfg.kernel}, student.pool={cfg.pool}) "
                              f"shrink a {image_size}x{image_size} input to nothing at stage {i}; they need at "
                              f"least {need}x{need}",
                              f"set data.image_size={need} or more (images are resized to it), or use fewer "
                              "stages (student.channels), a smaller student.kernel or student.pool")
    return cfg.channels[-1], side, side


def build_student(cfg: StudentConfig, num_classes: int, image_size: int, quantized: bool) -> nn.Sequential:
    """The student (float for pre-training, or quantized for QAT: the same module names, so float weights load
    into the quantized one). `cfg.arch` separable: the first stage a KxK convolution, each further stage a
    depthwise KxK and a pointwise 1x1 convolution; `cfg.head` gap: global average pooling before the dense layer."""
    c, h, w = feature_shape(cfg, image_size)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    per_channel = cfg.weight_scale == "channel"
    wq, aq = weight_quant(cfg.weight_bits, per_channel), act_quant(cfg.act_bits, cfg.act_rounding)
    pwq = weight_quant(cfg.pointwise_weight_bits, per_channel) if cfg.pointwise_weight_bits else wq
    fq = weight_quant(cfg.first_weight_bits, per_channel) if cfg.first_weight_bits else wq

    def conv(cin: int, cout: int, k: int, groups: int = 1, quant=wq) -> nn.Module:
        if quantized:
            return qnn.QuantConv2d(cin, cout, k, groups=groups, weight_quant=quant, bias_quant=Int32Bias,
                                   return_quant_tensor=True)
        return nn.Conv2d(cin, cout, k, groups=groups)

    def norm(name: str, ch: int) -> None:  # float pre-training only; folded away before QAT
        if cfg.batchnorm and not quantized:
            layers[name] = nn.BatchNorm2d(ch)

    def relu() -> nn.Module:
        return qnn.QuantReLU(act_quant=aq, return_quant_tensor=True) if quantized else nn.ReLU()

    layers["inp"] = qnn.QuantIdentity(act_quant=InputQuant, return_quant_tensor=True) if quantized else nn.Identity()
    cin = 1
    for i, cout in enumerate(cfg.channels):
        if cfg.arch == "separable" and i > 0:
            layers[f"dw{i}"] = conv(cin, cin, cfg.kernel, groups=cin)
            norm(f"dwbn{i}", cin)
            layers[f"dwrelu{i}"] = relu()
            layers[f"conv{i}"] = conv(cin, cout, 1, quant=pwq)
        else:
            layers[f"conv{i}"] = conv(cin, cout, cfg.kernel, quant=fq if i == 0 else wq)
        norm(f"bn{i}", cout)
        layers[f"relu{i}"] = relu()
        layers[f"pool{i}"] = nn.MaxPool2d(cfg.pool)
        cin = cout
    n_in = c * h * w
    if cfg.head == "gap":  # the average of non-negative activations, quantized by the ReLU after it
        layers["gap"] = nn.AdaptiveAvgPool2d(1)
        layers["gaprelu"] = relu()
        n_in = c
    layers["flatten"] = nn.Flatten()
    if quantized:
        layers["fc"] = qnn.QuantLinear(n_in, num_classes, bias=True, weight_quant=wq, bias_quant=Int32Bias,
                                       return_quant_tensor=False)
    else:
        layers["fc"] = nn.Linear(n_in, num_classes)
    return nn.Sequential(layers)


def weight_params(model: nn.Module) -> int:
    """Weights and biases only (what the firmware stores); quantizer scale parameters are not counted."""
    return sum(p.numel() for n, p in model.named_parameters() if n.endswith(("weight", "bias")) and "quant" not in n)


def fold_batchnorm(model: nn.Sequential) -> nn.Sequential:
    """The same network with every BatchNorm2d (eval statistics) folded into the convolution before it:
    w' = w * g / sqrt(v + eps), b' = (b - m) * g / sqrt(v + eps) + beta. Equal outputs in eval mode."""
    out: OrderedDict[str, nn.Module] = OrderedDict()
    last_conv = None
    for name, mod in model.named_children():
        if isinstance(mod, nn.BatchNorm2d):
            if last_conv is None:
                raise ConfigError(f"batch norm {name} has no convolution before it", "this is a bug; please report it")
            conv = out[last_conv]
            s = (mod.weight / (mod.running_var + mod.eps).sqrt()).detach()
            folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                               groups=conv.groups)
            with torch.no_grad():
                folded.weight.copy_(conv.weight * s[:, None, None, None])
                bias = conv.bias if conv.bias is not None else torch.zeros_like(s)
                folded.bias.copy_((bias - mod.running_mean) * s + mod.bias)
            out[last_conv], last_conv = folded, None
            continue
        last_conv = name if isinstance(mod, nn.Conv2d) else None
        out[name] = mod
    return nn.Sequential(out)


def load_float_into_quant(float_model: nn.Sequential, quant_model: nn.Sequential) -> None:
    """Copy float weights into the quantized student (same module names, batch norms folded first);
    quantizer state starts fresh."""
    float_model = fold_batchnorm(float_model)
    missing, unexpected = quant_model.load_state_dict(float_model.state_dict(), strict=False)
    bad = [k for k in missing if k.endswith(("weight", "bias")) and "quant" not in k] + list(unexpected)
    if bad:
        raise ConfigError(f"float and quantized students differ in layers: {bad}", "this is a bug; please report it")

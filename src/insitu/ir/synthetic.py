"""Random QuantModels of any shape: for RTL tests and lane sweeps that should not wait for training.

The layers and types follow exactly what the Brevitas export produces (uint8 input at 8 fractional bits,
power-of-two weights, exact accumulators, ReLU + round-half-even + saturate activations), with biases and
activation scales drawn so that activations actually use their range.
"""

from __future__ import annotations

import numpy as np

from insitu.ir.fixed import FixedType
from insitu.ir.graph import exact_acc
from insitu.ir.model import Conv2D, Dense, Flatten, Input, MaxPool2D, QuantModel, Requant


def _partial(layers: list, images: np.ndarray) -> np.ndarray:
    from insitu.ir import reference

    return reference.run(QuantModel(list(layers), []), images)


def random_model(seed: int = 0, size: int = 12, channels: tuple[int, ...] = (2, 3), k: int = 3, pool: int = 2,
                 weight_bits: int = 4, act_bits: int = 4, n_classes: int = 3) -> QuantModel:
    rng = np.random.default_rng(seed)
    calib = rng.integers(0, 256, (32, size, size), dtype=np.uint8)
    x_t = FixedType(False, 8, 8)
    layers: list = [Input("inp", (1, size, size), x_t)]
    c, h, w = 1, size, size
    wlim = 1 << (weight_bits - 1)
    for i, o in enumerate(channels):
        wq = rng.integers(-wlim, wlim, (o, c, k, k))
        wfrac = weight_bits - 1
        acc_frac = x_t.frac + wfrac
        zero = np.zeros(o, np.int64)
        acc = _partial(layers + [Conv2D(f"conv{i}", wq, zero, FixedType(True, weight_bits, wfrac),
                                        exact_acc(wq, zero, x_t, acc_frac))], calib)
        bias = -np.median(acc, axis=(0, 2, 3)).astype(np.int64)  # about half the outputs positive
        acc_t = exact_acc(wq, bias, x_t, acc_frac)
        layers.append(Conv2D(f"conv{i}", wq, bias, FixedType(True, weight_bits, wfrac), acc_t))
        p95 = max(float(np.percentile(acc + bias[None, :, None, None], 95)), 1.0)
        afrac = acc_frac + int(np.floor(np.log2(((1 << act_bits) - 1) / p95)))
        x_t = FixedType(False, act_bits, afrac, "RND_CONV", "SAT")
        layers.append(Requant(f"relu{i}", True, x_t))
        h, w = h - k + 1, w - k + 1
        if pool > 1:
            layers.append(MaxPool2D(f"pool{i}", pool))
            h, w = h // pool, w // pool
        c = o
    layers.append(Flatten("flatten"))
    wq = rng.integers(-wlim, wlim, (n_classes, c * h * w))
    wfrac = weight_bits - 1
    acc_frac = x_t.frac + wfrac
    zero = np.zeros(n_classes, np.int64)
    acc = _partial(layers + [Dense("fc", wq, zero, FixedType(True, weight_bits, wfrac),
                                   exact_acc(wq, zero, x_t, acc_frac))], calib)
    bias = -np.round(acc.mean(0)).astype(np.int64)  # classes about equally likely
    layers.append(Dense("fc", wq, bias, FixedType(True, weight_bits, wfrac), exact_acc(wq, bias, x_t, acc_frac)))
    return QuantModel(layers, [f"class{i}" for i in range(n_classes)], {"source": f"random_model(seed={seed})"})


def random_mlp(seed: int = 0, size: int = 4, hidden: tuple[int, ...] = (8,), weight_bits: int = 4,
               act_bits: int = 4, n_classes: int = 3) -> QuantModel:
    """Input (1, size, size) -> Flatten -> Dense/ReLU ... -> Dense, calibrated like `random_model`."""
    rng = np.random.default_rng(seed)
    calib = rng.integers(0, 256, (32, size, size), dtype=np.uint8)
    x_t = FixedType(False, 8, 8)
    layers: list = [Input("inp", (1, size, size), x_t), Flatten("flatten")]
    n_in = size * size
    wlim, wfrac = 1 << (weight_bits - 1), weight_bits - 1
    for i, n_out in enumerate([*hidden, n_classes]):
        wq = rng.integers(-wlim, wlim, (n_out, n_in))
        acc_frac = x_t.frac + wfrac
        zero = np.zeros(n_out, np.int64)
        acc = _partial(layers + [Dense(f"fc{i}", wq, zero, FixedType(True, weight_bits, wfrac),
                                       exact_acc(wq, zero, x_t, acc_frac))], calib)
        bias = -np.round(np.median(acc, axis=0)).astype(np.int64)
        layers.append(Dense(f"fc{i}", wq, bias, FixedType(True, weight_bits, wfrac),
                            exact_acc(wq, bias, x_t, acc_frac)))
        if i < len(hidden):
            p95 = max(float(np.percentile(acc + bias, 95)), 1.0)
            afrac = acc_frac + int(np.floor(np.log2(((1 << act_bits) - 1) / p95)))
            x_t = FixedType(False, act_bits, afrac, "RND_CONV", "SAT")
            layers.append(Requant(f"relu{i}", True, x_t))
        n_in = n_out
    return QuantModel(layers, [f"class{i}" for i in range(n_classes)], {"source": f"random_mlp(seed={seed})"})

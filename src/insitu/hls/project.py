"""Write an hls4ml project from a QuantModel, with every tensor's fixed-point type taken from the IR.

The IR is turned into a plain PyTorch network whose float weights are the IR's dyadic numbers exactly, and
hls4ml is told the type of every tensor (weights, biases, exact accumulators, requantized activations with
AP_RND_CONV/AP_SAT), so its C++ computes precisely what the integer reference computes. The project gets
the test vectors as its testbench data (`tb_data/`), so a user with Vitis can run csim/cosim directly.
"""

from __future__ import annotations

import logging
import math
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from insitu.config import HLSConfig
from insitu.errors import ExportError
from insitu.ir import support
from insitu.ir.graph import dense_weight
from insitu.ir.fixed import FixedType
from insitu.ir.model import AvgPool2D, Conv2D, Dense, Flatten, GlobalAvgPool, Input, MaxPool2D, QuantModel, Requant

log = logging.getLogger(__name__)
PROJECT = "insitu_cells"


@dataclass(frozen=True)
class HLSProject:
    path: Path
    name: str
    io_type: str
    n_inputs: int
    n_outputs: int
    output_frac: int


def _float(values: np.ndarray, frac: int, where: str) -> torch.Tensor:
    t = torch.tensor(values.astype(np.float64) * 2.0 ** -frac, dtype=torch.float64)
    if not torch.equal(t.float().double(), t):
        raise ExportError(f"{where}: values do not fit float32 exactly", "use fewer bits")
    return t.float()


def pad_name(layer: Conv2D) -> str:
    return f"{layer.name}_pad"


def flat_name(layer: GlobalAvgPool) -> str:
    return f"{layer.name}_flat"


def pool_accumulator(in_t: FixedType, out_t: FixedType, count: int) -> FixedType:
    """hls4ml averages as `acc = sum; acc /= count` in the accumulator type, then casts to the result type: a
    double rounding, exact when the accumulator holds the whole sum and at least out frac + ceil(log2 count) + 1
    fraction bits (the truncated quotient then never crosses a rounding boundary of the result)."""
    grow = math.ceil(math.log2(max(count, 2)))
    frac = max(out_t.frac + grow + 1, in_t.frac)
    return FixedType(True, in_t.width + grow + 1 + (frac - in_t.frac), frac)


def to_torch(qm: QuantModel) -> nn.Sequential:
    """A float PyTorch network computing the IR's values (before rounding), layer names kept."""
    mods: OrderedDict[str, nn.Module] = OrderedDict()
    shapes = qm.shapes()
    for i, layer in enumerate(qm.layers):
        if isinstance(layer, Input):
            continue
        if isinstance(layer, GlobalAvgPool):  # an average over the whole map, then (C,1,1) -> (C,)
            if len(shapes[i - 1]) != 3:
                raise ExportError(f"layer {layer.name!r}: global average pooling of a 1-D sequence is not mapped to "
                                  "hls4ml yet", "use the reference, or pool a (C, H, W) map")
            mods[layer.name] = nn.AvgPool2d(tuple(shapes[i - 1][1:]))
            mods[flat_name(layer)] = nn.Flatten()
            continue
        if isinstance(layer, Conv2D):
            o, c, kh, kw = dense_weight(layer).shape
            pt, pb, pl, pr = layer.padding
            if pt == pb and pl == pr:  # hls4ml pads symmetric convolutions itself
                m = nn.Conv2d(c, o, (kh, kw), stride=tuple(layer.stride), padding=(pt, pl))
            else:  # asymmetric: an explicit zero padding (hls4ml's ZeroPadding2D) before a valid convolution
                mods[pad_name(layer)] = nn.ConstantPad2d((pl, pr, pt, pb), 0.0)
                m = nn.Conv2d(c, o, (kh, kw), stride=tuple(layer.stride))
        elif isinstance(layer, Dense):
            m = nn.Linear(layer.weight.shape[1], layer.weight.shape[0])
        elif isinstance(layer, Requant):
            if not layer.relu:
                raise ExportError(f"{layer.name}: a requantizer without ReLU has no hls4ml layer yet",
                                  "use QuantReLU activations")
            m = nn.ReLU()
        elif isinstance(layer, MaxPool2D):
            m = nn.MaxPool2d(layer.size)
        elif isinstance(layer, AvgPool2D):
            if layer.stride not in (0, layer.size):
                raise ExportError(f"layer {layer.name!r}: overlapping average pooling (stride {layer.stride} < size "
                                  f"{layer.size}) is not mapped to hls4ml yet", "use stride = size")
            m = nn.AvgPool2d(layer.size)
        elif isinstance(layer, Flatten):
            m = nn.Flatten()
        else:  # pragma: no cover
            raise ExportError(f"hls: unsupported IR layer {layer}", "")
        if isinstance(layer, (Conv2D, Dense)):
            weight = dense_weight(layer) if isinstance(layer, Conv2D) else layer.weight  # depthwise: block-diagonal
            with torch.no_grad():
                m.weight.copy_(_float(weight, layer.weight_type.frac, f"{layer.name}.weight"))
                m.bias.copy_(_float(layer.bias, layer.out_type.frac, f"{layer.name}.bias"))
        mods[layer.name] = m
    return nn.Sequential(mods).eval()


def hls_config(qm: QuantModel, model: nn.Module, cfg: HLSConfig) -> dict:
    import hls4ml

    c, h, w = qm.input.shape
    conf = hls4ml.utils.config_from_pytorch_model(model, (c, h, w), granularity="name", backend=cfg.backend,
                                                  default_precision="ap_fixed<32,16>",
                                                  default_reuse_factor=cfg.reuse_factor)
    conf["Model"]["Strategy"] = cfg.strategy
    names = conf["LayerName"]
    input_name = next(iter(names))
    names[input_name]["Precision"]["result"] = qm.input.out_type.hls()
    types = qm.tensor_types()
    for i, (layer, t) in enumerate(zip(qm.layers, types)):
        if isinstance(layer, Input):
            continue
        if pad_name(layer) in names:  # the zero padding carries its input's type unchanged
            names[pad_name(layer)]["Precision"]["result"] = types[i - 1].hls()
        if layer.name not in names:
            raise ExportError(f"hls4ml did not keep layer {layer.name} (it has {list(names)})", "report this bug")
        p = names[layer.name]["Precision"]
        if isinstance(layer, (Conv2D, Dense)):
            p.update(weight=layer.weight_type.hls(), bias=t.hls(), accum=t.hls(), result=t.hls())
        elif isinstance(layer, Requant):
            p["result"] = t.hls()
        elif isinstance(layer, MaxPool2D):
            p.update(result=t.hls(), accum=t.hls())
        elif isinstance(layer, (AvgPool2D, GlobalAvgPool)):
            prev = qm.shapes()[i - 1]
            count = layer.size ** 2 if isinstance(layer, AvgPool2D) else prev[1] * prev[2]
            p.update(result=t.hls(), accum=pool_accumulator(types[i - 1], t, count).hls())
            if isinstance(layer, GlobalAvgPool):
                names[flat_name(layer)]["Precision"]["result"] = t.hls()
        else:
            p["result"] = t.hls()
    return conf


def _write_rows(path: Path, rows: np.ndarray, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, rows.reshape(len(rows), -1), fmt=fmt, delimiter=" ")


def write_testbench_data(project: Path, images_u8: np.ndarray, expected_real: np.ndarray) -> None:
    """tb_data/ as hls4ml's testbench reads it: one sample per line, channels-last, exact decimals."""
    x = images_u8.astype(np.float64) / 256.0  # (N,H,W) single channel: channels-last == row-major
    _write_rows(project / "tb_data" / "tb_input_features.dat", x, "%.8f")
    _write_rows(project / "tb_data" / "tb_output_predictions.dat", expected_real, "%.17g")


def write_project(qm: QuantModel, cfg: HLSConfig, out_dir: Path, images_u8: np.ndarray,
                  expected_real: np.ndarray) -> HLSProject:
    """Write the hls4ml project into out_dir (which must not exist yet)."""
    import hls4ml

    support.require(qm, "hls_stream" if cfg.io_type == "io_stream" else "hls_parallel")
    model = to_torch(qm)
    conf = hls_config(qm, model, cfg)
    hm = hls4ml.converters.convert_from_pytorch_model(
        model, output_dir=str(out_dir), project_name=PROJECT, backend=cfg.backend, io_type=cfg.io_type,
        hls_config=conf, part=cfg.part, clock_period=cfg.clock_period_ns)
    hm.write()
    _exact_printing(out_dir / f"{PROJECT}_test.cpp")
    write_testbench_data(out_dir, images_u8, expected_real)
    return HLSProject(out_dir, PROJECT, cfg.io_type, int(np.prod(qm.input.shape)), qm.shapes()[-1][0],
                      qm.output_type.frac)


def _exact_printing(testbench: Path) -> None:
    """hls4ml's testbench prints results with the stream's default 6 digits; make it print 17 (a double's
    round trip), so every output (at most 53 significant bits) reads back exactly."""
    src = testbench.read_text()
    marker = "std::ofstream fout(RESULTS_LOG);"
    if marker not in src:
        raise ExportError(f"unexpected hls4ml testbench layout in {testbench}", "pin hls4ml==1.3.0")
    src = "#include <iomanip>\n" + src.replace(marker, marker + "\n    fout << std::setprecision(17);")
    testbench.write_text(src)


def csim_script(project: HLSProject) -> str:
    """The C-simulation build: hls4ml's own testbench compiled with g++ and the bundled ap_types."""
    n = project.name
    return ("#!/usr/bin/env bash\n# C simulation of the hls4ml project with g++ (no vendor tool needed).\n"
            "set -euo pipefail\ncd \"$(dirname \"$0\")\"\n"
            f"g++ -O2 -std=c++14 -Ifirmware/ap_types -Ifirmware -DWEIGHTS_DIR='\"firmware/weights\"' "
            f"{n}_test.cpp firmware/{n}.cpp -o csim.bin\n")


def ensure_executable(path: Path) -> None:
    os.chmod(path, os.stat(path).st_mode | 0o111)

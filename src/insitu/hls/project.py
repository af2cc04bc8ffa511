"""Write an hls4ml project from a QuantModel, with every tensor's fixed-point type taken from the IR.

The IR is turned into a PyTorch network (`hls/torch_model.py`) whose float weights are the IR's dyadic numbers, and
hls4ml is told the type of every tensor (weights, biases, exact accumulators, requantized activations with
AP_RND_CONV/AP_SAT), so its C++ computes precisely what the integer reference computes. The project gets
the test vectors as its testbench data (`tb_data/`), so a user with Vitis can run csim/cosim directly.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from insitu.config import HLSConfig
from insitu.errors import ExportError
from insitu.hls.torch_model import flat_name, hls_names, pad_name, pool_accumulator, to_torch
from insitu.ir import reference, support
from insitu.ir.layers import AvgPool1D, Conv1D, GlobalMaxPool, MaxPool1D, ScaleShift
from insitu.ir.model import AvgPool2D, Conv2D, Dense, GlobalAvgPool, Input, MaxPool2D, QuantModel, Requant

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
    output_shape: tuple[int, ...] = ()  # (C, ...) of a map output: hls4ml writes it channels-last


def hls_config(qm: QuantModel, model: nn.Module, cfg: HLSConfig) -> dict:
    import hls4ml

    # 'internal': the firmware takes its input channels-last (a pixel's channels together, as a stream carries
    # them) with no transpose layer in front; the testbench data is written that way
    conf = hls4ml.utils.config_from_pytorch_model(model, tuple(qm.input.shape), granularity="name",
                                                  backend=cfg.backend, default_precision="ap_fixed<32,16>",
                                                  default_reuse_factor=cfg.reuse_factor,
                                                  channels_last_conversion="internal")
    conf["Model"]["Strategy"] = cfg.strategy
    names = conf["LayerName"]
    input_name = next(iter(names))
    names[input_name]["Precision"]["result"] = qm.input.out_type.hls()
    types, shapes, ins = qm.tensor_types(), qm.shapes(), qm.inputs_of()
    pos = {l.name: i for i, l in enumerate(qm.layers)}
    alias = hls_names(qm)
    for layer, t in zip(qm.layers, types):
        if isinstance(layer, Input):
            continue
        src = pos[ins[layer.name][0]]  # the (first) input's layer
        if pad_name(layer) in names:  # the zero padding carries its input's type unchanged
            names[pad_name(layer)]["Precision"]["result"] = types[src].hls()
        if alias[layer.name] not in names:
            raise ExportError(f"hls4ml did not keep layer {layer.name} (it has {list(names)})", "report this bug")
        p = names[alias[layer.name]]["Precision"]
        if isinstance(layer, (Conv2D, Conv1D, Dense)):
            p.update(weight=layer.weight_type.hls(), bias=t.hls(), accum=t.hls(), result=t.hls())
        elif isinstance(layer, Requant):
            p["result"] = t.hls()
        elif isinstance(layer, ScaleShift) and len(shapes[src]) == 1:  # a diagonal dense layer
            p.update(weight=layer.scale_type.hls(), bias=t.hls(), accum=t.hls(), result=t.hls())
        elif isinstance(layer, ScaleShift):
            p.update(scale=layer.scale_type.hls(), bias=t.hls(), result=t.hls())
        elif isinstance(layer, (MaxPool2D, MaxPool1D, GlobalMaxPool)):
            p.update(result=t.hls(), accum=t.hls())
        elif isinstance(layer, (AvgPool2D, AvgPool1D, GlobalAvgPool)):
            prev = shapes[src]
            count = int(np.prod(prev[1:])) if isinstance(layer, GlobalAvgPool) else layer.size ** (len(prev) - 1)
            p.update(result=t.hls(), accum=pool_accumulator(types[src], t, count).hls())
        else:
            p["result"] = t.hls()
        if isinstance(layer, (GlobalAvgPool, GlobalMaxPool)):
            names[flat_name(layer)]["Precision"]["result"] = t.hls()
    return conf


def _write_rows(path: Path, rows: np.ndarray, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, rows.reshape(len(rows), -1), fmt=fmt, delimiter=" ")


def write_testbench_data(project: Path, qm: QuantModel, inputs: np.ndarray, expected_real: np.ndarray) -> None:
    """tb_data/ as hls4ml's testbench reads it: one sample per line, channels-last, exact decimals. `inputs`
    are the input type's integer codes, (N, *input shape) (or (N, H, W) for one channel)."""
    codes = reference.prepare_input(qm, inputs)
    x = np.moveaxis(codes.astype(np.float64) * 2.0 ** -qm.input.out_type.frac, 1, -1)  # channels-last
    _write_rows(project / "tb_data" / "tb_input_features.dat", x, "%.17g")
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
    write_testbench_data(out_dir, qm, images_u8, expected_real)
    out_shape = tuple(qm.shapes()[-1])
    return HLSProject(out_dir, PROJECT, cfg.io_type, int(np.prod(qm.input.shape)), int(np.prod(out_shape)),
                      qm.output_type.frac, out_shape)


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

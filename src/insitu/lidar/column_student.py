"""The per-column student: one range-image column in, a failure score per beam out.

Input: a uint8 'image' of beams x (3 features x (2*context+1) columns), the column and its neighbours side by
side; features per cell, all 0 for an empty cell:
    range   r / 0.25 m       (0..63.75 m)
    height  (z + 2.5) / 0.05 (z in the sensor frame, -2.45..+10.2 m)
    remission * 255
Network: flatten -> dense(hidden) -> ReLU -> dense(beams), a Brevitas QAT MLP with power-of-two quantizers, the
same quantizer family as the cells student, so the exporter, the IR reference, hls4ml and the unrolled RTL
take it unchanged. The output is the exact accumulator: one logit per beam.
"""

from __future__ import annotations

from collections import OrderedDict

import brevitas.nn as qnn
import numpy as np
from brevitas.quant import Int32Bias
from torch import nn

from insitu.config_lidar import ColumnStudentConfig
from insitu.data.range_image import BeamTable, Projection, project
from insitu.distill.student import InputQuant, act_quant, weight_quant

FEATURES = ("range", "height", "remission")
RANGE_STEP_M, HEIGHT_OFFSET_M, HEIGHT_STEP_M = 0.25, 2.5, 0.05


def feature_image(points: np.ndarray, table: BeamTable, columns: int) -> tuple[np.ndarray, Projection]:
    """(beams, columns, 3) uint8 features of a scan, and its projection (rows from the sensor's beam table;
    no feature reads the angles, so any table of the student's beam count gives the same kind of input)."""
    proj = project(points, table, columns)
    ok = proj.index >= 0
    r = np.clip(np.round(proj.range_ / RANGE_STEP_M), 1, 255)
    z = np.clip(np.round((proj.image(points[:, 2].astype(np.float64)) + HEIGHT_OFFSET_M) / HEIGHT_STEP_M), 1, 255)
    rem = np.clip(np.round(proj.image(points[:, 3].astype(np.float64)) * 255), 1, 255)
    img = np.stack([r, z, rem], axis=-1) * ok[..., None]
    return img.astype(np.uint8), proj


def columns_of(img: np.ndarray, context: int) -> np.ndarray:
    """(columns, beams, 3*(2*context+1)) student inputs: each column with its neighbours (circular)."""
    b, w, f = img.shape
    offs = np.arange(-context, context + 1)
    take = (np.arange(w)[:, None] + offs[None, :]) % w  # (W, 2k+1)
    cols = img[:, take, :]  # (B, W, 2k+1, F)
    return np.ascontiguousarray(cols.transpose(1, 0, 2, 3).reshape(w, b, (2 * context + 1) * f))


def input_width(cfg: ColumnStudentConfig) -> int:
    return len(FEATURES) * (2 * cfg.context + 1)


def build(cfg: ColumnStudentConfig, beams: int, quantized: bool) -> nn.Sequential:
    n_in = beams * input_width(cfg)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    if quantized:
        wq, aq = weight_quant(cfg.weight_bits), act_quant(cfg.act_bits)
        layers["inp"] = qnn.QuantIdentity(act_quant=InputQuant, return_quant_tensor=True)
        layers["flatten"] = nn.Flatten()
        layers["fc0"] = qnn.QuantLinear(n_in, cfg.hidden, bias=True, weight_quant=wq, bias_quant=Int32Bias,
                                        return_quant_tensor=True)
        layers["relu0"] = qnn.QuantReLU(act_quant=aq, return_quant_tensor=True)
        layers["fc1"] = qnn.QuantLinear(cfg.hidden, beams, bias=True, weight_quant=wq, bias_quant=Int32Bias,
                                        return_quant_tensor=False)
    else:
        layers["inp"] = nn.Identity()
        layers["flatten"] = nn.Flatten()
        layers["fc0"] = nn.Linear(n_in, cfg.hidden)
        layers["relu0"] = nn.ReLU()
        layers["fc1"] = nn.Linear(cfg.hidden, beams)
    return nn.Sequential(layers)


def beam_names(beams: int) -> list[str]:
    return [f"beam{b:02d}" for b in range(beams)]

"""Typed, validated run configuration and the named presets.

Every field has a range; a bad value raises `ConfigError` naming the field, the value and what is allowed.
Overrides come as dotted `key=value` strings (`student.weight_bits=5`), the same from the CLI and from code.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from insitu.config_compile import COMPILE_PRESETS, CompileConfig
from insitu.config_lidar import LIDAR_PRESETS, LidarConfig
from insitu.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Strict):
    source: Literal["synthetic", "lymphomnist", "folder", "npz"] = Field(
        "synthetic", description="where images come from; 'synthetic' is built in")
    path: Path | None = Field(None, description="file or folder for lymphomnist/folder/npz sources")
    classes: Literal[2, 3] = Field(3, description="cell classes: 3 = B/T4/T8, 2 = B vs T (T4+T8 merged)")
    image_size: int = Field(48, ge=8, le=256, description="side of the square model input, pixels")
    n_train: int = Field(3000, ge=12, le=10_000_000, description="labelled training images")
    n_pool: int = Field(9000, ge=0, le=10_000_000, description="unlabelled images for distillation")
    n_test: int = Field(2000, ge=6, le=10_000_000, description="held-out test images")
    seed: int = Field(0, ge=0, description="seed of the synthetic generator and of the split")
    flips: bool = Field(True, description="the class is unchanged by flips and transposes (cells seen from above): "
                                          "training augments with them and the teacher's soft labels average the "
                                          "flipped views; false for digits, text, oriented objects (shifts only)")
    separation: float = Field(1.0, ge=0.0, le=4.0,
                              description="synthetic data: scale of the class differences (1 = calibrated default)")


class TeacherConfig(_Strict):
    width: int = Field(32, ge=4, le=512, description="channels of the first residual stage")
    blocks: list[int] = Field([1, 1, 1], min_length=1, max_length=4, description="residual blocks per stage")
    epochs: int = Field(40, ge=1, le=1000, description="40: 94.2% on the built-in cells (seed 0) against 92.6% at 15")
    batch_size: int = Field(64, ge=1, le=4096)
    lr: float = Field(2e-3, gt=0, le=1.0)
    weight_decay: float = Field(5e-4, ge=0, le=1.0)
    augment: bool = True


class StudentConfig(_Strict):
    arch: Literal["plain", "separable"] = Field(
        "separable", description="plain: a KxK convolution per stage (the paper's); separable: the first stage plain, "
                             "the others a depthwise KxK then a pointwise 1x1 convolution")
    head: Literal["flatten", "gap"] = Field(
        "flatten", description="flatten: a dense layer over every position; gap: global average pooling, then dense")
    channels: list[int] = Field([16, 32, 48], min_length=1, max_length=6,
                                description="conv filters per stage; 16/32/64 is 1-2 points better but its 4-lane "
                                            "core does not fit the ECP5-85F (86,827 of 83,640 LUTs)")
    kernel: int = Field(3, ge=1, le=7)
    pool: int = Field(2, ge=1, le=4)
    batchnorm: bool = Field(True, description="float pre-training with batch normalisation after every convolution, "
                                               "folded into the convolutions before QAT (the firmware has none)")
    weight_bits: int = Field(6, ge=2, le=8)
    pointwise_weight_bits: int | None = Field(
        None, ge=2, le=8, description="weight bits of the 1x1 (pointwise) convolutions of a separable student, the "
                                      "largest part of its core; None: weight_bits")
    first_weight_bits: int | None = Field(
        None, ge=2, le=8, description="weight bits of the first convolution, the one repeated on every pixel lane "
                                      "of the streaming core; None: weight_bits. 4 bits: 8% fewer LUTs in Yosys' "
                                      "estimate of the default core for 0.55 points (3 seeds)")
    weight_scale: Literal["tensor", "channel"] = Field(
        "channel", description="power-of-two weight scale per output channel (channel) or per layer (tensor). Per "
                               "channel, a layer's weights share the finest scale in hardware (the others shifted, "
                               "bit-exact; the small channels' codes use all their bits): 92.42 ± 0.45% after QAT "
                               "against 91.33 ± 0.64 per tensor "
                               "(3 seeds), for 17% more LUTs in Yosys' estimate of the default core")
    act_bits: int = Field(6, ge=2, le=8)
    act_rounding: Literal["half_even", "half_up"] = Field(
        "half_even", description="rounding of the activation quantizers in training and in every backend: half_even "
                                 "is Brevitas' and hls4ml's AP_RND_CONV; half_up is FINN's thresholds (AP_RND), "
                                 "for `insitu export --finn`")
    input_bits: Literal[8] = 8


class DistillConfig(_Strict):
    mode: Literal["auto", "label_free", "labelled"] = Field(
        "auto", description="label_free: soft labels only; auto: label_free when the pool outnumbers the labels")
    teacher_view: Literal["fixed", "online"] = Field(
        "fixed", description="fixed: the teacher's soft labels of each un-augmented image (computed once); online: "
                             "the teacher run on the very augmented view the student sees, every step")
    teacher_tta: bool = Field(True, description="online teacher: average its logits over the four flips when the "
                              "data allows flips (4 teacher passes per step; false: 1)")
    attention: float = Field(0.0, ge=0, le=1e5, description="attention-transfer weight beta (0: off): the student's "
                             "stage maps match the teacher's, the teacher run on every augmented batch")
    attention_in_qat: bool = Field(False, description="keep attention transfer during QAT (default: float "
                                                      "training only; kept in QAT it cost 2.2 points at beta 1, "
                                                      "seed 0, against 1.0 for float only)")
    temperature: float = Field(2.0, gt=0, le=50)
    alpha: float = Field(0.9, ge=0, le=1, description="weight of the KL term against the hard-label CE")
    float_epochs: int = Field(64, ge=0, le=1000, description="float pre-training epochs (the float student); 64: "
                              "93.10 ± 0.26% after per-channel QAT (3 seeds) against 92.42 ± 0.45 at 32")
    qat_epochs: int = Field(20, ge=1, le=1000, description="quantization-aware fine-tuning epochs. 20: 93.42 ± 0.24% "
                                                         "after QAT against 93.10 ± 0.26 at 10 (3 seeds), for "
                                                         "about 200 s more at 1 thread")
    batch_size: int = Field(128, ge=1, le=8192)
    lr: float = Field(1e-2, gt=0, le=1.0, description="float pre-training learning rate")
    qat_lr: float = Field(1e-2, gt=0, le=1.0, description="QAT fine-tuning learning rate (peak, warm-up + cosine)")
    augment: bool = True
    mixup: float = Field(0.0, ge=0, le=10, description="mixup in both students' training (the KD student and the "
                         "ablation alike): each batch blended with a permutation of itself, lam ~ Beta(mixup, "
                         "mixup); with an online teacher the teacher sees the blend (function matching); 0: off")
    ema: float = Field(0.0, ge=0, lt=1, description="decay of a moving average of the weights kept from a third of "
                       "each training phase on and used at its end (both students); 0: off")
    ablation: bool = Field(True, description="also train the same student without the teacher (the KD gain); "
                                             "false halves the step's time (sweeps)")


class HLSConfig(_Strict):
    backend: Literal["Vitis"] = "Vitis"
    io_type: Literal["io_stream", "io_parallel"] = "io_stream"
    part: str = Field("xcku035-fbva676-2-e", min_length=3, description="FPGA part of the HLS project")
    clock_period_ns: float = Field(4.0, gt=0.5, le=100)
    reuse_factor: int = Field(1, ge=1, le=4096)
    strategy: Literal["Latency", "Resource"] = "Latency"
    csim_vectors: int = Field(0, ge=0, description="C-simulation vectors; 0 = the whole test set")
    compile_timeout_s: float = Field(900, gt=0)
    run_timeout_s: float = Field(1800, gt=0)
    synth: Literal["auto", "off"] = Field("auto", description="auto: C synthesis, co-simulation and IP export with "
                                                              "Vitis HLS when vitis-run / vitis_hls is on PATH")
    synth_timeout_s: float = Field(7200, gt=0, description="Vitis HLS build_prj.tcl")


class RTLConfig(_Strict):
    architecture: Literal["auto", "streaming", "unrolled"] = Field(
        "auto", description="auto: streaming for models with 2-D convolutions, unrolled (a sample per clock) for the "
                "others (MLPs, 1-D convolutions)")
    lanes: int = Field(4, ge=1, le=64, description="pixels per clock on the input stream (P)")
    latency_cutoff: float = Field(2.0, gt=0, le=64, description="da4ml pipeline cut: adder depth per register stage")
    simulator: Literal["auto", "icarus", "verilator"] = Field(
        "auto", description="auto: Verilator when installed (whole test set), else Icarus")
    sim_vectors: int = Field(0, ge=0, description="RTL-simulated images; 0 = whole test set with Verilator, "
                                                  "1000 with Icarus")
    timeout_s: float = Field(3600, gt=0)


class FirmwareConfig(_Strict):
    enabled: bool = Field(True, description="build a bitstream (false: stop after the RTL simulation)")
    board: str = Field("ulx3s-85f", description="board name, see `insitu boards`")
    clock_mhz: float = Field(50.0, gt=1, le=800,
                             description="core clock the PLL is synthesised with and place and route aims at")
    pll: Literal["fastest", "asked"] = Field(
        "fastest", description="fastest: after routing, the PLL is set to the fastest legal frequency the routed "
                               "design meets (ECP5); asked: it stays at clock_mhz")
    baud: int = Field(115200, ge=1200, le=12_000_000)
    trigger_class: int = Field(0, ge=0, description="the class whose decision pulses the trigger output")
    trigger_us: float = Field(1.0, gt=0, le=1e6, description="trigger pulse length")
    seed: int = Field(1, ge=0, description="nextpnr placement seed")
    router: Literal["router1", "router2"] = Field(
        "router1", description="nextpnr router: router1 (nextpnr's default, timing-driven) gave the higher Fmax "
                               "and the more predictable run time on the cells core; router2 was faster at 2 lanes "
                               "and far slower at 4")
    shell_sim_images: int = Field(2, ge=0, le=1000, description="images sent through the simulated UART shell")
    dsp: bool | Literal["auto"] = Field(
        "auto", description="map multipliers to DSP blocks (true) or to LUTs (false; narrow products are cheap in "
                            "LUTs); auto: DSP blocks when the core's products fit the device's, else LUTs")
    timeout_s: float = Field(10800, gt=0, description="per tool call: a guard against a hung tool, not a budget. "
                                                   "The default core's place and route (63k LUT4, single-threaded "
                                                   "WebAssembly nextpnr) ran past 3600 s on one seed")
    estimate_only: bool = Field(False, description="open-flow boards: Yosys synthesis estimates of the whole shell "
                                                   "instead of place and route (what `insitu sweep --estimate-only` sets)")


class RunConfig(_Strict):
    app: Literal["cells", "lidar", "compile"] = "cells"
    preset: str = "default"
    seed: int = Field(0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = Field(0, ge=0, le=256, description="torch CPU threads; 0 = all cores")
    data: DataConfig = DataConfig()
    teacher: TeacherConfig = TeacherConfig()
    student: StudentConfig = StudentConfig()
    distill: DistillConfig = DistillConfig()
    hls: HLSConfig = HLSConfig()
    rtl: RTLConfig = RTLConfig()
    firmware: FirmwareConfig = FirmwareConfig()
    lidar: LidarConfig = LidarConfig()
    compile: CompileConfig = CompileConfig()

    @model_validator(mode="after")
    def _paths_for_sources(self) -> RunConfig:
        if self.data.source != "synthetic" and self.data.path is None:
            raise ValueError(f"data.source={self.data.source!r} needs data.path (a file or folder on disk)")
        return self

    def section_hash(self, *sections: str) -> str:
        """Stable hash of the named sections (plus seed/app), used to decide whether a stage can be reused.
        A section may be dotted (`lidar.segnet`) to depend on a sub-section only. A field of `ADDED_FIELDS` at
        None is left out, so runs made before it existed keep their steps; a field of `UNKEYED_FIELDS` is always
        left out (it cannot change a step's outputs)."""
        d = self.model_dump(mode="json")
        for path in UNKEYED_FIELDS:
            *parents, leaf = path.split(".")
            _at(d, parents).pop(leaf, None)
        for path in ADDED_FIELDS:
            *parents, leaf = path.split(".")
            node = _at(d, parents)
            if node.get(leaf, 0) is None:
                del node[leaf]
        payload = {k: _at(d, k.split(".")) for k in ("app", "seed", *sections)}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _at(d: dict[str, Any], parts: list[str]) -> Any:
    """The node of nested dict `d` at the keys `parts` in turn."""
    for part in parts:
        d = d[part]
    return d


#: Optional fields added after run directories existed, whose None is the behaviour before them: left out of the
#: step keys when None (`RunConfig.section_hash`), so adding one does not re-run the steps of earlier runs.
#: A new field of that kind goes here.
ADDED_FIELDS: tuple[str, ...] = ("student.first_weight_bits",)

#: Fields that cannot change what a step produces (a tool's timeout ends it or lets it finish the same result):
#: never part of a step's key, so raising a timeout to resume a stopped run does not re-run what finished.
UNKEYED_FIELDS: tuple[str, ...] = ("firmware.timeout_s",)


#: Named presets: partial dicts laid over the defaults. `tiny` is for tests (well under 2 minutes); `paper` is
#: the published sorter's student (conv 16, pool, conv 16, pool, dense: 5,682 parameters for 2 classes) trained
#: with the default recipe (its batch norms fold into the convolutions: the same network in hardware).
PRESETS: dict[str, dict[str, Any]] = {
    # 4-bit pointwise weights: 22% fewer LUTs than 6-bit (47.8k against 61.4k placed on the 85F, per-tensor
    # scales), which is what let the core route (the 6-bit one had not after an hour) for 0.73 points (3 seeds);
    # with per-channel scales (now) it is 63.2k LUT4 and nextpnr took 4,507 s (README)
    "default": {"student": {"pointwise_weight_bits": 4}},
    # the 5 µs sorter: the sweep front's small student (6-bit weights everywhere) at 8 pixel lanes: 4.10 µs
    # first pixel -> decision at the bitstream's clock on the ULX3S-85F (82.14 MHz, 337 cycles, 50.7k LUT) and
    # 91.03 ± 0.71% over 3 seeds with today's defaults (20 QAT epochs), 3.78 points behind the teacher, which it
    # underfits (docs/distillation.md)
    "fast": {"student": {"channels": [8, 16, 32]}, "rtl": {"lanes": 8}},
    "paper": {"student": {"arch": "plain", "head": "flatten", "channels": [16, 16], "kernel": 3, "pool": 2,
                          "weight_bits": 6, "act_bits": 6}},
    "tiny": {
        "data": {"n_train": 240, "n_pool": 360, "n_test": 120, "image_size": 24},
        "teacher": {"width": 8, "blocks": [1, 1], "epochs": 2, "batch_size": 32},
        "student": {"channels": [4, 4], "weight_bits": 4, "act_bits": 4},
        "distill": {"float_epochs": 2, "qat_epochs": 2, "batch_size": 64},
        "rtl": {"lanes": 2, "simulator": "icarus", "sim_vectors": 40},
    },
}


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def overrides_to_dict(overrides: list[str]) -> dict[str, Any]:
    """['student.weight_bits=5', 'teacher.blocks=[1,2]'] -> nested dict."""
    out: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form section.field=value",
                              "write for example --set student.weight_bits=5")
        key, value = item.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = _parse_value(value.strip())
    return out


def _describe(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "config"
        value = e.get("input")
        shown = "" if isinstance(value, dict) else f" = {value!r}"
        lines.append(f"{field}{shown}: {e['msg']}")
    return "; ".join(lines)


APP_PRESETS: dict[str, dict[str, dict[str, Any]]] = {"cells": PRESETS, "lidar": LIDAR_PRESETS,
                                                     "compile": COMPILE_PRESETS}


def build_config(preset: str = "default", overrides: dict[str, Any] | None = None, app: str = "cells") -> RunConfig:
    """The application's preset laid over the defaults, then the overrides; validated."""
    presets = APP_PRESETS.get(app)
    if presets is None:
        raise ConfigError(f"unknown application {app!r}", f"choose one of: {', '.join(APP_PRESETS)}")
    if preset not in presets:
        raise ConfigError(f"unknown preset {preset!r} for {app}", f"choose one of: {', '.join(presets)}")
    raw = deep_merge(presets[preset], overrides or {})
    raw["preset"], raw["app"] = preset, app
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(f"invalid configuration: {_describe(err)}",
                          "see `insitu config --preset default` for every field and its default") from None


def load_config(path: Path) -> RunConfig:
    """Read a saved config.json (as written into every run directory)."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}", "pass a config.json written by insitu") from None
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(f"invalid configuration in {path}: {_describe(err)}", "fix or delete the file") from None

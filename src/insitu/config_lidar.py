"""Configuration of the lidar failure-detection application (`RunConfig.lidar`), with its presets.

The hls / rtl / firmware sections of RunConfig are shared with the cells application.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LidarDataConfig(_Strict):
    source: Literal["synthetic", "semantickitti"] = Field(
        "synthetic", description="synthetic: the built-in simulator; semantickitti: sequences under data.path")
    path: Path | None = Field(None, description="semantickitti: folder holding sequences/NN/")
    beams: int = Field(32, ge=2, le=256, description="sensor beams, and the student's rows (16 is too sparse for "
                                                     "the motion stream)")
    sensor: str = Field("auto", min_length=1, description="beam table: auto (simulator: its uniform table; your "
                                                          "sequences: estimated from the scans), a preset (sim-16, "
                                                          "sim-32, sim-64, vlp-16, hdl-32e, vlp-32c, hdl-64e) or a "
                                                          ".toml/.json sensor file with beam_angles_deg")
    beam_angles_deg: list[float] | None = Field(None, min_length=2, max_length=256,
                                                description="the beam table as elevation angles in degrees "
                                                            "(overrides sensor)")
    columns: int = Field(512, ge=64, le=4096, description="azimuth steps per turn (range-image width)")
    scans_per_sequence: int = Field(25, ge=2, le=10_000)
    train_sequences: int = Field(16, ge=1, le=1000, description="normal scenes for the supervised stream")
    pool_sequences: int = Field(16, ge=1, le=1000, description="scenes with anomalies, no labels used: distillation")
    test_sequences: int = Field(8, ge=1, le=1000, description="held-out scenes with anomalies: evaluation")
    anomalies_min: int = Field(1, ge=0, le=20)
    anomalies_max: int = Field(3, ge=0, le=20)
    max_range_m: float = Field(70.0, gt=5, le=250)
    range_noise_m: float = Field(0.015, ge=0, le=1)
    dropout: float = Field(0.01, ge=0, lt=1)
    seed: int = Field(0, ge=0)
    cache_dir: Path | None = Field(None, description="where simulated sequences are cached; default "
                                                      "$INSITU_CACHE or ~/.cache/insitu")


    @model_validator(mode="after")
    def _angles_match_beams(self) -> LidarDataConfig:
        if self.beam_angles_deg is not None and len(self.beam_angles_deg) != self.beams:
            raise ValueError(f"beam_angles_deg lists {len(self.beam_angles_deg)} angles but beams={self.beams}")
        return self


class SegNetConfig(_Strict):
    width: int = Field(16, ge=4, le=256, description="channels of the range-image segmentation network")
    epochs: int = Field(4, ge=1, le=1000, description="passes over the training columns (in random crops)")
    batch_size: int = Field(8, ge=1, le=512)
    crop_columns: int = Field(128, ge=16, le=4096, description="random azimuth crop per training sample")
    lr: float = Field(3e-3, gt=0, le=1)


class MotionConfig(_Strict):
    max_range_m: float = Field(25.0, gt=1, le=200, description="only points this close are judged (reference)")
    coherence: float = Field(0.12, gt=0, le=10, description="normalised flow std below which a cluster is rigid")
    min_speed_kmh: float = Field(4.0, ge=0, le=200)
    max_speed_kmh: float = Field(80.0, gt=0, le=500, description="faster clusters are outliers (static)")
    cluster_eps_m: float = Field(0.7, gt=0, le=10)
    flow_smooth_k: int = Field(10, ge=1, le=100)
    failure_eps_m: float = Field(1.0, gt=0, le=10, description="DBSCAN eps of contradicting points")
    failure_min_points: int = Field(25, ge=1, le=10_000)


class ColumnStudentConfig(_Strict):
    context: int = Field(0, ge=0, le=4, description="neighbouring columns on each side fed with each column")
    hidden: int = Field(8, ge=2, le=512, description="8 scores as well as 24 and places and routes in "
                                                                 "minutes; 24 did not route in an hour")
    weight_bits: int = Field(4, ge=2, le=8)
    act_bits: int = Field(4, ge=2, le=8)


class LidarDistillConfig(_Strict):
    flag_weight: float = Field(0.8, ge=0, le=1, description="target = w * pseudo-label + (1-w) * teacher "
                                                             "contradiction confidence")
    float_epochs: int = Field(20, ge=0, le=1000)
    qat_epochs: int = Field(2, ge=1, le=1000)
    batch_size: int = Field(512, ge=1, le=65536)
    lr: float = Field(3e-3, gt=0, le=1)
    qat_lr: float = Field(5e-4, gt=0, le=1)
    vectors: int = Field(2000, ge=10, le=1_000_000, description="test columns kept as C/RTL simulation vectors")


class LidarConfig(_Strict):
    data: LidarDataConfig = LidarDataConfig()
    segnet: SegNetConfig = SegNetConfig()
    motion: MotionConfig = MotionConfig()
    student: ColumnStudentConfig = ColumnStudentConfig()
    distill: LidarDistillConfig = LidarDistillConfig()


#: Presets of `insitu run lidar`: partial dicts over the defaults of the whole RunConfig.
LIDAR_PRESETS: dict[str, dict[str, Any]] = {
    # router2: the fully connected column MLP routes in minutes with it, router1 had not converged after 15
    "default": {"rtl": {"architecture": "unrolled"}, "firmware": {"router": "router2"}},
    "tiny": {
        "lidar": {"data": {"beams": 16, "columns": 256, "scans_per_sequence": 8, "train_sequences": 3,
                           "pool_sequences": 3, "test_sequences": 2, "anomalies_min": 2},
                  "segnet": {"width": 8, "epochs": 2, "crop_columns": 64},
                  "student": {"hidden": 8},
                  "distill": {"float_epochs": 2, "qat_epochs": 1, "vectors": 60}},
        "rtl": {"architecture": "unrolled", "simulator": "icarus", "sim_vectors": 60},
        "firmware": {"router": "router2"},
        "hls": {"csim_vectors": 60},
    },
}

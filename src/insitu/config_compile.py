"""Configuration of `insitu compile` (`RunConfig.compile`): a user's model file to verified firmware.

The hls / rtl / firmware sections of RunConfig are shared with the built-in applications. The model file and
the inputs file are named by path and by content hash (set by `insitu.api`), so a changed file re-runs the import.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class CompileConfig(_Strict):
    model: str = Field("", description="the model file (.onnx QONNX, .keras HGQ2, .h5 / SavedModel QKeras)")
    format: Literal["auto", "qonnx", "hgq2", "qkeras"] = Field(
        "auto", description="auto: from the file (.onnx: qonnx, .keras: hgq2, .h5 or a SavedModel folder: qkeras)")
    model_sha256: str = Field("", description="content hash of the model (and its external data); set by insitu")
    inputs: str | None = Field(None, description="an .npz with key x: the inputs as the framework takes them")
    inputs_sha256: str = Field("", description="content hash of the inputs file; set by insitu")
    n_random: int = Field(512, ge=1, le=1_000_000, description="seeded random inputs when no inputs file is given")
    class_names: list[str] | None = Field(None, description="names of the outputs (default out0, out1, ...)")


#: `insitu compile` presets: the RTL simulator takes every input; no bitstream unless a board is given
COMPILE_PRESETS: dict[str, dict[str, Any]] = {
    "default": {"firmware": {"enabled": False}, "rtl": {"sim_vectors": 0}},
}

"""Frontends: a user's trained quantized model -> the QuantModel IR, and the source framework's own execution.

`FRONTENDS` is the registry: a format that is not in it is refused by name. Each frontend says which files
make up a model (copied into the run so that it stays reproducible), how to import it, and how its framework
executes it (for the bit-exact check of the IR reference).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from insitu.errors import ModelImportError
from insitu.ir.model import QuantModel


@dataclass(frozen=True)
class Frontend:
    name: str
    describe: str
    suffixes: tuple[str, ...]
    files: Callable[[Path], list[Path]]  # the model's files (the first one is the model)
    load: Callable[[Path, list[str] | None], QuantModel]
    execute: Callable[[Path, np.ndarray], np.ndarray]  # float inputs -> float64 outputs (N, outputs)
    executor: str  # what `execute` runs, for the report


def _onnx_files(path: Path) -> list[Path]:
    from insitu.frontends.onnx_file import load_proto_header

    return [path, *load_proto_header(path)]


def _load_qonnx(path: Path, names: list[str] | None) -> QuantModel:
    from insitu.frontends.qonnx_import import from_qonnx

    return from_qonnx(path, names)


def _run_qonnx(path: Path, x: np.ndarray) -> np.ndarray:
    from insitu.frontends.execute import run_qonnx

    return run_qonnx(path, x)


def _qkeras_files(path: Path) -> list[Path]:
    from insitu.frontends.qkeras import files

    return files(path)


def _load_qkeras(path: Path, names: list[str] | None) -> QuantModel:
    from insitu.frontends.qkeras import load

    return load(path, names)


def _run_qkeras(path: Path, x: np.ndarray) -> np.ndarray:
    from insitu.frontends.qkeras import execute

    return execute(path, x)


def _hgq2_files(path: Path) -> list[Path]:
    from insitu.frontends.hgq2 import files

    return files(path)


def _load_hgq2(path: Path, names: list[str] | None) -> QuantModel:
    from insitu.frontends.hgq2 import load

    return load(path, names)


def _run_hgq2(path: Path, x: np.ndarray) -> np.ndarray:
    from insitu.frontends.hgq2 import execute

    return execute(path, x)


FRONTENDS: dict[str, Frontend] = {
    "qonnx": Frontend("qonnx", "QONNX (.onnx with Quant / Trunc nodes: Brevitas export_qonnx, qonnx converters)",
                      (".onnx",), _onnx_files, _load_qonnx, _run_qonnx, "qonnx executor (qonnx 1.0.0 + onnxruntime)"),
    "qkeras": Frontend("qkeras", "QKeras (.h5 or a SavedModel folder; runs in the QKeras environment, `make qkeras`)",
                       (".h5", ".hdf5"), _qkeras_files, _load_qkeras, _run_qkeras,
                       "QKeras predict (TensorFlow 2.21, tf-keras, QKeras 0.9.0; quantizers without the STE)"),
    "hgq2": Frontend("hgq2", "HGQ2 (a Keras 3 .keras file; run on the torch backend)", (".keras",), _hgq2_files,
                     _load_hgq2, _run_hgq2, "Keras 3 forward pass (HGQ2 0.2.0, torch backend)"),
}


def detect_format(path: Path, fmt: str = "auto") -> Frontend:
    if fmt != "auto":
        if fmt not in FRONTENDS:
            raise ModelImportError(f"model format {fmt!r} is not supported here",
                                   f"supported: {', '.join(f'{f.name} ({f.describe})' for f in FRONTENDS.values())}")
        return FRONTENDS[fmt]
    for f in FRONTENDS.values():
        if path.suffix.lower() in f.suffixes:
            return f
    if path.is_dir() and (path / "saved_model.pb").exists():
        return FRONTENDS["qkeras"]
    raise ModelImportError(f"cannot tell the format of {path} from its name",
                           f"supported: {', '.join(f'{f.name} ({f.describe})' for f in FRONTENDS.values())}; "
                           "or pass --format")

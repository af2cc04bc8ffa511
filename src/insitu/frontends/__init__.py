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


def _lazy(module: str, name: str) -> Callable:
    """A function of `insitu.frontends.<module>` imported when first called (each framework loads only when used)."""
    def call(*args):
        from importlib import import_module

        return getattr(import_module(f"insitu.frontends.{module}"), name)(*args)

    return call


def _onnx_files(path: Path) -> list[Path]:
    from insitu.frontends.onnx_file import load_proto_header

    return [path, *load_proto_header(path)]


FRONTENDS: dict[str, Frontend] = {
    "qonnx": Frontend("qonnx", "QONNX (.onnx with Quant / Trunc nodes: Brevitas export_qonnx, qonnx converters)",
                      (".onnx",), _onnx_files, _lazy("qonnx_import", "from_qonnx"), _lazy("execute", "run_qonnx"),
                      "qonnx executor (qonnx 1.0.0 + onnxruntime)"),
    "qkeras": Frontend("qkeras", "QKeras (.h5 or a SavedModel folder; runs in the QKeras environment, `make qkeras`)",
                       (".h5", ".hdf5"), _lazy("qkeras", "files"), _lazy("qkeras", "load"), _lazy("qkeras", "execute"),
                       "QKeras predict (TensorFlow 2.21, tf-keras, QKeras 0.9.0; quantizers without the STE)"),
    "hgq2": Frontend("hgq2", "HGQ2 (a Keras 3 .keras file; run on the torch backend)", (".keras",),
                     _lazy("hgq2", "files"), _lazy("hgq2", "load"), _lazy("hgq2", "execute"),
                     "Keras 3 forward pass (HGQ2 0.2.0, torch backend)"),
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

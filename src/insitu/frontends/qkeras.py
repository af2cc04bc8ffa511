"""QKeras models from insitu's main environment: the import and the execution run in the QKeras environment
(`make qkeras` creates .venv-qkeras with TensorFlow 2.21, tf-keras 2.21 and QKeras 0.9.0), as a tool under a
timeout; what comes back is framework-free (the IR's quantmodel.json/.npz, an .npz of outputs).

The environment is `$INSITU_QKERAS_PYTHON`, else `.venv-qkeras/bin/python` in the project's folder.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from insitu.errors import ModelImportError
from insitu.ir.model import QuantModel
from insitu.toolexec import run_tool

TIMEOUT_S = 900
_SRC = Path(__file__).resolve().parents[2]  # the folder holding the insitu package (src/)
INSTALL = "run `make qkeras` (a separate environment with TensorFlow 2.21 + tf-keras + QKeras 0.9.0, about 2.4 GB)"


def qkeras_python() -> Path:
    env = os.environ.get("INSITU_QKERAS_PYTHON")
    path = Path(env) if env else _SRC.parent / ".venv-qkeras" / "bin" / "python"
    if not path.exists():
        raise ModelImportError(f"QKeras models need the QKeras environment, which is not installed ({path} is missing)",
                               INSTALL)
    return path


def files(path: Path) -> list[Path]:
    if not path.exists():
        raise ModelImportError(f"model file {path} does not exist", "pass a QKeras .h5 file or SavedModel folder")
    if path.is_file() and path.suffix.lower() in (".h5", ".hdf5"):
        with open(path, "rb") as fh:
            if fh.read(8) != b"\x89HDF\r\n\x1a\n":
                raise ModelImportError(f"{path} is not an HDF5 file (not a Keras .h5 model, or truncated)",
                                       "save the model again with model.save('model.h5')")
        _no_code(path)
    elif path.is_dir() and not (path / "saved_model.pb").exists():
        raise ModelImportError(f"{path} is a folder without saved_model.pb", "pass a Keras SavedModel folder")
    elif path.is_dir():
        meta = path / "keras_metadata.pb"  # the layers' configs, as JSON inside
        blob = meta.read_bytes() if meta.exists() else b""
        if any(f'"class_name": "{c}"'.encode() in blob for c in ("Lambda", "TFOpLambda")):
            raise ModelImportError(f"{path} holds a Lambda layer: loading it would run its stored Python code",
                                   "replace the Lambda by a layer insitu supports (docs/frontends.md)")
    return [path]


def _no_code(path: Path) -> None:
    """Keras 2's .h5 loader runs the Python bytecode of Lambda layers: refuse them before anything loads."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            cfg = f.attrs.get("model_config")
    except OSError as exc:
        raise ModelImportError(f"cannot read {path} as HDF5: {exc}", "save the model again (truncated?)") from None
    if cfg is None:
        raise ModelImportError(f"{path} has no model_config (weights only?)", "save the whole model: model.save()")
    try:
        tree = json.loads(cfg.decode() if isinstance(cfg, bytes) else str(cfg))
    except json.JSONDecodeError:
        raise ModelImportError(f"{path}: its model_config is not JSON", "save the model again") from None

    def names(node):
        if isinstance(node, dict):
            yield node.get("class_name")
            for v in node.values():
                yield from names(v)
        elif isinstance(node, list):
            for v in node:
                yield from names(v)

    if {"Lambda", "TFOpLambda"} & set(names(tree)):
        raise ModelImportError(f"{path} holds a Lambda layer: loading it would run its stored Python code",
                               "replace the Lambda by a layer insitu supports (docs/frontends.md)")


def _run(args: list[str], work: Path) -> None:
    log = work / "qkeras.log"
    env = {"PYTHONPATH": str(_SRC), "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
           "KERAS_BACKEND": "tensorflow",  # the QKeras environment's own (insitu's process runs Keras on torch)
           "TF_ENABLE_ONEDNN_OPTS": "0", "CUDA_VISIBLE_DEVICES": ""}
    res = run_tool([str(qkeras_python()), "-m", "insitu.frontends.qkeras_export", *args], work, log, TIMEOUT_S,
                   check=False, env=env)
    if res.returncode == 3:  # a ModelImportError inside: its problem and fix, as JSON on the last line
        for line in reversed(log.read_text(errors="replace").splitlines()):
            if line.startswith("{"):
                d = json.loads(line)
                raise ModelImportError(d["problem"], d["fix"])
    if res.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise ModelImportError(f"the QKeras environment failed (exit {res.returncode}; log {log}):\n{tail}",
                               f"check that it works: {qkeras_python()} -c 'import qkeras'; else {INSTALL}")


def load(path: Path, class_names: list[str] | None) -> QuantModel:
    with tempfile.TemporaryDirectory(prefix="insitu-qkeras-") as tmp:
        _run(["import", str(Path(path).resolve()), str(Path(tmp) / "ir")], Path(tmp))
        qm = QuantModel.load(Path(tmp) / "ir")
    if class_names:
        qm.class_names = list(class_names)
    return qm


def execute(path: Path, x: np.ndarray) -> np.ndarray:
    with tempfile.TemporaryDirectory(prefix="insitu-qkeras-") as tmp:
        np.savez(Path(tmp) / "x.npz", x=np.asarray(x, np.float32))
        _run(["predict", str(Path(path).resolve()), str(Path(tmp) / "x.npz"), str(Path(tmp) / "y.npz")], Path(tmp))
        with np.load(Path(tmp) / "y.npz", allow_pickle=False) as z:
            return z["y"].astype(np.float64)

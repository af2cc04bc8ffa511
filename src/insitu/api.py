"""The Python entry points for a user's own model: import it, then compile it to verified firmware.

    qm = insitu.from_qonnx("model.onnx")      # or from_keras("model.keras" | "model.h5"), from_brevitas(module, shape)
    report = insitu.compile(qm, out="runs/mine", board="ulx3s-85f")

`compile` runs the resumable steps of `insitu compile` (import, check, hls, rtl, rtlsim, firmware, report) in
`out` and returns report.json as a dict; any stage that is not bit-exact raises MismatchError. Like the CLI,
this module sits on top of the steps; library code does not import it.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from insitu.config import build_config, deep_merge, overrides_to_dict
from insitu.errors import InsituError, ModelImportError
from insitu.frontends import detect_format
from insitu.frontends.qonnx_import import from_qonnx as _from_qonnx
from insitu.ir.model import QuantModel
from insitu.rundir import RunDir, atomic_savez


def from_qonnx(path: str | Path, class_names: list[str] | None = None) -> QuantModel:
    qm = _from_qonnx(path, class_names)
    qm.meta["source"]["path"] = str(Path(path).resolve())
    return qm


def from_keras(path: str | Path, class_names: list[str] | None = None) -> QuantModel:
    """An HGQ2 model (`.keras`, Keras 3 on the torch backend) or a QKeras one (`.h5` / SavedModel, read in the
    QKeras environment: `make qkeras`)."""
    path = Path(path)
    fe = detect_format(path)
    if fe.name not in ("hgq2", "qkeras"):
        raise ModelImportError(f"{path} is not a Keras model ({fe.describe})", "use insitu.from_qonnx for .onnx files")
    fe.files(path)
    qm = fe.load(path, class_names)
    qm.meta["source"]["path"] = str(path.resolve())
    return qm


def from_brevitas(module, input_shape: tuple[int, ...], path: str | Path | None = None, dynamo: bool = False,
                  class_names: list[str] | None = None) -> QuantModel:
    """Export a Brevitas module with Brevitas' own QONNX exporter (TorchScript, or dynamo=True) to `path`
    (a temporary folder when None), then import that file."""
    out = _export_brevitas(module, input_shape, path, dynamo)
    qm = from_qonnx(out, class_names)
    qm.meta["source"].update(framework="brevitas", module=type(module).__name__, dynamo=dynamo)
    return qm


def _export_brevitas(module, input_shape: tuple[int, ...], path: str | Path | None, dynamo: bool) -> Path:
    import torch
    from brevitas.export import export_qonnx

    out = Path(path) if path else Path(tempfile.mkdtemp(prefix="insitu-brevitas-")) / "model.onnx"
    out.parent.mkdir(parents=True, exist_ok=True)
    module = module.cpu().eval()
    try:
        export_qonnx(module, input_t=torch.zeros(1, *input_shape), export_path=str(out), dynamo=dynamo)
    except Exception as exc:  # noqa: BLE001 - Brevitas and torch.onnx raise many kinds
        raise ModelImportError(f"Brevitas could not export {type(module).__name__} to QONNX: "
                               f"{type(exc).__name__}: {exc}", "check that the module runs on an input of shape "
                               f"(1, {', '.join(map(str, input_shape))}) and uses Brevitas quant layers") from None
    return out


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        for f in sorted(p.rglob("*")) if p.is_dir() else [p]:
            if f.is_file():
                h.update(f.name.encode())
                h.update(f.read_bytes())
    return h.hexdigest()[:16]


def compile_config(model_path: Path, inputs: str | Path | None, board: str | None, lanes: int | None,
                   sets: list[str] | None, fmt: str = "auto", seed: int = 0, n_random: int | None = None,
                   class_names: list[str] | None = None):
    """The RunConfig of a compile run (the model and inputs named by path and content hash)."""
    fe = detect_format(model_path, fmt)
    comp: dict[str, Any] = {"model": str(model_path.resolve()), "format": fe.name,
                            "model_sha256": _digest(fe.files(model_path))}
    if inputs is not None:
        if not Path(inputs).is_file():
            raise InsituError(f"inputs file {inputs} does not exist", "pass an .npz file with key x")
        comp.update(inputs=str(Path(inputs).resolve()), inputs_sha256=_digest([Path(inputs)]))
    if n_random is not None:
        comp["n_random"] = n_random
    if class_names:
        comp["class_names"] = list(class_names)
    over: dict[str, Any] = {"compile": comp, "seed": seed}
    if board:
        over["firmware"] = {"enabled": True, "board": board}
    if lanes:
        over["rtl"] = {"lanes": lanes}
    over = deep_merge(over, overrides_to_dict(sets or []))
    return build_config("default", over, app="compile")


def compile_section(model_path: Path, inputs: Path | None) -> dict[str, Any]:
    """The `compile` section of a run that compiles this model file (for a model sweep)."""
    return compile_config(Path(model_path), inputs, None, None, None).compile.model_dump(mode="json")


def compile(model: QuantModel | str | Path | Any, out: str | Path, inputs: str | Path | np.ndarray | None = None,
            board: str | None = None, lanes: int | None = None, sets: list[str] | None = None,
            input_shape: tuple[int, ...] | None = None, seed: int = 0, jobs: int = 3) -> dict:
    """Run the compile steps in `out` and return report.json. `model` is a model file, a QuantModel from
    from_qonnx / from_brevitas, or a Brevitas module (then `input_shape` is needed and the check also compares
    with the module's own forward pass). `inputs`: an .npz path with key x, or an array."""
    import json

    from insitu.pipeline import run_steps
    from insitu.steps import COMPILE_STEPS

    run = RunDir(Path(out))
    module = None
    if isinstance(model, QuantModel):
        src = model.meta.get("source", {}).get("path")
        if not src or not Path(src).exists():
            raise InsituError("this QuantModel does not name the file it was imported from",
                              "pass the model file itself, or import it with insitu.from_qonnx")
        model_path = Path(src)
    elif isinstance(model, (str, Path)):
        model_path = Path(model)
    else:
        if input_shape is None:
            raise InsituError("a module needs its input shape", "pass input_shape=(C, H, W) without the batch")
        module = model
        model_path = _export_brevitas(module, input_shape, run.path("brevitas", "model.onnx"), False)
    if isinstance(inputs, np.ndarray):
        atomic_savez(run.path("inputs", "inputs.npz"), x=inputs)
        inputs = run.path("inputs", "inputs.npz")
    if module is not None and inputs is None:
        qm = _from_qonnx(model_path)
        from insitu.frontends.execute import input_quant

        x = input_quant(qm).random(512, tuple(qm.input.shape), seed)
        atomic_savez(run.path("inputs", "inputs.npz"), x=x)
        inputs = run.path("inputs", "inputs.npz")
    cfg = compile_config(model_path, inputs, board, lanes, sets, seed=seed)
    if module is not None:
        _brevitas_outputs(module, Path(inputs), run)
    run_steps(COMPILE_STEPS, cfg, run, jobs=jobs)
    return json.loads(run.path("report.json").read_text())


def _brevitas_outputs(module, inputs: Path, run: RunDir) -> None:
    """The module's own forward pass on the inputs (float32, as Brevitas runs), for the check step."""
    import torch

    from insitu.frontends.inputs import load_inputs

    with np.load(inputs, allow_pickle=False) as z:
        shape = tuple(z["x"].shape[1:])
    x = load_inputs(inputs, shape)
    with torch.no_grad():
        y = module.cpu().eval()(torch.from_numpy(x.astype(np.float32)))
    y = getattr(y, "value", y)  # a QuantTensor
    atomic_savez(run.path("brevitas", "outputs.npz"), y=y.detach().numpy().astype(np.float64),
                 inputs_sha256=np.asarray(_digest([inputs])))


def export_finn(run_dir: str | Path, board: str | None = None, clock_mhz: float = 100.0) -> dict:
    """Write RUN/finn, the FINN handoff of a cells run's exported student (insitu.firmware.finn): the student
    must have been trained with student.act_rounding = "half_up". Returns finn.json."""
    from insitu.boards import get_board
    from insitu.config import load_config
    from insitu.firmware.finn import handoff
    from insitu.sim.vectors import load_vectors

    run = Path(run_dir)
    qonnx, vectors = run / "export" / "student.qonnx.onnx", run / "export" / "vectors.npz"
    if not (run / "config.json").exists() or not qonnx.exists() or not vectors.exists():
        raise InsituError(f"{run} has no exported student (export/student.qonnx.onnx, export/vectors.npz)",
                          f"run `insitu export --out {run}` first")
    cfg = load_config(run / "config.json")
    if cfg.app != "cells":
        raise InsituError(f"the FINN handoff takes the cells student; {run} is a {cfg.app} run",
                          "hand a compiled model's own QONNX file to FINN directly")
    v = load_vectors(vectors)
    return handoff(qonnx, v.images, v.expected, v.output_frac, get_board(board or cfg.firmware.board),
                   clock_mhz, cfg.rtl.lanes, run / "finn")

"""Steps of `insitu compile`: `import` (the user's model -> IR, the inputs -> codes and reference outputs) and
`check` (the IR reference against the source framework's own execution, bit for bit, on every input).

The model's files are copied into DIR/source/ first, so the run stays reproducible when the original moves; the
hls / rtl / rtlsim / firmware steps that follow are the built-in applications' own.
"""

from __future__ import annotations

import json
import shutil

import numpy as np

from insitu.config import RunConfig
from insitu.errors import MismatchError
from insitu.frontends import detect_format
from insitu.frontends.execute import input_quant, reference_outputs
from insitu.frontends.inputs import load_inputs
from insitu.pipeline import StepResult
from insitu.rundir import RunDir, atomic_write_json
from insitu.sim.compare import first_mismatches
from insitu.sim.vectors import save_vectors

SHOWN_MISMATCHES = 5


def _source(cfg: RunConfig, run: RunDir):
    from pathlib import Path

    src = Path(cfg.compile.model)
    fe = detect_format(src, cfg.compile.format)
    return src, fe


def run_import(cfg: RunConfig, run: RunDir) -> StepResult:
    src, fe = _source(cfg, run)
    files = fe.files(src)
    folder = run.path("source")
    staging = run.path(".source-staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for f in files:  # a SavedModel is a folder
        (shutil.copytree if f.is_dir() else shutil.copy2)(f, staging / f.name)
    qm = fe.load(staging / files[0].name, cfg.compile.class_names)  # a model that fails leaves the run as it was
    layout = qm.meta.get("input_layout")  # a channels-last framework: its shape, and the axes into the IR's
    shape = tuple(layout["shape"]) if layout else tuple(qm.input.shape)
    iq = input_quant(qm)
    if cfg.compile.inputs:
        x, given = load_inputs(cfg.compile.inputs, shape), cfg.compile.inputs
    else:
        x, given = iq.random(cfg.compile.n_random, shape, cfg.seed), f"{cfg.compile.n_random} seeded random inputs"
    codes, ref = reference_outputs(qm, x.transpose(layout["to_ir"]) if layout else x)
    shutil.rmtree(folder, ignore_errors=True)
    staging.replace(folder)
    model_path = folder / files[0].name
    frac = qm.output_type.frac
    out = run.path("export")
    outputs = qm.save(out)
    flat = ref.reshape(len(ref), -1)
    labels = flat.argmax(1) if flat.shape[1] > 1 else np.zeros(len(flat), np.int64)
    if iq.bits <= 8:  # the codes as the board receives them: one byte each
        codes = codes.astype(np.int8 if iq.signed else np.uint8)
    outputs.append(save_vectors(out / "vectors.npz", codes, labels, flat, frac, x=x,
                                y=flat.astype(np.float64) * 2.0 ** -frac))
    layers: dict[str, int] = {}
    for layer in qm.layers:
        layers[layer.kind] = layers.get(layer.kind, 0) + 1
    summary = {"format": fe.name, "source": str(src), "model_file": model_path.name, "layers": len(qm.layers),
               "layer_kinds": layers, "params": qm.n_params(), "input_shape": list(shape),
               "ir_input_shape": list(qm.input.shape),
               "input_quant": iq.to_dict(), "output_type": qm.output_type.hls(), "inputs": given, "vectors": len(x)}
    atomic_write_json(out / "import.json", summary)
    outputs.append(out / "import.json")
    return StepResult([*outputs, *sorted(p for p in folder.rglob("*") if p.is_file())], {"import": summary})


def run_check(cfg: RunConfig, run: RunDir) -> StepResult:
    """The reference against the source framework on every input; also against Brevitas' forward pass when the
    model came from a module (`insitu.compile(module, ...)` writes brevitas/outputs.npz for these inputs)."""
    imp = json.loads(run.path("export", "import.json").read_text())
    _, fe = _source(cfg, run)
    with np.load(run.path("export", "vectors.npz"), allow_pickle=False) as z:
        x, y = z["x"], z["y"]
    against = {fe.executor: fe.execute(run.path("source", imp["model_file"]), x)}
    extra = run.path("brevitas", "outputs.npz")
    if extra.exists():
        with np.load(extra, allow_pickle=False) as z:
            if str(z["inputs_sha256"]) == cfg.compile.inputs_sha256:
                against["Brevitas forward (float32)"] = z["y"].reshape(len(x), -1).astype(np.float64)
    result = {"vectors": int(len(x)), "against": {}}
    for name, got in against.items():
        ok = np.all(got == y, axis=1) if got.shape == y.shape else np.zeros(len(y), bool)
        result["against"][name] = {"vectors": int(len(x)), "bit_exact_vectors": int(ok.sum())}
        if not ok.all():
            shown = first_mismatches(y, got, "reference", name, SHOWN_MISMATCHES) if got.shape == y.shape else \
                f"  output shapes differ: reference {y.shape}, {name} {got.shape}"
            raise MismatchError(f"the IR reference differs from {name} on {int((~ok).sum())} of {len(x)} inputs:\n"
                                f"{shown}", "a model computed in float32 beyond 24 bits of mantissa can round in "
                                "the framework; otherwise this is a bug in the importer: please report it")
    result["bit_exact_vectors"] = min(r["bit_exact_vectors"] for r in result["against"].values())
    path = run.path("check", "check.json")
    atomic_write_json(path, result)
    return StepResult([path], {"reference": result})



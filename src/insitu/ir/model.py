"""QuantModel: the typed, framework-free description of a fixed-point network.

Layers are plain dataclasses holding integer weights and the fixed-point type of their output. Tensor
layout is channel-first (C,H,W) and Flatten is channel-major, as in PyTorch. Frontends (Brevitas export)
produce a QuantModel; every backend (integer reference, hls4ml, RTL) consumes it. Saved as
`quantmodel.json` (structure and types) + `quantmodel.npz` (integer weights).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from insitu.data.npz import load_arrays
from insitu.errors import ExportError, InsituError
from insitu.ir.fixed import FixedType
from insitu.rundir import atomic_savez, atomic_write_json

IR_VERSION = 1


@dataclass
class Input:
    name: str
    shape: tuple[int, int, int]
    out_type: FixedType
    kind: str = "input"


@dataclass
class Conv2D:
    name: str
    weight: np.ndarray  # (O, C, K, K) int
    bias: np.ndarray  # (O,) int at out_type.frac
    weight_type: FixedType
    out_type: FixedType  # exact accumulator
    kind: str = "conv2d"


@dataclass
class Requant:
    """Optional ReLU, then cast to out_type (its rounding and saturation)."""

    name: str
    relu: bool
    out_type: FixedType
    kind: str = "requant"


@dataclass
class MaxPool2D:
    name: str
    size: int
    kind: str = "maxpool2d"


@dataclass
class Flatten:
    name: str
    kind: str = "flatten"


@dataclass
class Dense:
    name: str
    weight: np.ndarray  # (O, I) int
    bias: np.ndarray  # (O,) int at out_type.frac
    weight_type: FixedType
    out_type: FixedType
    kind: str = "dense"


Layer = Input | Conv2D | Requant | MaxPool2D | Flatten | Dense
LAYER_TYPES: dict[str, type] = {c.kind: c for c in (Input, Conv2D, Requant, MaxPool2D, Flatten, Dense)}  # type: ignore[attr-defined]


@dataclass
class QuantModel:
    layers: list[Layer]
    class_names: list[str]
    meta: dict = field(default_factory=dict)

    @property
    def input(self) -> Input:
        first = self.layers[0]
        assert isinstance(first, Input)
        return first

    @property
    def output_type(self) -> FixedType:
        return self.tensor_types()[-1]

    def tensor_types(self) -> list[FixedType]:
        """Type of each layer's output (pool/flatten keep their input's type)."""
        out: list[FixedType] = []
        for layer in self.layers:
            t = getattr(layer, "out_type", None)
            out.append(t if t is not None else out[-1])
        return out

    def shapes(self) -> list[tuple[int, ...]]:
        shape: tuple[int, ...] = self.input.shape
        out = []
        for layer in self.layers:
            if isinstance(layer, Conv2D):
                o, c, k, _ = layer.weight.shape
                if shape[0] != c:
                    raise ExportError(f"{layer.name}: expects {c} channels, gets {shape[0]}", "rebuild the IR")
                shape = (o, shape[1] - k + 1, shape[2] - k + 1)
            elif isinstance(layer, MaxPool2D):
                shape = (shape[0], shape[1] // layer.size, shape[2] // layer.size)
            elif isinstance(layer, Flatten):
                shape = (int(np.prod(shape)),)
            elif isinstance(layer, Dense):
                if shape != (layer.weight.shape[1],):
                    raise ExportError(f"{layer.name}: expects {layer.weight.shape[1]} inputs, gets {shape}",
                                      "rebuild the IR")
                shape = (layer.weight.shape[0],)
            out.append(shape)
        return out

    def n_params(self) -> int:
        return sum(int(l.weight.size + l.bias.size) for l in self.layers if isinstance(l, (Conv2D, Dense)))

    # serialisation --------------------------------------------------------------------------------------
    def save(self, folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        arrays, layers = {}, []
        for layer in self.layers:
            d = {}
            for k, v in vars(layer).items():
                if isinstance(v, np.ndarray):
                    arrays[f"{layer.name}.{k}"] = v.astype(np.int64)
                    d[k] = f"@{layer.name}.{k}"
                elif isinstance(v, FixedType):
                    d[k] = v.to_dict()
                else:
                    d[k] = list(v) if isinstance(v, tuple) else v
            layers.append(d)
        doc = {"ir_version": IR_VERSION, "class_names": self.class_names, "meta": self.meta, "layers": layers,
               "tensor_types": [t.hls() for t in self.tensor_types()]}
        atomic_savez(folder / "quantmodel.npz", **arrays)
        atomic_write_json(folder / "quantmodel.json", doc)
        return [folder / "quantmodel.json", folder / "quantmodel.npz"]

    @classmethod
    def load(cls, folder: Path) -> QuantModel:
        fix = "re-run `insitu export`"
        try:
            doc = json.loads((folder / "quantmodel.json").read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise ExportError(f"cannot read {folder / 'quantmodel.json'}: {exc}", fix) from None
        try:
            arrays = load_arrays(folder / "quantmodel.npz", "QuantModel weights", fix)
        except InsituError as exc:
            raise ExportError(exc.problem, exc.fix) from None
        if not isinstance(doc, dict) or doc.get("ir_version") != IR_VERSION:
            doc = doc if isinstance(doc, dict) else {}
            raise ExportError(f"{folder / 'quantmodel.json'} holds IR version {doc.get('ir_version')}, this insitu "
                              f"reads {IR_VERSION}", "re-run `insitu export`")
        try:
            layers = []
            for d in doc["layers"]:
                kw = {}
                for k, v in d.items():
                    if isinstance(v, str) and v.startswith("@"):
                        kw[k] = arrays[v[1:]]
                    elif isinstance(v, dict) and "signed" in v:
                        kw[k] = FixedType.from_dict(v)
                    else:
                        kw[k] = tuple(v) if k == "shape" else v
                layers.append(LAYER_TYPES[d["kind"]](**kw))
            return cls(layers, list(doc["class_names"]), doc.get("meta", {}))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ExportError(f"the QuantModel in {folder} (quantmodel.json with quantmodel.npz) is damaged or "
                              f"incomplete ({type(exc).__name__}: {exc})", fix) from None

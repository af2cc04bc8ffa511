"""QuantModel: the typed, framework-free description of a fixed-point network.

A graph of layers (`ir/layers.py`: plain dataclasses holding integer weights and fixed-point types), stored in
topological order, the last layer being the output; `ir/graph.py` validates it and infers every tensor's shape
and type. Frontends (Brevitas export) produce a QuantModel; every backend (integer reference, hls4ml, RTL)
consumes it, or refuses a kind by name (`ir/support.py`). Saved as `quantmodel.json` (structure and types) +
`quantmodel.npz` (integer weights).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from insitu.data.npz import load_arrays
from insitu.errors import ExportError, InsituError
from insitu.ir import graph
from insitu.ir.fixed import FixedType
from insitu.ir.layers import (LAYER_TYPES, Add, AvgPool1D, AvgPool2D, Concatenate, Conv1D, Conv2D,  # noqa: F401
                              Dense, Flatten, GlobalAvgPool, GlobalMaxPool, Input, Layer, MaxPool1D, MaxPool2D,
                              Requant, Reshape, ScaleShift)
from insitu.rundir import atomic_savez, atomic_write_json

#: 2: layers name their inputs (a graph), and the layer set of docs/ir.md. Version-1 files are refused.
IR_VERSION = 2


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
        """Type of each layer's output, in layer order."""
        return graph.infer(self.layers)[1]

    def shapes(self) -> list[tuple[int, ...]]:
        """Shape of each layer's output, in layer order (validates the graph)."""
        return graph.infer(self.layers)[0]

    def validate(self, max_acc_bits: int = graph.MAX_ACC_BITS) -> None:
        """Raise ExportError naming the first layer that is not well formed."""
        graph.infer(self.layers, max_acc_bits)

    def inputs_of(self) -> dict[str, tuple[str, ...]]:
        """Every layer's input names, resolved (a layer without `inputs` reads the one before it)."""
        return dict(zip((l.name for l in self.layers), graph.resolved_inputs(self.layers)))

    def is_sequence(self) -> bool:
        """True when every layer reads exactly the layer before it (the common, chain-shaped model)."""
        ins = graph.resolved_inputs(self.layers)
        return all(srcs == (self.layers[i - 1].name,) for i, srcs in enumerate(ins) if i)

    def n_params(self) -> int:
        total = 0
        for l in self.layers:
            if isinstance(l, (Conv2D, Conv1D, Dense)):
                total += int(l.weight.size + l.bias.size)
            elif isinstance(l, ScaleShift):
                total += int(l.scale.size + l.shift.size)
        return total

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
                              f"reads version {IR_VERSION} (layers that name their inputs)",
                              "re-export it with this insitu (`insitu export --out RUN` for a run directory)")
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
                        kw[k] = tuple(v) if isinstance(v, list) else v
                if d.get("kind") not in LAYER_TYPES:
                    raise ExportError(f"{folder / 'quantmodel.json'}: unknown layer kind {d.get('kind')!r}",
                                      f"known kinds: {', '.join(LAYER_TYPES)}")
                layers.append(LAYER_TYPES[d["kind"]](**kw))
            qm = cls(layers, list(doc["class_names"]), doc.get("meta", {}))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ExportError(f"the QuantModel in {folder} (quantmodel.json with quantmodel.npz) is damaged or "
                              f"incomplete ({type(exc).__name__}: {exc})", fix) from None
        try:
            qm.validate()
        except ExportError as exc:  # the structure, or weights that no longer fit it
            raise ExportError(f"the QuantModel in {folder} (quantmodel.json with quantmodel.npz): {exc.problem}",
                              exc.fix) from None
        except (TypeError, ValueError, IndexError, AttributeError) as exc:  # fields of the wrong type
            raise ExportError(f"the QuantModel in {folder} (quantmodel.json with quantmodel.npz) is damaged "
                              f"({type(exc).__name__}: {exc})", fix) from None
        return qm

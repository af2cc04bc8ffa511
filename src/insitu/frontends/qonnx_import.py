"""QONNX -> QuantModel IR: `from_qonnx(path)`.

The walk visits the cleaned graph's nodes in order and keeps, for every ONNX tensor, what it is in fixed point:
- a constant (`Const`): an initializer, or a Quant node applied to one (weights, biases), evaluated with qonnx's
  own `int_quant`;
- an activation (`Act`): an IR tensor whose float value is exactly its integer times 2**-frac.
Each op handler (`qonnx_ops.OPS`, the registry: an op that is not in it is refused by name) turns its node into
IR layers or refuses it with the node's name, op type and attribute. An op whose float result has no exact
fixed-point value (a division by 9, a non-power-of-two scale, a float batch norm) is refused unless a quantizer
turns it into one in a way the IR computes exactly (see docs/frontends.md, "What is exact").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from insitu.errors import ModelImportError
from insitu.frontends.inputs import InputQuant
from insitu.ir import graph
from insitu.ir.fixed import FixedType
from insitu.ir.layers import Layer
from insitu.ir.model import QuantModel
from insitu.ir.simplify import simplify

SUPPORT_DOC = "docs/frontends.md"


@dataclass
class Const:
    value: np.ndarray  # float64
    frac: int | None = None  # a Quant node's power-of-two grid (the finest over channels), None when raw


@dataclass
class Act:
    ir: str  # IR tensor name
    shape: tuple[int, ...]  # ONNX shape without the batch axis
    ir_shape: tuple[int, ...]  # the IR tensor's shape (global pooling drops the 1x1 axes ONNX keeps)
    relu: bool = False  # a ReLU seen but not yet applied (it merges into the next quantizer)


@dataclass
class Walk:
    model: object  # qonnx ModelWrapper
    path: str
    layers: list[Layer] = field(default_factory=list)
    tensors: dict[str, Const | Act] = field(default_factory=dict)
    input_name: str = ""
    input_quant: InputQuant | None = None
    count: int = 0

    # --- naming, types ------------------------------------------------------------------------------------
    def new_name(self, node, suffix: str = "") -> str:
        self.count += 1
        base = "".join(c if c.isalnum() or c == "_" else "_" for c in (node.name or node.op_type)).lower()
        base = base if base[:1].isalpha() else f"n_{base}"  # hls4ml lower-cases names; Verilog needs a letter
        return f"{base}{suffix}" if not any(l.name == f"{base}{suffix}" for l in self.layers) else \
            f"{base}{suffix}_{self.count}"

    def type_of(self, ir: str) -> FixedType:
        shapes, types = graph.infer(self.layers, partial=True)
        return types[[l.name for l in self.layers].index(ir)]

    def add(self, layer: Layer, srcs: list[str]) -> str:
        layer.inputs = tuple(srcs)
        self.layers.append(layer)
        try:
            graph.infer(self.layers, partial=True)
        except Exception as exc:  # an ExportError naming the layer: say which node it came from
            self.layers.pop()
            raise ModelImportError(f"{self.path}: {exc}", "see " + SUPPORT_DOC) from None
        return layer.name

    def ir_shape(self, ir: str) -> tuple[int, ...]:
        shapes, _ = graph.infer(self.layers, partial=True)
        return shapes[[l.name for l in self.layers].index(ir)]

    # --- errors -------------------------------------------------------------------------------------------
    def refuse(self, node, what: str, fix: str = "") -> ModelImportError:
        return ModelImportError(f"{self.path}: node {node.name!r} ({node.op_type}): {what}",
                                fix or f"the supported ops and attributes are listed in {SUPPORT_DOC}")

    # --- access -------------------------------------------------------------------------------------------
    def const(self, node, name: str, what: str) -> Const:
        t = self.get(node, name)
        if not isinstance(t, Const):
            raise self.refuse(node, f"its {what} ({name!r}) is computed at run time; insitu needs it constant")
        return t

    def act(self, node, name: str) -> Act:
        t = self.get(node, name)
        if isinstance(t, Const):
            raise self.refuse(node, f"its input {name!r} is a constant; a layer must read an activation")
        if t.ir == "":
            raise self.refuse(node, "reads the model input directly, without a quantizer",
                              "put an input quantizer first (Brevitas: QuantIdentity; QONNX: a Quant node on "
                              "the input): fixed point needs the input's integer codes")
        return t

    def get(self, node, name: str) -> Const | Act:
        if name in self.tensors:
            return self.tensors[name]
        init = self.model.get_initializer(name)
        if init is None:
            raise self.refuse(node, f"reads {name!r}, which no earlier node produces")
        c = Const(np.asarray(init, dtype=np.float64))
        self.tensors[name] = c
        return c

    def attrs(self, node) -> dict:
        return node_attrs(node)


def node_attrs(node) -> dict:
    """An ONNX node's attributes as Python values (strings decoded)."""
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def _onnx_shape(model, name: str) -> tuple[int, ...]:
    shape = model.get_tensor_shape(name)
    if shape is None:
        raise ModelImportError(f"the shape of {name!r} is unknown", "export the model with a fixed input shape")
    return tuple(int(s) for s in shape)


def from_qonnx(path: str | Path, class_names: list[str] | None = None) -> QuantModel:
    """The QuantModel of a QONNX file (Quant / Trunc nodes, power-of-two scales). Raises ModelImportError naming
    the node for anything it cannot describe exactly."""
    from insitu.frontends.onnx_file import load_qonnx
    from insitu.frontends.qonnx_ops import OPS, finish_output

    path = Path(path)
    model = load_qonnx(path)
    walk = Walk(model, str(path))
    inp = model.graph.input[0].name
    in_shape = _onnx_shape(model, inp)
    if len(in_shape) < 2:
        raise ModelImportError(f"{path}: the input {inp!r} has shape {in_shape}; expected (batch, ...)",
                               "export with a batch axis first, e.g. input_t=torch.zeros(1, C, H, W)")
    walk.input_name = inp
    walk.tensors[inp] = Act("", in_shape[1:], in_shape[1:])
    for node in model.graph.node:
        handler = OPS.get(node.op_type)
        if handler is None:
            raise walk.refuse(node, f"op type {node.op_type!r} is not supported "
                                    f"(supported: {', '.join(sorted(OPS))})")
        handler(walk, node)
    out = finish_output(walk, model.graph.output[0].name)
    n_out = int(np.prod(walk.ir_shape(out)))
    names = class_names or [f"out{i}" for i in range(n_out)]
    meta = {"source": {"format": "qonnx", "file": path.name},
            "input_quant": walk.input_quant.to_dict() if walk.input_quant else None}
    return simplify(QuantModel(list(walk.layers), names, meta))

"""The streaming architecture: an AXI4-Stream image in, class scores and the decision out.

    s_axis (P pixels/beat) -> [pad] -> block 0 (P lanes) -> FIFO + serializer -> ([FIFO + pad] -> block k)...
        -> flatten + dense (streaming accumulation) or global average + dense kernel -> argmax -> result FIFO

`stream_plan` splits the IR into convolution blocks (`conv_block`, with a pad stage `pad_stream` when the
convolution is zero-padded), joins (residual adds, concatenations) and the tail; `stream_top` wires them with
their elastic joints. Nothing inside a
block ever stalls; `s_tready` falls only while a FIFO downstream is close to full and at the start of an image
when every result slot is already promised, so a result never waits for anything but `m_ready`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from insitu.errors import RTLError
from insitu.ir import support
from insitu.ir.fixed import FixedType
from insitu.ir.graph import dense_weight
from insitu.ir.layers import GlobalAvgPool, GlobalMaxPool
from insitu.ir.model import Dense, QuantModel
from insitu.rtl import conv_block, dense_stream, gap_stream, stream_plan, stream_top
from insitu.rtl.kernel import Kernel, make_kernel

RESULT_DEPTH = stream_top.RESULT_DEPTH


@dataclass
class StreamDesign:
    """What the simulation, the shell and the report need to know about the generated core."""

    top: str
    lanes: int
    pixel_bits: int
    height: int
    width: int
    n_classes: int
    score_type: FixedType
    files: list[Path] = field(default_factory=list)
    kernels: list[dict] = field(default_factory=list)
    pipeline_cycles: int = 0
    architecture: str = "streaming"
    block_lanes: list[int] = field(default_factory=list)  # pixels per clock of each convolution block
    multipliers: int = 0  # variable products (the flatten + dense head's); da4ml kernels have none

    @property
    def beats(self) -> int:
        return self.height * self.width // self.lanes

    def to_dict(self) -> dict:
        return {"architecture": self.architecture, "top": self.top, "lanes": self.lanes, "pixel_bits": self.pixel_bits,
                "height": self.height, "width": self.width, "beats_per_image": self.beats,
                "n_classes": self.n_classes, "score_type": self.score_type.to_dict(),
                "files": [p.name for p in self.files], "kernels": self.kernels, "block_lanes": self.block_lanes,
                "multipliers": self.multipliers}


def generate(model: QuantModel, out_dir: Path, lanes: int, latency_cutoff: float, top: str = "insitu_core") -> StreamDesign:
    """Write the Verilog of the streaming core for `model` with `lanes` pixels per clock into out_dir."""
    if lanes < 1:
        raise RTLError(f"lanes={lanes}", "use 1, 2, 4, 8 ...")
    support.require(model, "rtl_streaming", RTLError)
    nodes, last, tail = stream_plan.plan(model, lanes)
    fc, fh, fw, feat_t = last.channels, last.height, last.width, last.type
    out_dir.mkdir(parents=True, exist_ok=True)
    kdir = out_dir
    text, kernels, latency = [], [], 0
    for node in nodes:
        if not isinstance(node, stream_plan.Block):
            continue
        spec, conv = node.spec, node.conv
        weight = dense_weight(conv)  # depthwise: block-diagonal, and the adder graph drops the zeros
        k: Kernel = make_kernel(f"{spec.name}_k", weight.reshape(weight.shape[0], -1), conv.bias,
                                spec.in_type, kdir, latency_cutoff)
        kernels.append(k)
        text.append(conv_block.generate(spec, k))
        latency += spec.latency
    dense: Dense = tail[1]
    rq = (tail[2].relu, tail[2].out_type) if len(tail) == 3 else None
    multipliers = 0
    if isinstance(tail[0], (GlobalAvgPool, GlobalMaxPool)):
        dtext, score_t, k, tail_latency = gap_stream.generate("dense", tail[0], dense, (fh, fw), fc, feat_t,
                                                              feat_t.frac, rq, kdir, latency_cutoff)
        kernels.append(k)
        latency += tail_latency
    else:
        dtext, score_t = dense_stream.generate("dense", dense.weight, dense.bias, (fh, fw), fc,
                                               FixedType(feat_t.signed, feat_t.width, 0), dense.weight_type,
                                               dense.out_type.frac, rq)
        latency += 4
        multipliers = fc * dense.weight.shape[0]
    text.append(dtext)
    n_out = dense.weight.shape[0]
    pb = model.input.out_type.width
    h, w = model.input.shape[1:]
    text.append(stream_top.generate(top, nodes, last, n_out, score_t, lanes, pb, h * w // lanes, text))
    files = [out_dir / f"{top}.v"]
    (out_dir / f"{top}.v").write_text("`timescale 1ns/1ps\n" + "\n".join(text))
    files += [f for k in kernels for f in k.files]
    return StreamDesign(top, lanes, pb, h, w, n_out, score_t, files, [k.to_dict() for k in kernels], latency,
                        block_lanes=[n.spec.lanes for n in nodes if isinstance(n, stream_plan.Block)],
                        multipliers=multipliers)

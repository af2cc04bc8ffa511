"""The FINN handoff: the student's QONNX made ready for FINN's dataflow builder, with its build configuration.

FINN (github.com/Xilinx/finn) builds a dataflow accelerator from a QONNX file. Its first step turns every
activation quantizer (Relu -> Quant) into a MultiThreshold whose thresholds are step/2 + t*step and whose output
is the number of thresholds at or below its input: round half up. insitu's students round half to even unless
trained with `student.act_rounding = "half_up"`, and only such a student is handed off, so FINN's graph computes
what insitu's reference computes. What is checked here, with qonnx's executor on the test images, bit for bit
against the reference:
- `model.onnx` itself: the QONNX with integer inputs (the input quantizer becomes a Mul by its scale and the
  input is annotated UINT8, FINN's convention) and HALF_UP activation quantizers;
- its threshold form: every Relu -> Quant replaced by qonnx's MultiThreshold with FINN's thresholds and a Mul
  by the step, which is what FINN's conversion makes of it.
Not checked here (it needs FINN and Vivado): FINN's streamlining and hardware layers, the folding target_fps
gives, FIFO sizing, synthesis and timing. FINN's own verification steps, configured in the bundle with one test
image and its reference scores, check those on the user's machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from insitu.boards import Board
from insitu.errors import ConfigError, ExportError, MismatchError
from insitu.rundir import atomic_write_json, atomic_write_text

#: insitu board -> (FINN board name, FINN shell flow) for the boards FINN has a shell for; any other AMD board
#: gets the part, and a stitched IP / out-of-context build instead of a bitfile
FINN_BOARDS = {"zcu102": ("ZCU102", "vivado_zynq"), "pynq-z2": ("Pynq-Z2", "vivado_zynq"),
               "alveo-u250": ("U250", "vitis_alveo")}
RETRAIN = ("retrain the student with round-half-up activations: insitu run cells --out RUN "
           "--set student.act_rounding=half_up")


def _node_attr(node, name: str, default: Any = None) -> Any:
    from insitu.frontends.qonnx_import import node_attrs

    return node_attrs(node).get(name, default)


def activation_quants(model) -> list:
    """The Quant nodes on the activation path (not on an initializer: weights and biases are folded by FINN)."""
    return [n for n in model.graph.node if n.op_type == "Quant" and model.get_initializer(n.input[0]) is None]


def integer_input(model) -> int:
    """Replace the quantizer of the graph input by a Mul by its scale (in place); return the scale's frac.
    The input then carries the integer codes, annotated UINT8 / INT8, as FINN's graphs take them."""
    from onnx import helper
    from qonnx.core.datatype import DataType

    iname = model.graph.input[0].name
    q = model.find_consumer(iname)
    if q is None or q.op_type != "Quant" or len(model.find_consumers(iname)) != 1:
        raise ExportError("the QONNX input does not go straight into one input quantizer",
                          "export the student built by insitu (its first module quantizes the input)")
    scale = model.get_initializer(q.input[1])
    bits = int(model.get_initializer(q.input[3]))
    signed = bool(_node_attr(q, "signed", 1))
    frac = -np.log2(float(np.asarray(scale).ravel()[0]))
    if frac != round(frac) or np.asarray(scale).size != 1:
        raise ExportError(f"the input scale {scale} is not one power of two",
                          "export the student built by insitu (its input quantizer's scale is 2^-8)")
    idx = list(model.graph.node).index(q)
    model.graph.node.remove(q)
    sname = model.make_new_valueinfo_name()
    model.set_initializer(sname, np.asarray(scale, dtype=np.float32).reshape(()))
    model.graph.node.insert(idx, helper.make_node("Mul", [iname, sname], [q.output[0]], name="input_scale"))
    model.set_tensor_datatype(iname, DataType[f"{'INT' if signed else 'UINT'}{bits}"])
    return int(round(frac))


def check_rounding(model) -> list[dict]:
    """Every activation quantizer as FINN converts it (after a Relu: unsigned, not narrow, zero point 0) and
    rounding half up; returns their (name, bits, frac)."""
    out = []
    for q in activation_quants(model):
        prev = model.find_producer(q.input[0])
        mode = str(_node_attr(q, "rounding_mode", "ROUND")).upper()
        where = f"activation quantizer {q.name or q.output[0]}"
        if prev is None or prev.op_type != "Relu":
            raise ExportError(f"{where} has no Relu before it ({prev.op_type if prev else 'the input'})",
                              "the FINN handoff takes students whose activations are QuantReLU")
        if mode != "HALF_UP":
            raise ExportError(f"{where} rounds {mode} (half to even); FINN's thresholds round half up, so its "
                              "accelerator would differ from insitu's reference", RETRAIN)
        if _node_attr(q, "signed", 1) or _node_attr(q, "narrow", 0) or np.any(model.get_initializer(q.input[2])):
            raise ExportError(f"{where} is signed, narrow or has a zero point: FINN takes none after a Relu",
                              "use unsigned QuantReLU activations")
        step = float(np.asarray(model.get_initializer(q.input[1])).ravel()[0])
        out.append({"name": q.output[0], "bits": int(model.get_initializer(q.input[3])),
                    "frac": int(round(-np.log2(step)))})
    return out


def threshold_form(model):
    """A copy where every Relu -> Quant is a MultiThreshold with FINN's thresholds (step/2 + t*step, t < 2^b - 1)
    and a Mul by the step: what FINN's ConvertQONNXtoFINN builds, executable by qonnx."""
    from onnx import helper
    from qonnx.core.modelwrapper import ModelWrapper

    m = ModelWrapper(model.model, make_deepcopy=True)
    for q in activation_quants(m):
        relu = m.find_producer(q.input[0])
        step = np.float64(np.asarray(m.get_initializer(q.input[1])).ravel()[0])
        bits = int(m.get_initializer(q.input[3]))
        th = (step / 2 + step * np.arange(2**bits - 1)).astype(np.float32).reshape(1, -1)
        tname, cname, sname = (m.make_new_valueinfo_name() for _ in range(3))
        m.set_initializer(tname, th)
        m.set_initializer(sname, np.asarray(step, dtype=np.float32).reshape(()))
        idx = list(m.graph.node).index(relu)
        mt = helper.make_node("MultiThreshold", [relu.input[0], tname], [cname], domain="qonnx.custom_op.general",
                              out_dtype=f"UINT{bits}", name=f"thresholds_{q.output[0]}")
        mul = helper.make_node("Mul", [cname, sname], [q.output[0]], name=f"step_{q.output[0]}")
        m.graph.node.remove(relu)
        m.graph.node.remove(q)
        m.graph.node.insert(idx, mul)
        m.graph.node.insert(idx, mt)
    return m


def build_config(board: Board, clock_mhz: float, lanes: int, pixels: int) -> dict:
    """FINN's DataflowBuildConfig (JSON): the clock, the board or part, and folding from the lane count:
    insitu's core at P lanes takes pixels/P cycles per image, so target_fps = clock * P / pixels."""
    if board.vendor != "AMD":
        raise ConfigError(f"FINN builds for AMD devices; {board.name} is a {board.vendor} board",
                          "give an AMD board: --board zcu102, pynq-z2, alveo-u250, arty-a7-100t or coaxlink-octo")
    cfg: dict[str, Any] = {
        "output_dir": "output", "synth_clk_period_ns": round(1000.0 / clock_mhz, 4),
        "target_fps": max(1, int(clock_mhz * 1e6 * lanes / pixels)), "folding_two_pass_relaxation": True,
        "auto_fifo_depths": True, "save_intermediate_models": True, "enable_build_pdb_debug": False,
        "verify_steps": ["finn_onnx_python", "streamlined_python", "stitched_ip_rtlsim"],
        "verify_input_npy": "input.npy", "verify_expected_output_npy": "expected_output.npy"}
    if board.name in FINN_BOARDS:
        cfg["board"], cfg["shell_flow_type"] = FINN_BOARDS[board.name]
        cfg["generate_outputs"] = ["estimate_reports", "stitched_ip", "rtlsim_performance", "bitfile",
                                   "deployment_package"]
    else:
        cfg["fpga_part"] = board.device
        cfg["generate_outputs"] = ["estimate_reports", "stitched_ip", "rtlsim_performance", "out_of_context_synth"]
    return cfg


def handoff(qonnx_path: Path, images: np.ndarray, expected: np.ndarray, output_frac: int, board: Board,
            clock_mhz: float, lanes: int, out: Path) -> dict:
    """Write the FINN bundle in `out` (model.onnx, dataflow_build_config.json, input.npy, expected_output.npy,
    README.md, finn.json) after checking model.onnx and its threshold form against `expected` on `images`."""
    from insitu.frontends.execute import run_model
    from insitu.frontends.onnx_file import load_qonnx

    images = np.asarray(images)
    config = build_config(board, clock_mhz, lanes, int(np.prod(images.shape[1:])))
    model = load_qonnx(Path(qonnx_path))
    frac = integer_input(model)
    quants = check_rounding(model)
    codes = images.reshape(len(images), 1, *images.shape[1:]).astype(np.float32)
    checks = {}
    for what, m in (("model.onnx", model), ("threshold form", threshold_form(model))):
        got = run_model(m, codes, what=f"the FINN {what}") * 2.0**output_frac
        bad = int(np.sum(np.any(got != expected, axis=1)))
        if bad:
            raise MismatchError(f"the FINN {what} differs from insitu's reference on {bad} of {len(codes)} images",
                                "report this with the run directory")
        checks[what] = {"vectors": len(codes), "bit_exact_vectors": len(codes)}
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out / "model.onnx"))
    np.save(out / "input.npy", codes[:1])
    np.save(out / "expected_output.npy", (expected[:1] * 2.0**-output_frac).astype(np.float32))
    atomic_write_json(out / "dataflow_build_config.json", config)
    summary = {"board": board.name, "clock_mhz": clock_mhz, "lanes": lanes, "target_fps": config["target_fps"],
               "input_frac": frac, "activation_quantizers": quants, "rounding": "half up (HALF_UP)",
               "checked_here": checks, "not_checked_here": NOT_CHECKED}
    atomic_write_json(out / "finn.json", summary)
    atomic_write_text(out / "README.md", _readme(summary, config))
    return summary


NOT_CHECKED = ["FINN's streamlining and conversion to hardware layers (step_qonnx_to_finn .. step_convert_to_hw)",
               "the folding FINN derives from target_fps, and its FIFO sizing",
               "FINN's HLS / RTL layers in simulation, Vivado synthesis, timing at the clock asked"]


def _readme(s: dict, cfg: dict) -> str:
    target = (f"board {cfg['board']} ({cfg['shell_flow_type']}): a bitfile and a deployment package"
              if "board" in cfg else f"part {cfg['fpga_part']}: a stitched IP and an out-of-context synthesis")
    checked = "\n".join(f"- {k}: {v['bit_exact_vectors']} of {v['vectors']} test images bit-exact"
                        for k, v in s["checked_here"].items())
    return f"""# FINN handoff

The insitu student as FINN's dataflow builder takes it: `model.onnx` (QONNX, integer UINT8 input, activation
quantizers rounding half up as FINN's thresholds do) and `dataflow_build_config.json` for {target},
clock {s['clock_mhz']:g} MHz, target_fps {s['target_fps']} (insitu's {s['lanes']}-lane core: one image every
pixels / {s['lanes']} cycles).

Run it where FINN, Vivado and Vitis HLS are installed (FINN's docker: `./run-docker.sh build_custom THIS_DIR`,
or `python -m finn.builder.build_dataflow THIS_DIR` inside it). FINN's verification steps compare its graph after
conversion, after streamlining and in stitched-IP simulation with `expected_output.npy` (insitu's reference
scores of `input.npy`).

Checked by insitu with qonnx's executor, bit for bit against insitu's integer reference:
{checked}

Not checked by insitu (it needs FINN and Vivado):
""" + "\n".join(f"- {x}" for x in NOT_CHECKED) + "\n"

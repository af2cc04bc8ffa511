"""The FINN handoff's parts: half-up rounding in training, FINN's thresholds, the refusals, the build config."""

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper

from insitu.boards import get_board
from insitu.config import StudentConfig
from insitu.distill.student import RoundHalfUpSte, act_quant, build_student
from insitu.errors import ConfigError, ExportError
from insitu.firmware.finn import build_config, check_rounding, integer_input, threshold_form


def _relu_quant(mode: str, bits: int = 3, step: float = 0.25):
    """input (1,2,4) -> Mul 2^-4 (stands for the input quantizer's output) -> Relu -> Quant(unsigned)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    inits = [helper.make_tensor("s", TensorProto.FLOAT, [], [step]),
             helper.make_tensor("z", TensorProto.FLOAT, [], [0]),
             helper.make_tensor("b", TensorProto.FLOAT, [], [bits]),
             helper.make_tensor("si", TensorProto.FLOAT, [], [2.0**-4]),
             helper.make_tensor("bi", TensorProto.FLOAT, [], [8])]
    nodes = [helper.make_node("Quant", ["x", "si", "z", "bi"], ["xq"], domain="qonnx.custom_op.general",
                              rounding_mode="ROUND", signed=1, narrow=0),
             helper.make_node("Relu", ["xq"], ["r"]),
             helper.make_node("Quant", ["r", "s", "z", "b"], ["y"], domain="qonnx.custom_op.general",
                              rounding_mode=mode, signed=0, narrow=0)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4])], inits)
    return cleanup_model(ModelWrapper(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])))


def _run(model, codes):
    from insitu.frontends.execute import run_model

    return run_model(model, codes.astype(np.float32), batch=len(codes))


def test_round_half_up_ste_rounds_ties_up_and_passes_the_gradient():
    x = torch.tensor([-1.5, -0.5, 0.5, 1.5, 2.5, 0.49], requires_grad=True)
    y = RoundHalfUpSte()(x)
    assert y.tolist() == [-1.0, 0.0, 1.0, 2.0, 3.0, 0.0]
    y.sum().backward()
    assert x.grad.tolist() == [1.0] * 6


def test_a_half_up_student_rounds_its_activation_ties_up():
    relu = build_student(StudentConfig(act_rounding="half_up"), 3, 48, True).relu0
    even = build_student(StudentConfig(), 3, 48, True).relu0
    assert relu.act_quant.rounding_mode == "HALF_UP" and even.act_quant.rounding_mode == "ROUND"
    q = type(relu.act_quant.fused_activation_quant_proxy.tensor_quant.int_quant.float_to_int_impl)
    assert q is RoundHalfUpSte and act_quant(4, "half_up").bit_width == 4


def test_finn_thresholds_are_half_up_and_the_threshold_form_equals_the_half_up_quant():
    codes = np.arange(-8, 40).reshape(-1, 2, 4)  # every multiple of 2^-4: the ties of 0.25 at k + 1/2 steps
    half_up = _relu_quant("HALF_UP")
    integer_input(half_up)
    want = np.clip(np.floor(np.maximum(codes, 0) * 2.0**-4 / 0.25 + 0.5), 0, 7) * 0.25
    got = _run(half_up, codes)
    assert np.array_equal(got, want.reshape(len(codes), -1))
    assert np.array_equal(_run(threshold_form(half_up), codes), got)
    even = _relu_quant("ROUND")
    integer_input(even)
    assert not np.array_equal(_run(even, codes), got)  # the ties are there: half to even differs
    assert [n.op_type for n in threshold_form(half_up).graph.node] == ["Mul", "MultiThreshold", "Mul"]


def test_the_handoff_refuses_half_to_even_and_a_quant_without_relu():
    even = _relu_quant("ROUND")
    integer_input(even)
    with pytest.raises(ExportError) as e:
        check_rounding(even)
    assert "half to even" in e.value.problem and "student.act_rounding=half_up" in e.value.fix
    m = _relu_quant("HALF_UP")
    with pytest.raises(ExportError, match="no Relu before it"):  # the input quantizer, still there
        check_rounding(m)
    integer_input(m)
    assert check_rounding(m) == [{"name": m.graph.output[0].name, "bits": 3, "frac": 2}]


def test_integer_input_takes_codes_annotated_uint8_or_int8():
    m = _relu_quant("HALF_UP")
    assert integer_input(m) == 4
    assert m.get_tensor_datatype(m.graph.input[0].name).name == "INT8" and m.graph.node[0].op_type == "Mul"


def test_build_config_folds_from_the_lanes_and_knows_finn_boards():
    cfg = build_config(get_board("zcu102"), 200.0, 4, 48 * 48)
    assert cfg["board"] == "ZCU102" and cfg["shell_flow_type"] == "vivado_zynq" and "bitfile" in cfg["generate_outputs"]
    assert cfg["synth_clk_period_ns"] == 5.0 and cfg["target_fps"] == int(200e6 * 4 / 2304)
    u250 = build_config(get_board("alveo-u250"), 100.0, 1, 2304)
    assert u250["shell_flow_type"] == "vitis_alveo" and u250["target_fps"] == int(100e6 / 2304)
    arty = build_config(get_board("arty-a7-100t"), 100.0, 2, 2304)
    assert "board" not in arty and arty["fpga_part"] == get_board("arty-a7-100t").device
    assert "out_of_context_synth" in arty["generate_outputs"] and "bitfile" not in arty["generate_outputs"]
    with pytest.raises(ConfigError) as e:
        build_config(get_board("ulx3s-85f"), 100.0, 2, 2304)
    assert "AMD" in e.value.problem and "--board zcu102" in e.value.fix

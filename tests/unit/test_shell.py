"""The board shell in simulation (UART in, answer bytes and trigger out) and its clock generator."""

import shutil

import numpy as np
import pytest

from insitu.errors import MismatchError, RTLError
from insitu.ir import reference
from insitu.ir.synthetic import random_model
from insitu.rtl import shell
from insitu.rtl.streaming import generate
from insitu.sim.shell_sim import decode, simulate_shell


def _setup(tmp_path, lanes=2, size=12, n=5, seed=2):
    model = random_model(seed, size=size)
    imgs = np.random.default_rng(seed).integers(0, 256, (n, size, size), dtype=np.uint8)
    np.savez(tmp_path / "vectors.npz", images=imgs)
    design = generate(model, tmp_path / "core", lanes, 2)
    return design, reference.run(model, imgs)


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs Icarus Verilog")
@pytest.mark.parametrize("lanes,trigger_class,core_mhz", [(2, 1, 21.7), (1, 0, 5.3)])
def test_shell_answers_every_image_exactly_and_pulses_the_trigger(tmp_path, lanes, trigger_class, core_mhz):
    design, expected = _setup(tmp_path, lanes)
    spec = shell.ShellSpec(lanes, 8, 144, 3, design.score_type.width, 8, osc_mhz=8.0, baud=1_000_000,
                           trigger_class=trigger_class, trigger_us=2.0)
    assert spec.clks_per_bit == 8 and spec.trigger_cycles == 16
    # the core clock slower and faster than the oscillator, at unrelated ratios: the crossings hold both ways
    r = simulate_shell(design.files, spec, tmp_path / "vectors.npz", expected, 5, tmp_path / "sim", core_mhz=core_mhz)
    assert r.exact_answers == 5
    assert r.triggers == int((expected.argmax(1) == trigger_class).sum()) == r.expected_triggers
    assert r.triggers == 0 or 2.0 <= r.trigger_us <= 2.0 + 4 / 8.0 + 4 / core_mhz


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs Icarus Verilog")
def test_shell_mismatch_is_reported(tmp_path):
    design, expected = _setup(tmp_path, n=2)
    spec = shell.ShellSpec(2, 8, 144, 3, design.score_type.width, 8, osc_mhz=8.0, baud=1_000_000)
    expected = expected.copy()
    expected[1, 0] -= 3
    with pytest.raises(MismatchError, match="1/2 images exactly"):
        simulate_shell(design.files, spec, tmp_path / "vectors.npz", expected, 2, tmp_path / "sim")


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs Icarus Verilog")
def test_shell_takes_inputs_wider_than_a_byte(tmp_path):
    """10-bit signed inputs (an imported model's): two little-endian bytes per value, through the packer."""
    from insitu.ir.builder import GraphBuilder
    from insitu.ir.fixed import FixedType

    rng = np.random.default_rng(4)
    t = FixedType(True, 10, 6)
    imgs = rng.integers(t.min_int, t.max_int + 1, (4, 1, 12, 12))
    b = GraphBuilder(imgs, t, rng)
    b.maxpool(b.requant(b.conv2d("inp", 3, 3, bits=5), bits=5), 2)
    b.dense(b.flatten(b.layers[-1].name), 3, bits=5)
    model = b.model()
    np.savez(tmp_path / "vectors.npz", images=imgs)
    design = generate(model, tmp_path / "core", 2, 2)
    assert design.pixel_bits == 10
    spec = shell.ShellSpec(2, 10, 144, 3, design.score_type.width, 8, osc_mhz=8.0, baud=1_000_000)
    assert spec.value_bytes == 2 and spec.image_bytes == 288
    assert shell.encode_values(np.array([-1, 5, -512]), 10) == bytes([0xFF, 0x03, 5, 0, 0x00, 0x02])
    r = simulate_shell(design.files, spec, tmp_path / "vectors.npz", reference.run(model, imgs), 4, tmp_path / "sim")
    assert r.exact_answers == 4


def test_answer_decoding():
    # class 2, scores -1, 300, -32768 as 2-byte little-endian two's complement
    raw = np.array([[2, 0xFF, 0xFF, 0x2C, 0x01, 0x00, 0x80]])
    classes, scores = decode(raw, 3, 2)
    assert classes.tolist() == [2] and scores.tolist() == [[-1, 300, -32768]]


@pytest.mark.parametrize("target", [100.0, 75.0, 48.0, 125.0])
def test_ecp5_pll_settings_are_legal_and_close(target):
    idiv, fb, op, fout = shell.ecp5_pll_params(25.0, target)
    assert 400 <= fout * op <= 800 and 25.0 / idiv >= 3.125
    assert abs(fout - target) / target < 0.03  # 48 MHz: 46.875 is the closest legal setting
    text, f = shell.clkgen_ecp5(25.0, target)
    assert "EHXPLLL" in text and f == fout


def test_shell_refuses_a_trigger_class_that_does_not_exist():
    spec = shell.ShellSpec(1, 8, 16, 3, 10, 8, 25.0, trigger_class=3)
    with pytest.raises(RTLError, match="trigger class 3"):
        shell.generate(spec)

"""Simulation of the whole board shell: UART bytes in, the answer bytes and trigger pulses out, checked
exactly against the integer reference."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from insitu.errors import MismatchError
from insitu.rtl import shell
from insitu.sim.rtl import run_cocotb


@dataclass(frozen=True)
class ShellSimResult:
    images: int
    exact_answers: int
    triggers: int
    expected_triggers: int
    trigger_us: float  # the first pulse's width
    osc_mhz: float
    core_mhz: float

    def to_dict(self) -> dict:
        return {"images": self.images, "exact_answers": self.exact_answers, "triggers": self.triggers,
                "expected_triggers": self.expected_triggers, "trigger_us": self.trigger_us,
                "osc_mhz": self.osc_mhz, "core_mhz": self.core_mhz}


def decode(answers: np.ndarray, n_classes: int, score_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """(classes, scores) from the answer bytes: class, then little-endian two's complement scores."""
    classes = answers[:, 0]
    raw = answers[:, 1:].reshape(len(answers), n_classes, score_bytes)
    vals = (raw * (256 ** np.arange(score_bytes))).sum(-1)
    bits = 8 * score_bytes
    return classes, np.where(vals >= 1 << (bits - 1), vals - (1 << bits), vals)


def simulate_shell(core_files: list[Path], spec: shell.ShellSpec, vectors: Path, expected: np.ndarray,
                   count: int, work: Path, simulator: str = "icarus", timeout_s: float = 1800,
                   core_mhz: float | None = None) -> ShellSimResult:
    """`insitu_shell_logic` with its two clocks: the oscillator at spec.osc_mhz and the core at `core_mhz`
    (default: an unrelated 2.7x the oscillator, so that every crossing is exercised)."""
    core_mhz = core_mhz or spec.osc_mhz * 2.7
    osc_ps, core_ps = 2 * round(5e5 / spec.osc_mhz), 2 * round(5e5 / core_mhz)  # even: a clock toggles at half
    work.mkdir(parents=True, exist_ok=True)
    src = work.parent / f"{work.name}_src"
    src.mkdir(parents=True, exist_ok=True)
    (src / "insitu_shell.v").write_text(shell.generate(spec))
    (src / "insitu_clkgen_sim.v").write_text(shell.clkgen_passthrough())
    files = [src / "insitu_shell.v", src / "insitu_clkgen_sim.v", shell.uart_file(), *core_files]
    cfg = {"vectors": str(vectors.resolve()), "count": int(count), "clks_per_bit": spec.clks_per_bit,
           "value_bits": spec.pixel_bits,
           "n_classes": spec.n_classes, "score_bytes": spec.score_bytes, "osc_ps": osc_ps, "core_ps": core_ps}
    out = run_cocotb(files, "insitu_shell_logic", "insitu.sim.cocotb_shell", cfg, work, simulator, timeout_s)[0]
    with np.load(out, allow_pickle=False) as z:
        answers, widths = z["answers"], z["trigger_widths"]
    classes, scores = decode(answers, spec.n_classes, spec.score_bytes)
    exp = np.asarray(expected[:count], np.int64)
    exp_cls = exp.argmax(1)
    ok = (classes == exp_cls) & np.all(scores == exp, axis=1)
    n_trig = int((exp_cls == spec.trigger_class).sum())
    # a pulse lasts the counted oscillator cycles plus the synchronisers: up to 4 cycles of each clock
    lo_ps = spec.trigger_cycles * osc_ps
    hi_ps = lo_ps + 4 * (osc_ps + core_ps)
    res = ShellSimResult(count, int(ok.sum()), len(widths), n_trig, round(int(widths[0]) * 1e-6, 4) if len(widths)
                         else 0.0, spec.osc_mhz, round(1e6 / core_ps, 4))
    if not ok.all():
        i = int(np.where(~ok)[0][0])
        raise MismatchError(f"board shell answered {int(ok.sum())}/{count} images exactly; image {i}: class "
                            f"{classes[i]} scores {scores[i].tolist()}, reference class {exp_cls[i]} scores "
                            f"{exp[i].tolist()}", f"a bug in the shell or the core; the simulation is in {work}")
    if len(widths) != n_trig or any(not lo_ps <= w <= hi_ps for w in widths):
        raise MismatchError(f"trigger pulsed {len(widths)} times (widths {(widths / 1000).tolist()[:5]} ns), expected "
                            f"{n_trig} pulses of {lo_ps / 1000:g} to {hi_ps / 1000:g} ns",
                            f"a bug in the shell; the simulation is in {work}")
    return res

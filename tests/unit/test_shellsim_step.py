"""The `shellsim` step: its record, its refusal of a shell that answers wrongly, and its skip."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from insitu.config import build_config
from insitu.errors import RTLError
from insitu.rundir import RunDir
from insitu.sim.shell_sim import ShellSimResult
from insitu.steps import shellsim

DESIGN = {"lanes": 2, "pixel_bits": 8, "height": 4, "width": 4, "n_classes": 3, "score_type": {"width": 12},
          "files": ["insitu_core.v"]}


def _run(tmp_path) -> RunDir:
    run = RunDir(tmp_path / "run")
    run.path("rtl", "verilog").mkdir(parents=True)
    run.path("rtl", "design.json").write_text(json.dumps(DESIGN))
    return run


@pytest.mark.parametrize("exact,triggers,ok", [(3, 1, True), (2, 1, False), (3, 0, False)])
def test_the_step_records_the_simulation_and_fails_on_a_wrong_answer(tmp_path, monkeypatch, exact, triggers, ok):
    seen = {}

    def fake_sim(core_files, spec, vectors, expected, count, work, simulator, timeout_s, core_mhz=None):
        seen.update(count=count, baud=spec.baud, osc=spec.osc_mhz, core_mhz=core_mhz, files=core_files)
        return ShellSimResult(count, exact, triggers, 1, 1.1, spec.osc_mhz, core_mhz)

    monkeypatch.setattr(shellsim, "simulate_shell", fake_sim)
    monkeypatch.setattr(shellsim, "load_vectors",
                        lambda p: SimpleNamespace(images=np.zeros((5, 4, 4)), expected=np.zeros((5, 3))))
    run = _run(tmp_path)
    cfg = build_config("tiny", {"firmware": {"shell_sim_images": 3}})
    if ok:
        res = shellsim.run(cfg, run)
        assert res.summary["exact_answers"] == 3 and res.outputs == [run.path("shellsim", "shell_sim.json")]
    else:
        with pytest.raises(RTLError, match="board shell answered"):
            shellsim.run(cfg, run)
    record = json.loads(run.path("shellsim", "shell_sim.json").read_text())  # kept as evidence either way
    assert record["exact_answers"] == exact and record["board"] == "ulx3s-85f"
    # the fast-baud shell of the configured board, the core at the PLL's synthesised clock, the core's files
    assert seen["count"] == 3 and seen["baud"] == round(seen["osc"] * 1e6 / 5)
    assert seen["core_mhz"] == pytest.approx(cfg.firmware.clock_mhz, rel=0.02)
    assert seen["files"] == [run.path("rtl", "verilog", "insitu_core.v")]
    assert not run.path(".shellsim-work").exists()


def test_no_images_or_no_firmware_skips_with_the_reason(tmp_path):
    run = _run(tmp_path)
    res = shellsim.run(build_config("tiny", {"firmware": {"shell_sim_images": 0}}), run)
    assert res.summary == {"skipped": "firmware.shell_sim_images=0"}
    res = shellsim.run(build_config("tiny", {"firmware": {"enabled": False}}), run)
    assert json.loads(run.path("shellsim", "shell_sim.json").read_text())["skipped"] == "firmware.enabled=false"

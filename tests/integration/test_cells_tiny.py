"""End to end on the tiny preset, through the real CLI: data -> teacher -> distill -> export -> hls -> report."""

import json
import subprocess

import pytest

from insitu.firmware.pll import read_textcfg
from insitu.rtl.shell import ecp5_pll_settings

from .cli import INSITU, cli


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "cells-tiny"
    cli("run", "cells", "--preset", "tiny", "--out", str(out))
    return out


@pytest.mark.slow
def test_tiny_run_is_bit_exact_end_to_end(tiny_run):
    report = json.loads((tiny_run / "report.json").read_text())
    n_test = report["dataset"]["sizes"]["test"]
    assert report["csim"]["vectors"] == n_test == report["csim"]["bit_exact_vectors"]
    assert report["reference"]["vectors"] == n_test == report["reference"]["bit_exact_vectors"]
    for key in ("params", "weight_bits", "act_bits", "accuracy", "accuracy_float"):
        assert key in report["student"]
    assert 0 <= report["student_no_kd"]["accuracy"] <= 1 and report["teacher"]["params"] > report["student"]["params"]
    assert set(report["stage_seconds"]) >= {"data", "teacher", "distill", "ablation", "export", "hls"}
    assert (tiny_run / "report.md").read_text().count("bit-exact") >= 1
    # the scorecard: every target read from this run (the tiny run builds a bitstream and trains the ablation)
    card = {row["key"]: row for row in report["targets"]}
    assert set(card) == {"teacher_gap", "kd_gain", "latency", "main_job"}
    assert all(row["status"] in ("met", "missed", "met (goal not reached)") for row in card.values())
    assert card["kd_gain"]["value"] == round(report["kd_gain_points"], 2)
    assert card["latency"]["value"] == round(report["latency_us"]["first_pixel_to_decision"], 2)
    assert 0 < report["main_job"]["wall_seconds"] <= report["main_job"]["stage_seconds_sum"] + 2
    assert "## Targets" in (tiny_run / "report.md").read_text()
    assert (tiny_run / "confusion.png").stat().st_size > 1000
    manifest = json.loads((tiny_run / "manifest.json").read_text())
    assert manifest["versions"]["torch"].startswith("2.13.0")
    assert (tiny_run / "export" / "student.qonnx.onnx").exists()
    assert report["reference"]["qonnx"] == {"vectors": n_test, "bit_exact_vectors": n_test}
    import numpy as np

    with np.load(tiny_run / "export" / "vectors.npz") as z:
        assert len(np.unique(z["expected"], axis=0)) > n_test // 4  # outputs vary: the check is not vacuous


@pytest.mark.slow
def test_tiny_run_ends_with_a_bitstream_and_a_latency_report(tiny_run):
    report = json.loads((tiny_run / "report.json").read_text())
    rtl, impl, lat = report["rtl"], report["impl"], report["latency_us"]
    assert rtl["vectors"] == rtl["bit_exact_vectors"] == 40 and rtl["simulator"] == "icarus"
    assert rtl["ii_cycles"] == rtl["beats_per_image"] == 24 * 24 // 2
    assert rtl["latency_cycles_first_to_valid"] > rtl["latency_cycles_last_to_valid"]
    assert impl["board"] == "ulx3s-85f" and impl["device"] == "LFE5U-85F"
    assert 20 < impl["fmax_mhz"] < 400 and impl["lut"] > 100 and impl["ff"] > 100
    bundle = tiny_run / "firmware" / "ulx3s-85f"
    bit = bundle / impl["bitstream"]
    from insitu.rundir import sha256_file

    assert bit.stat().st_size > 100_000 and sha256_file(bit) == impl["bitstream_sha256"]
    manifest = json.loads((bundle / "bundle.json").read_text())
    for name, digest in manifest["files"].items():
        assert sha256_file(bundle / name) == digest
    assert {"insitu_shell.v", "insitu_core.v", "insitu_uart.v", "insitu_clkgen.v"} <= {
        p.name for p in (bundle / "verilog").iterdir()}
    assert (bundle / "insitu_shell.lpf").exists() and (bundle / "vectors.npz").exists()
    shell = report["shell_sim"]
    assert shell["exact_answers"] == shell["images"] == 2
    # the PLL was set after routing to the fastest legal clock the routed design meets, and the latency is there
    assert lat["clock"] == "bitstream" and impl["pll"]["mode"] == "fastest" and impl["timing_met"]
    clock = lat["clock_mhz"]
    assert clock == impl["clock_mhz"] <= impl["fmax_mhz"] and lat["at_fmax"]["mhz"] == impl["fmax_mhz"]
    core = impl["clocks"]["$glbnet$u_clk.clk"]  # the core clock, named; the oscillator's is judged at 25 MHz
    assert core["achieved_mhz"] == impl["fmax_mhz"] and core["constraint_mhz"] == pytest.approx(clock, abs=1e-3)
    legal = [s[3] for s in ecp5_pll_settings(25.0)]
    assert clock == pytest.approx(max(f for f in legal if f <= impl["fmax_mhz"]), abs=1e-3)
    assert lat["first_pixel_to_decision"] == pytest.approx(rtl["latency_cycles_first_to_valid"] / clock, abs=1e-3)
    words = read_textcfg(bundle / "build" / "insitu_shell.config") if (bundle / "build").exists() else None
    clkgen = (bundle / "verilog" / "insitu_clkgen.v").read_text()
    assert f'FREQUENCY_PIN_CLKOP="{clock:.4f}"' in clkgen
    if words:
        assert f".CLKOP_DIV({words['CLKOP_DIV']})" in clkgen and f".CLKFB_DIV({words['CLKFB_DIV']})" in clkgen
    md = (tiny_run / "report.md").read_text()
    assert "## Firmware" in md and "first pixel → decision" in md
    assert (tiny_run / "latency_vs_resources.png").exists()
    # programming the bundle: the exact command, nothing run
    proc = cli("program", "--board", "ulx3s-85f", "--out", str(tiny_run), "--dry-run")
    assert proc.stdout.strip().endswith(str(bit.resolve())) and "openFPGALoader" in proc.stdout


@pytest.mark.slow
def test_resume_and_single_stage_rerun(tiny_run):
    before = json.loads((tiny_run / "manifest.json").read_text())["stages"]["teacher"]["outputs"]
    proc = cli("run", "cells", "--preset", "tiny", "--out", str(tiny_run))
    assert "up to date" in proc.stderr
    cli("hls", "--out", str(tiny_run), "--set", "hls.io_type=io_stream")
    after = json.loads((tiny_run / "manifest.json").read_text())
    assert after["stages"]["teacher"]["outputs"] == before
    assert after["stages"]["hls"]["summary"]["csim"]["bit_exact_vectors"] == after["stages"]["hls"]["summary"]["csim"]["vectors"]


@pytest.mark.slow
def test_bad_inputs_fail_clearly(tmp_path):
    proc = cli("run", "cells", "--data", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "r"), check=False)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    proc = cli("run", "cells", "--set", "student.weight_bits=12", "--out", str(tmp_path / "r"), check=False)
    assert proc.returncode == 2 and "student.weight_bits" in proc.stderr
    proc = cli("hls", "--out", str(tmp_path / "nothing"), check=False)
    assert proc.returncode == 2 and "not an insitu run directory" in proc.stderr


@pytest.mark.slow
def test_lymphomnist_idx_folder_two_class(tmp_path):
    """LymphoMNIST-format IDX files on disk (written here from the generator) through the whole pipeline."""
    from insitu.data.idx import write_idx
    from insitu.data.synth_cells import generate

    folder = tmp_path / "lymphomnist"
    folder.mkdir()
    for split, n, seed in (("train", 300, 1), ("test", 90, 2)):
        x, y = generate(n, seed=seed, classes=3)
        write_idx(folder / f"{split}_images.gz", x)
        write_idx(folder / f"{split}_labels.gz", y.astype("uint8"))
    out = tmp_path / "run"
    cli("run", "cells", "--preset", "tiny", "--data", str(folder), "--set", "data.classes=2",
         "--set", "firmware.enabled=false", "--out", str(out))
    report = json.loads((out / "report.json").read_text())
    assert report["dataset"]["name"] == "lymphomnist:lymphomnist" and report["dataset"]["classes"] == ["B", "T"]
    # the 300 training-file images are fewer than train 240 + pool 360: both scaled in proportion
    assert report["dataset"]["sizes"] == {"train": 120, "pool": 180, "test": 90}
    assert report["dataset"]["split"]["scaled"]
    assert report["csim"]["vectors"] == report["csim"]["bit_exact_vectors"] == 90
    assert report["student"]["distill_mode"] == "label_free"  # the pool outnumbers the labelled set
    assert report["rtl"]["vectors"] == report["rtl"]["bit_exact_vectors"] == 40  # 2 classes through the RTL too
    assert report["impl"] is None and not (out / "firmware").exists()


@pytest.mark.slow
def test_ctrl_c_keeps_finished_steps_and_the_next_run_resumes(tmp_path):
    import signal
    import time

    out = tmp_path / "run"
    no_fw = ["--set", "firmware.enabled=false"]
    slow_teacher = ["--set", "teacher.epochs=30"]  # the signal must land inside the teacher's training
    # a shell without job control starts background jobs with SIGINT ignored, and that is inherited: give the
    # run the default disposition, as an interactive terminal would
    proc = subprocess.Popen([INSITU, "run", "cells", "--preset", "tiny", *no_fw, *slow_teacher, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    manifest = out / "manifest.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if manifest.exists() and "data" in json.loads(manifest.read_text())["stages"]:
            break
        time.sleep(0.2)
    time.sleep(1.0)  # inside the teacher's training
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    stages = json.loads(manifest.read_text())["stages"]
    assert "data" in stages and "report" not in stages
    data_hash = stages["data"]["outputs"]
    again = cli("run", "cells", "--preset", "tiny", *no_fw, *slow_teacher, "--out", str(out))
    assert "step data up to date" in again.stderr
    final = json.loads(manifest.read_text())["stages"]
    assert final["data"]["outputs"] == data_hash and "report" in final


@pytest.mark.slow
def test_missed_timing_still_builds_and_a_hanging_tool_keeps_the_bundle(tiny_run, tmp_path):
    import os

    from insitu.rundir import sha256_file

    bundle = tiny_run / "firmware" / "ulx3s-85f"
    # a clock the design cannot reach, kept as asked: built anyway, marked, the achieved Fmax reported
    cli("firmware", "--out", str(tiny_run), "--set", "firmware.clock_mhz=400", "--set", "firmware.pll=asked")
    impl = json.loads((bundle / "impl.json").read_text())["impl"]
    assert impl["timing_met"] is False and impl["fmax_mhz"] < impl["target_mhz"]
    assert impl["clock_mhz"] == pytest.approx(400, rel=0.02) and (bundle / impl["bitstream"]).exists()
    cli("report", "--out", str(tiny_run))
    assert "timing **NOT met** (at" in (tiny_run / "report.md").read_text()
    before = {p.name: sha256_file(p) for p in bundle.iterdir() if p.is_file()}
    # a synthesis tool that hangs: killed at the timeout, named, and the previous bundle is untouched
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "yosys").write_text("#!/bin/sh\nsleep 60\n")
    (fake / "yosys").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run([INSITU, "firmware", "--out", str(tiny_run), "--set", "firmware.timeout_s=3",
                           "--set", "firmware.shell_sim_images=0"],
                          capture_output=True, text=True, timeout=600, env=env)
    err = " ".join(proc.stderr.split())
    assert proc.returncode == 2 and "'yosys' did not finish within 3 s" in err
    assert {p.name: sha256_file(p) for p in bundle.iterdir() if p.is_file()} == before


@pytest.mark.slow
def test_unknown_board_is_named_with_the_known_ones(tiny_run):
    proc = cli("build", "--board", "ulx3s-99f", "--out", str(tiny_run), check=False)
    assert proc.returncode == 2 and "ulx3s-99f" in proc.stderr and "ulx3s-85f" in proc.stderr


@pytest.mark.slow
def test_finn_handoff_refuses_a_half_to_even_student(tiny_run):
    proc = cli("export", "--out", str(tiny_run), "--finn", "--board", "zcu102", check=False)
    assert proc.returncode == 2 and "FINN's thresholds round half up" in proc.stderr
    assert "student.act_rounding=half_up" in proc.stderr and not (tiny_run / "finn" / "model.onnx").exists()

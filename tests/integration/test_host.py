"""`insitu infer` end to end against `insitu board-sim` (the bundle's shell and core on Verilator behind a
pseudo-terminal), and the serial errors: a port that does not exist, one that never answers, one that answers
garbage."""

import json
import os
import subprocess
import threading
import time

import numpy as np
import pytest

from .cli import INSITU, cli, tiny_cells


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tiny_cells(tmp_path_factory, "host", "firmware.estimate_only=true", "firmware.shell_sim_images=0")


@pytest.fixture(scope="module")
def board(run, tmp_path_factory):
    port_file = tmp_path_factory.mktemp("bs") / "port"
    proc = subprocess.Popen([INSITU, "board-sim", "--run", str(run), "--seconds", "900", "--port-file",
                             str(port_file)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 600
    while not port_file.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
    assert port_file.exists(), proc.communicate(timeout=30)[0]
    yield port_file.read_text().strip()
    proc.terminate()
    proc.wait(timeout=60)


@pytest.mark.slow
def test_infer_agrees_with_the_reference_on_the_simulated_board(run, board, tmp_path):
    with np.load(run / "export" / "vectors.npz") as z:
        images, expected = z["images"], z["expected"]
    _, first = np.unique(expected, axis=0, return_index=True)
    pick = np.sort(first)[:3]  # images whose reference outputs all differ: the check cannot pass by accident
    assert len(pick) == 3
    np.savez(tmp_path / "mine.npz", images=images[pick])
    out = tmp_path / "infer.json"
    proc = cli("infer", "--port", board, "--run", str(run), "--images", str(tmp_path / "mine.npz"),
               "--timeout", "120", "--json", str(out))
    doc = json.loads(out.read_text())
    assert doc["images"] == doc["agree_with_reference"] == 3
    assert [a["scores"] for a in doc["answers"]] == expected[pick].tolist()
    assert doc["round_trip_ms"]["median"] > 0 and doc["round_trip_ms"]["p99"] >= doc["round_trip_ms"]["median"]
    assert "3 images, 3 agree with the reference" in proc.stderr
    cli("infer", "--port", board, "--run", str(run), "--n", "2", "--timeout", "120", "--json", str(out))
    assert json.loads(out.read_text())["agree_with_reference"] == 2


@pytest.mark.slow
def test_a_port_that_does_not_exist(run):
    proc = cli("infer", "--port", "/dev/ttyNOPE9", "--run", str(run), check=False)
    assert proc.returncode == 2 and "cannot open the serial port /dev/ttyNOPE9" in proc.stderr
    assert "dialout" in proc.stderr


def _fake_board(reply: bytes | None):
    """A pseudo-terminal whose other end reads everything and, per image, answers `reply` (None: never)."""
    master, slave = os.openpty()
    import tty

    tty.setraw(slave)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                if os.read(master, 4096) and reply is not None:
                    os.write(master, reply)
            except OSError:
                return

    threading.Thread(target=serve, daemon=True).start()
    return os.ttyname(slave), stop


@pytest.mark.slow
def test_a_silent_port_times_out_and_garbage_is_named(run):
    path, stop = _fake_board(None)
    proc = cli("infer", "--port", path, "--run", str(run), "--n", "1", "--timeout", "1", check=False)
    stop.set()
    assert proc.returncode == 2 and "no answer within 1 s: expected" in proc.stderr
    path, stop = _fake_board(b"\xfe" * 64)
    proc = cli("infer", "--port", path, "--run", str(run), "--n", "1", "--timeout", "2", check=False)
    stop.set()
    assert proc.returncode == 2 and "answered garbage: class byte 254" in proc.stderr

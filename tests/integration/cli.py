"""The one way the integration tests call the real `insitu` executable of this environment."""

import os
import subprocess
import sys
from pathlib import Path

INSITU = str(Path(sys.executable).parent / "insitu")


def cli(*args: str, check: bool = True, env: dict | None = None, timeout: float = 1200) -> subprocess.CompletedProcess:
    """Run `insitu ARGS`; with `check`, a non-zero exit fails with both streams. Whitespace in the captured
    streams is collapsed, so messages are checked independent of the console's line wrapping."""
    proc = subprocess.run([INSITU, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"insitu {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    proc.stderr = " ".join(proc.stderr.split())
    proc.stdout = " ".join(proc.stdout.split())
    return proc


def tiny_cells(tmp_path_factory, name: str, *sets: str):
    """A finished `insitu run cells --preset tiny` in a fresh folder, with `--set` overrides."""
    out = tmp_path_factory.mktemp(name) / "tiny"
    cli("run", "cells", "--preset", "tiny", "--out", str(out), *[a for s in sets for a in ("--set", s)])
    return out

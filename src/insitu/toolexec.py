"""The one way insitu runs an external program.

Every call: resolves the binary (or fails naming it and how to install it), runs it without a shell in a
given working directory under a timeout, keeps its combined output in a log file next to the work, and raises
`ToolError` with the tail of that log when it fails or hangs.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
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
}


@dataclass(frozen=True)
class ToolResult:
    argv: tuple[str, ...]
    returncode: int
    seconds: float
    log_path: Path


def find_tool(name: str) -> str:
    """Absolute path of `name` on PATH, or a ToolError that says how to install it."""
    path = shutil.which(name)
    if path is None:
        hint = INSTALL_HINTS.get(name, f"install {name} and put it on PATH")
        raise ToolError(f"required tool '{name}' was not found on PATH", hint)
    return path


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_tool(argv: list[str], cwd: Path, log_path: Path, timeout_s: float, check: bool = True) -> ToolResult:
    """Run `argv` (argv[0] is a tool name or path) in `cwd`; output goes to `log_path`."""
    exe = str(Path(argv[0]).resolve()) if "/" in argv[0] else find_tool(argv[0])
    full = [exe, *argv[1:]]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log.debug("running %s in %s", " ".join(full), cwd)
    t0 = time.monotonic()
    with open(log_path, "w") as fh:
        fh.write("$ " + " ".join(full) + "\n")
        fh.flush()
        try:
            proc = subprocess.run(full, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout_s,
                                  stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ToolError(f"'{argv[0]}' did not finish within {timeout_s:.0f} s (log: {log_path})",
                            "raise the timeout in the config or check the tool is not waiting for input") from exc
    result = ToolResult(tuple(full), proc.returncode, time.monotonic() - t0, log_path)
    if check and proc.returncode != 0:
        raise ToolError(f"'{argv[0]}' failed with exit code {proc.returncode} (log: {log_path}):\n{_tail(log_path)}",
                        "read the log above; the generated scripts can be re-run by hand from " + str(cwd))
    return result


def tool_version(name: str, flag: str = "--version") -> str | None:
    """First line of `name --version`, or None when the tool is absent or silent."""
    path = shutil.which(name)
    if path is None:
        return None
    try:
        out = subprocess.run([path, flag], capture_output=True, text=True, timeout=20, check=False)
    except (subprocess.TimeoutExpired, OSError):
        return None
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else None

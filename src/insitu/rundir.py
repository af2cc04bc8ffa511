"""The run directory: where every artifact lives, and manifest.json, the record of what was made and how.

Artifacts are written under a temporary name and renamed (`atomic_write*`), so an interrupted stage never
leaves a half-written file where a finished one was.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from insitu import __version__

MANIFEST = "manifest.json"
PACKAGES = ("torch", "numpy", "brevitas", "hls4ml", "qonnx", "onnx", "onnxruntime", "scipy")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    tmp.write_bytes(data)
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def atomic_savez(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(f"{_tmp(path)}.npz")  # np.savez appends .npz; the process id stays in the name
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def atomic_replace_dir(staging: Path, final: Path) -> None:
    """Move a finished staging directory into place; the previous one is removed only after."""
    old = final.with_name(f".{final.name}.old{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    os.replace(staging, final)
    shutil.rmtree(old, ignore_errors=True)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"insitu": __version__, "python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


@dataclass
class RunDir:
    """Paths of every artifact of one run, and its manifest."""

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    # manifest ------------------------------------------------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        p = self.path(MANIFEST)
        if not p.exists():
            return {"insitu": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "stages": {}}
        try:
            return json.loads(p.read_text())
        except json.JSONDecodeError:
            # A damaged manifest only costs us the resume information: start a fresh record.
            return {"insitu": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "stages": {},
                    "note": "previous manifest was unreadable and was replaced"}

    @contextlib.contextmanager
    def locked(self):
        """Hold the run directory's manifest lock: steps of one run may finish in different processes (a sweep
        runs a run's C simulation and its place and route as separate tasks), and each read-modify-write of
        manifest.json must see the others' records."""
        with open(self.path(".manifest.lock"), "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def record_stage(self, name: str, key: str, seconds: float, outputs: list[Path],
                     summary: dict[str, Any], tools: dict[str, str | None] | None = None) -> None:
        digests = {str(p.relative_to(self.root)): sha256_file(p) for p in outputs}
        with self.locked():
            self.record_stage_digests(name, key, seconds, digests, summary, tools)

    def record_stage_digests(self, name: str, key: str, seconds: float, digests: dict[str, str],
                             summary: dict[str, Any], tools: dict[str, str | None] | None = None,
                             finished: str | None = None) -> None:
        """The manifest record of a stage whose outputs (paths relative to the root) have these hashes; the
        caller holds `locked()`."""
        m = self.manifest()
        m["versions"] = package_versions()
        m.setdefault("tools", {}).update(tools or {})
        m["stages"][name] = {
            "key": key,
            "seconds": round(seconds, 3),
            "finished": finished or time.strftime("%Y-%m-%dT%H:%M:%S"),
            "outputs": digests,
            "summary": summary,
        }
        atomic_write_json(self.path(MANIFEST), m)

    def forget_stage(self, name: str) -> None:
        with self.locked():
            m = self.manifest()
            if m["stages"].pop(name, None) is not None:
                atomic_write_json(self.path(MANIFEST), m)

    def stage_intact(self, name: str, key: str) -> bool:
        """True when the stage finished with this key and every output still has its recorded hash."""
        rec = self.manifest()["stages"].get(name)
        if not rec or rec.get("key") != key:
            return False
        for rel, digest in rec["outputs"].items():
            p = self.path(rel)
            if not p.is_file() or sha256_file(p) != digest:
                return False
        return True

    def output_digest(self, name: str) -> str:
        """One hash over a finished stage's outputs (used in the keys of the stages after it)."""
        rec = self.manifest()["stages"].get(name, {})
        return hashlib.sha256(json.dumps(rec.get("outputs", {}), sort_keys=True).encode()).hexdigest()[:16]

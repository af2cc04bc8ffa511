"""Import a finished step from another run directory: its output files (copied, not hard-linked: a
step re-run later in either directory must not change the other's files) and its manifest record, so that the importing run resumes from it as if it had run it.

The unit copied is the directory that holds the step's outputs (`teacher/`, `rtl/`, `firmware/<board>/`), so
files the step wrote beside its recorded outputs (the hls4ml project, the Verilog) come along; outputs at the
top of the run directory are copied one by one. A destination directory is replaced whole, after the copy.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from insitu.errors import InsituError
from insitu.rundir import RunDir, atomic_replace_dir


def units(outputs: list[str]) -> list[str]:
    """The directories (or top-level files) that hold these outputs, relative to the run directory."""
    groups: dict[str, list[Path]] = {}
    files: list[str] = []
    for rel in outputs:
        p = Path(rel)
        if len(p.parts) == 1:
            files.append(rel)
        else:
            groups.setdefault(p.parts[0], []).append(p.parent)
    dirs = [os.path.commonpath([str(q) for q in parents]) for parents in groups.values()]
    return sorted(dirs) + sorted(files)


def import_stage(src: RunDir, dst: RunDir, name: str) -> bool:
    """Bring step `name` from `src` into `dst` (the caller holds dst's lock). False when dst already has the
    same record with intact outputs."""
    rec = src.manifest()["stages"].get(name)
    if rec is None:
        raise InsituError(f"step {name} is not finished in {src.root}, which the sweep imports it from",
                          "re-run the sweep: the step's owner runs it first")
    if dst.stage_intact(name, rec["key"]):
        return False
    for unit in units(list(rec["outputs"])):
        s, d = src.path(unit), dst.path(unit)
        d.parent.mkdir(parents=True, exist_ok=True)
        if s.is_dir():
            staging = d.with_name(f".{d.name}.import{os.getpid()}")
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(s, staging, symlinks=True)
            atomic_replace_dir(staging, d)
        else:
            tmp = d.with_name(f".{d.name}.import{os.getpid()}")
            shutil.copy2(s, tmp)
            os.replace(tmp, d)
    tools = src.manifest().get("tools", {})
    dst.record_stage_digests(name, rec["key"], rec["seconds"], rec["outputs"],
                             {**rec.get("summary", {}), "imported_from": str(src.root)},
                             {k: v for k, v in tools.items()}, finished=rec.get("finished"))
    if not dst.stage_intact(name, rec["key"]):
        raise InsituError(f"step {name} imported from {src.root} into {dst.root} does not match its record",
                          f"the source run changed while the sweep ran: delete {dst.root} and re-run the sweep")
    return True

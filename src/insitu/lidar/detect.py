"""`insitu lidar detect SEQ_DIR --run RUN`: the trained student (its integer reference, i.e. exactly what the
firmware computes) and the two-stream method on a SemanticKITTI-layout sequence.

Writes SEQ_DIR/predictions/<scan>.npz per scan (arrays: score = the student's failure logit per point, flag =
score >= the run's threshold, two_stream_flag, code) and SEQ_DIR/predictions/summary.json. Every scan is read
and checked before anything is written; the folder is built aside and swapped in whole, so a failure leaves
earlier predictions untouched.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np

from insitu.config import load_config
from insitu.data import kitti
from insitu.data.lidar_sensor import foreign_table_warning, given_table, require_beams, sequence_table
from insitu.data.range_image import BeamTable
from insitu.errors import InsituError
from insitu.ir import reference
from insitu.ir.model import QuantModel
from insitu.lidar import column_student as cs
from insitu.lidar import two_stream
from insitu.rundir import RunDir, atomic_replace_dir, atomic_savez, atomic_write_json

log = logging.getLogger(__name__)


def student_scores(qm: QuantModel, points: np.ndarray, table: BeamTable, columns: int, context: int) -> np.ndarray:
    img, proj = cs.feature_image(points, table, columns)
    ints = reference.run(qm, cs.columns_of(img, context))  # (columns, beams)
    logits = ints.astype(np.float64) * 2.0 ** -qm.output_type.frac
    return logits[proj.column, proj.beam]


def detect(seq_dir: Path, run_dir: Path, sensor: str | None = None) -> dict:
    """`sensor`: a beam table preset or sensor file; None estimates the table from the sequence's scans."""
    from insitu.steps.lidar_data import load_segnet

    run = RunDir(run_dir)
    if not run.path("config.json").exists():
        raise InsituError(f"{run_dir} is not an insitu run directory", "pass the --run of `insitu run lidar`")
    cfg = load_config(run.path("config.json"))
    if cfg.app != "lidar" or not run.path("export", "check.json").exists():
        raise InsituError(f"{run_dir} holds no trained lidar student", "run `insitu run lidar --out DIR` first")
    seq = kitti.open_sequence(seq_dir)
    beams, columns = cfg.lidar.data.beams, cfg.lidar.data.columns
    table = sequence_table(seq, given_table(sensor, None) if sensor else None)  # reads and checks every scan
    require_beams(table, beams, str(seq_dir), trained=True)
    if seq.labels is not None:
        for scan, lab in zip(seq.scans, seq.labels):
            kitti.read_label(lab, len(kitti.read_scan(scan)))
    data_info = json.loads(run.path("lidar", "data.json").read_text())
    trained = [BeamTable(tuple(t["angles_deg"]), t["name"], t["source"]) for t in data_info.get("tables", {}).values()]
    warnings = [w for w in [foreign_table_warning(table, trained)] if w]
    qm = QuantModel.load(run.path("export"))
    threshold = float(json.loads(run.path("export", "check.json").read_text())["threshold_logit"])
    res = two_stream.run_sequence(seq, load_segnet(run, cfg), table, columns, cfg.lidar.motion)
    staging = Path(seq_dir) / ".predictions-staging"
    shutil.rmtree(staging, ignore_errors=True)
    per_scan = []
    for s in res.scans:
        score = student_scores(qm, s.points, table, columns, cfg.lidar.student.context)
        flag = score >= threshold
        atomic_savez(staging / f"{s.name}.npz", score=score.astype(np.float32), flag=flag.astype(np.uint8),
                     two_stream_flag=s.flag.astype(np.uint8), code=s.code.astype(np.uint8))
        per_scan.append({"scan": s.name, "points": len(score), "student_flagged": int(flag.sum()),
                         "two_stream_flagged": int(s.flag.sum())})
    summary = {"sequence": str(seq_dir), "run": str(run_dir), "scans": len(per_scan), "threshold_logit": threshold,
               "beam_table": table.describe(), "warnings": warnings,
               "motion_stream": res.motion_stream, "ego_motion": res.ego_motion,
               "student_flagged": sum(p["student_flagged"] for p in per_scan),
               "two_stream_flagged": sum(p["two_stream_flagged"] for p in per_scan),
               "points": sum(p["points"] for p in per_scan), "per_scan": per_scan,
               "format": "npz per scan: score float32 (student logit), flag uint8, two_stream_flag uint8, "
                         "code uint8 (0 both static, 1 both dynamic, 2 only self-supervised, 3 only supervised)"}
    if not res.motion_stream:
        summary["note"] = "single scan: no motion stream possible; two-stream flags are empty, the student ran"
    atomic_write_json(staging / "summary.json", summary)
    atomic_replace_dir(staging, Path(seq_dir) / "predictions")
    return summary

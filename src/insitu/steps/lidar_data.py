"""Lidar steps `lidar_data` (the simulated set, cached with checksums, or the user's SemanticKITTI sequences)
and `segnet` (the supervised stream, trained on the labelled normal scenes)."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import torch

from insitu.config import RunConfig
from insitu.data import kitti
from insitu.data.lidar import LidarDataset, from_semantickitti, simulate
from insitu.data.range_image import BeamTable
from insitu.distill.checkpoint import load_checkpoint, save_checkpoint
from insitu.lidar import segnet
from insitu.lidar.motion import transform
from insitu.lidar.registration import relative_motions
from insitu.pipeline import StepResult
from insitu.rundir import RunDir, atomic_write_json

log = logging.getLogger(__name__)


def run_data(cfg: RunConfig, run: RunDir) -> StepResult:
    d = cfg.lidar.data
    ds = simulate(d, workers=2) if d.source == "synthetic" else from_semantickitti(d)
    info = {"root": str(ds.root), "splits": ds.splits, "beams": ds.beams, "columns": ds.columns,
            "synthetic": ds.synthetic, "scans": {s: sum(len(ds.sequence(n)) for n in ds.splits[s])
                                                 for s in ds.splits},
            "tables": {n: t.describe() for n, t in sorted(ds.tables.items())}}
    names = sorted({t.name for t in ds.tables.values()})
    log.info("lidar data: %d-beam sensor, beam table %s", ds.beams, ", ".join(names))
    if ds.synthetic:
        info["checksums_sha256"] = hashlib.sha256((ds.root / "checksums.json").read_bytes()).hexdigest()
    path = run.path("lidar", "data.json")
    atomic_write_json(path, info)
    return StepResult([path], info)


def load_dataset(run: RunDir) -> LidarDataset:
    info = json.loads(run.path("lidar", "data.json").read_text())
    tables = {n: BeamTable(tuple(t["angles_deg"]), t["name"], t["source"]) for n, t in info["tables"].items()}
    return LidarDataset(Path(info["root"]), info["splits"], info["beams"], info["columns"], info["synthetic"], tables)


def _samples(ds: LidarDataset) -> list[segnet.SegSample]:
    out = []
    for name in ds.splits["train"]:
        seq = ds.sequence(name)
        if seq.labels is None:
            continue
        scans = [kitti.read_scan(p) for p in seq.scans]
        rel = relative_motions(scans, seq.poses)
        for i, pts in enumerate(scans):
            sem, _ = kitti.read_label(seq.labels[i], len(pts))
            prev = None if i == 0 else transform(scans[i - 1][:, :3], rel[i])
            out.append(segnet.sample(pts, sem, prev, ds.table(name), ds.columns))
    return out


def _segnet_config(cfg: RunConfig) -> dict:
    return {**cfg.lidar.segnet.model_dump(mode="json"), "beams": cfg.lidar.data.beams}


def run_segnet(cfg: RunConfig, run: RunDir) -> StepResult:
    ds = load_dataset(run)
    samples = _samples(ds)
    torch.set_num_threads(max(1, cfg.threads or torch.get_num_threads()))
    model = segnet.train(samples, cfg.lidar.segnet, cfg.seed)
    with torch.no_grad():
        pred = [model(torch.from_numpy(s.x)[None])[0][0].argmax(0).numpy() for s in samples[:: max(1, len(samples) // 40)]]
    truth = [s.cls for s in samples[:: max(1, len(samples) // 40)]]
    from insitu.lidar.metrics import miou

    train_miou, _ = miou(np.stack(pred), np.stack(truth), len(segnet.CLASSES), segnet.IGNORE)
    path = run.path("segnet", "segnet.pt")
    save_checkpoint(path, model, "segnet", _segnet_config(cfg))
    return StepResult([path], {"train_scans": len(samples), "train_miou": train_miou,
                               "params": sum(p.numel() for p in model.parameters())})


def load_segnet(run: RunDir, cfg: RunConfig) -> segnet.SegNet:
    model = segnet.SegNet(cfg.lidar.segnet.width)
    load_checkpoint(run.path("segnet", "segnet.pt"), model, "segnet", _segnet_config(cfg))
    return model.eval()

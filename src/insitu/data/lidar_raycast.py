"""Ray casting of a spinning lidar against a scene of boxes, vertical cylinders, ellipsoids and the ground plane.

All rays of one scan leave the sensor at one instant (no rolling shutter). Rays are intersected with every
primitive in numpy; the nearest hit wins, and its surface normal gives the incidence angle for the intensity
model. Each primitive is tested only against the columns its
bounding circle can reach (the loop over primitives is cheap; the rays per primitive are few).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from insitu.data.lidar_scene import KIND_BOX, KIND_CYL, KIND_ELL

GROUND = -1


@dataclass(frozen=True)
class Hits:
    t: np.ndarray  # (R,) distance along each ray, inf when nothing was hit
    prim: np.ndarray  # (R,) primitive index, GROUND (-1) for the ground, -2 for no hit
    cos_incidence: np.ndarray  # (R,) |normal . direction|


def _rot(yaw: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors (..., 3) by -yaw about z (world -> object frame); yaw broadcast over the leading axis."""
    c, s = np.cos(yaw), np.sin(yaw)
    while c.ndim < v.ndim - 1:
        c, s = c[..., None], s[..., None]
    return np.stack([c * v[..., 0] + s * v[..., 1], -s * v[..., 0] + c * v[..., 1], v[..., 2]], axis=-1)


def _boxes(o: np.ndarray, d: np.ndarray, c: np.ndarray, size: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    ol = _rot(yaw, o[None, :] - c)[:, None, :]  # (N,1,3)
    dl = _rot(yaw, np.broadcast_to(d, (len(c),) + d.shape))  # (N,R,3)
    dl = np.where(np.abs(dl) < 1e-12, 1e-12, dl)
    h = (size / 2)[:, None, :]
    t1, t2 = (-h - ol) / dl, (h - ol) / dl
    tn, tf = np.minimum(t1, t2).max(-1), np.maximum(t1, t2).min(-1)
    return np.where((tn <= tf) & (tn > 0), tn, np.inf)


def _cylinders(o: np.ndarray, d: np.ndarray, c: np.ndarray, size: np.ndarray) -> np.ndarray:
    ol = o[None, :] - c  # (N,3)
    r, hh = size[:, 0:1], size[:, 2:3] / 2
    a = (d[:, 0] ** 2 + d[:, 1] ** 2)[None, :]
    b = 2 * (ol[:, 0:1] * d[None, :, 0] + ol[:, 1:2] * d[None, :, 1])
    cc = ol[:, 0:1] ** 2 + ol[:, 1:2] ** 2 - r ** 2
    disc = b * b - 4 * a * cc
    with np.errstate(invalid="ignore", divide="ignore"):
        ts = (-b - np.sqrt(disc)) / (2 * a)
        z = ol[:, 2:3] + ts * d[None, :, 2]
        side = np.where((disc >= 0) & (ts > 0) & (np.abs(z) <= hh), ts, np.inf)
        tt = (hh - ol[:, 2:3]) / d[None, :, 2]
        px, py = ol[:, 0:1] + tt * d[None, :, 0], ol[:, 1:2] + tt * d[None, :, 1]
        top = np.where((d[None, :, 2] < 0) & (tt > 0) & (px * px + py * py <= r * r), tt, np.inf)
    return np.minimum(side, top)


def _ellipsoids(o: np.ndarray, d: np.ndarray, c: np.ndarray, size: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    os_ = _rot(yaw, o[None, :] - c) / size  # (N,3)
    ds = _rot(yaw, np.broadcast_to(d, (len(c),) + d.shape)) / size[:, None, :]  # (N,R,3)
    a = (ds * ds).sum(-1)
    b = 2 * (ds * os_[:, None, :]).sum(-1)
    cc = (os_ * os_).sum(-1)[:, None] - 1
    disc = b * b - 4 * a * cc
    with np.errstate(invalid="ignore"):
        t = (-b - np.sqrt(disc)) / (2 * a)
    return np.where((disc >= 0) & (t > 0), t, np.inf)


def _normals(o: np.ndarray, d: np.ndarray, t: np.ndarray, prim: np.ndarray, scene: dict, centers: np.ndarray):
    n = np.zeros_like(d)
    n[:, 2] = 1.0  # ground and cylinder caps
    for kind in (KIND_BOX, KIND_CYL, KIND_ELL):
        sel = np.where((prim >= 0) & (scene["kind"][np.maximum(prim, 0)] == kind))[0]
        if not len(sel):
            continue
        p = prim[sel]
        local = _rot(scene["yaw"][p], o[None, :] + t[sel, None] * d[sel] - centers[p])
        size = scene["size"][p]
        if kind == KIND_BOX:
            rel = np.abs(local) / (size / 2)
            ax = rel.argmax(1)
            nl = np.zeros_like(local)
            nl[np.arange(len(sel)), ax] = np.sign(local[np.arange(len(sel)), ax])
        elif kind == KIND_CYL:
            on_top = local[:, 2] >= size[:, 2] / 2 - 1e-6
            nl = np.where(on_top[:, None], [0.0, 0.0, 1.0], local * [1.0, 1.0, 0.0])
        else:
            nl = local / size ** 2
        n[sel] = nl / np.maximum(np.linalg.norm(nl, axis=1, keepdims=True), 1e-12)  # |cos| is rotation-free
        n[sel] = _rot(-scene["yaw"][p], n[sel])
    return np.abs((n * d).sum(1))


def _columns(rel: np.ndarray, radius: float, heading: float, columns: int) -> np.ndarray | None:
    """Columns whose azimuth can meet a primitive of bounding `radius` at horizontal offset `rel`; None = all."""
    rho = float(np.hypot(rel[0], rel[1]))
    if rho <= radius + 0.2:
        return None
    half = np.arcsin(min(1.0, radius / rho)) + 2 * np.pi / columns
    mid = (np.arctan2(rel[1], rel[0]) - heading) / (2 * np.pi) * columns
    lo, hi = int(np.floor(mid - half / (2 * np.pi) * columns)), int(np.ceil(mid + half / (2 * np.pi) * columns))
    return np.arange(lo, hi + 1) % columns


def cast(origin: np.ndarray, dirs: np.ndarray, scene: dict, time: float, max_range: float,
         columns: int, heading: float = 0.0) -> Hits:
    """Nearest hit of every ray from `origin` (road frame) at `time`; `scene` is Scene.arrays(); `dirs` is
    beam-major (beams*columns, 3) in the road frame, the sensor turned by `heading`."""
    o = np.asarray(origin, np.float64)
    beams = len(dirs) // columns
    with np.errstate(divide="ignore"):
        best_t = np.where(dirs[:, 2] < 0, -o[2] / dirs[:, 2], np.inf)
    best_p = np.where(np.isfinite(best_t), GROUND, -2)
    centers = scene["center"] + scene["velocity"] * time
    radius = np.linalg.norm(scene["size"][:, :2], axis=1) * np.where(scene["kind"] == KIND_BOX, 0.5, 1.0)
    rel = centers - o
    near = np.where(np.hypot(rel[:, 0], rel[:, 1]) - radius < max_range)[0]
    fns = {KIND_BOX: _boxes, KIND_CYL: _cylinders, KIND_ELL: _ellipsoids}
    for i in near:
        cols = _columns(rel[i], radius[i], heading, columns)
        rays = np.arange(len(dirs)) if cols is None else (np.arange(beams)[:, None] * columns + cols[None, :]).ravel()
        kind = int(scene["kind"][i])
        args = (o, dirs[rays], centers[i:i + 1], scene["size"][i:i + 1])
        t = (fns[kind](*args) if kind == KIND_CYL else fns[kind](*args, scene["yaw"][i:i + 1]))[0]
        better = t < best_t[rays]
        best_t[rays[better]] = t[better]
        best_p[rays[better]] = i
    best_p = np.where(best_t <= max_range, best_p, -2)
    best_t = np.where(best_t <= max_range, best_t, np.inf)
    cos_inc = np.zeros(len(dirs))
    ok = best_p > -2
    cos_inc[ok] = _normals(o, dirs[ok], best_t[ok], best_p[ok], scene, centers)
    return Hits(best_t, best_p, cos_inc)

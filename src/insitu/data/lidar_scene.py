"""Synthetic street scenes for the spinning-lidar simulator: primitives, normal classes and injected anomalies.

A scene is laid out in a road frame (x along the road, y to the left, z up, ground at z = 0): a two-lane road,
sidewalks, buildings and hedges, trees, poles, parked and moving cars, pedestrians and cyclists. Anomalies are
objects the supervised stream never sees in training: animals crossing, lost cargo on the road, unusual
vehicles, and objects moving where nothing should move. Every object moves at a constant velocity.

Semantic ids follow SemanticKITTI (static ids; moving objects get the moving-* ids at labelling time).
Anomalies carry semantic id 0 (unlabelled) in the label files: their categories are kept aside for evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# SemanticKITTI ids used by the simulator
ROAD, SIDEWALK, BUILDING, VEGETATION, TRUNK, POLE, CAR, PERSON, BICYCLIST = 40, 48, 50, 70, 71, 80, 10, 30, 31
MOVING_ID = {CAR: 252, PERSON: 254, BICYCLIST: 253}
ANOMALY_CATEGORIES = {1: "animal", 2: "lost_cargo", 3: "unusual_vehicle", 4: "moving_object"}
KIND_BOX, KIND_CYL, KIND_ELL = 0, 1, 2
ROAD_HALF, SIDEWALK_OUT = 4.0, 7.0
SENSOR_HEIGHT = 1.73


@dataclass
class Scene:
    """Primitives as parallel arrays (one row per primitive)."""

    kind: list[int] = field(default_factory=list)
    center: list[tuple[float, float, float]] = field(default_factory=list)  # at t = 0
    size: list[tuple[float, float, float]] = field(default_factory=list)  # box: full extents; cyl: r, r, h; ell: semi-axes
    yaw: list[float] = field(default_factory=list)
    velocity: list[tuple[float, float, float]] = field(default_factory=list)
    semantic: list[int] = field(default_factory=list)
    instance: list[int] = field(default_factory=list)
    albedo: list[float] = field(default_factory=list)
    anomaly: list[int] = field(default_factory=list)
    _next_instance: int = 1

    def new_instance(self) -> int:
        self._next_instance += 1
        return self._next_instance - 1

    def add(self, kind: int, center, size, semantic: int, albedo: float, inst: int = 0, yaw: float = 0.0,
            velocity=(0.0, 0.0, 0.0), anomaly: int = 0) -> None:
        self.kind.append(kind)
        self.center.append(tuple(map(float, center)))
        self.size.append(tuple(map(float, size)))
        self.yaw.append(float(yaw))
        self.velocity.append(tuple(map(float, velocity)))
        self.semantic.append(semantic)
        self.instance.append(inst)
        self.albedo.append(float(albedo))
        self.anomaly.append(anomaly)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"kind": np.array(self.kind, np.int64), "center": np.array(self.center).reshape(-1, 3),
                "size": np.array(self.size).reshape(-1, 3), "yaw": np.array(self.yaw),
                "velocity": np.array(self.velocity).reshape(-1, 3), "semantic": np.array(self.semantic, np.int64),
                "instance": np.array(self.instance, np.int64), "albedo": np.array(self.albedo),
                "anomaly": np.array(self.anomaly, np.int64)}


def _car(s: Scene, rng: np.random.Generator, x: float, y: float, yaw: float, vx: float) -> None:
    inst, alb = s.new_instance(), rng.uniform(0.15, 0.8)
    length, width = rng.uniform(3.9, 4.8), rng.uniform(1.7, 1.95)
    s.add(KIND_BOX, (x, y, 0.65), (length, width, 0.9), CAR, alb, inst, yaw, (vx, 0, 0))
    s.add(KIND_BOX, (x - 0.2, y, 1.35), (length * 0.55, width * 0.9, 0.5), CAR, alb * 0.6, inst, yaw, (vx, 0, 0))


def _normal_objects(s: Scene, rng: np.random.Generator, x0: float, x1: float, ego_x0: float, ego_speed: float) -> None:
    for side in (-1, 1):
        x = x0 + rng.uniform(0, 6)
        while x < x1:  # buildings and hedges
            length = rng.uniform(8, 25)
            if rng.random() < 0.75:
                depth, height = rng.uniform(6, 14), rng.uniform(4, 14)
                s.add(KIND_BOX, (x + length / 2, side * (8 + depth / 2 + rng.uniform(0, 3)), height / 2),
                      (length, depth, height), BUILDING, rng.uniform(0.2, 0.6), s.new_instance())
            else:
                height = rng.uniform(0.8, 2.0)
                s.add(KIND_BOX, (x + length / 2, side * rng.uniform(7.5, 9), height / 2), (length, 1.2, height),
                      VEGETATION, rng.uniform(0.25, 0.5), s.new_instance())
            x += length + rng.uniform(2, 8)
        x = x0 + rng.uniform(0, 10)
        while x < x1:  # trees
            inst, r = s.new_instance(), rng.uniform(1.3, 2.5)
            trunk_h = rng.uniform(2.0, 3.0)
            y = side * rng.uniform(5.4, 6.4)
            s.add(KIND_CYL, (x, y, trunk_h / 2), (rng.uniform(0.12, 0.3),) * 2 + (trunk_h,), TRUNK,
                  rng.uniform(0.3, 0.45), inst)
            s.add(KIND_ELL, (x, y, trunk_h + r * 0.8), (r, r, r * 0.9), VEGETATION, rng.uniform(0.3, 0.55), inst)
            x += rng.uniform(8, 18)
        x = x0 + rng.uniform(0, 20)
        while x < x1:  # poles
            h = rng.uniform(4, 7)
            s.add(KIND_CYL, (x, side * rng.uniform(4.3, 4.8), h / 2), (0.1, 0.1, h), POLE, rng.uniform(0.4, 0.8),
                  s.new_instance())
            x += rng.uniform(15, 35)
        x = x0 + rng.uniform(0, 10)
        while x < x1:  # parked cars at the road edge
            _car(s, rng, x, side * rng.uniform(2.9, 3.3), rng.normal(0, 0.04), 0.0)
            x += rng.uniform(6, 20)
    span = x1 - x0
    for _ in range(rng.integers(2, 6)):  # moving cars: own lane (+x) and the opposite lane (-x)
        own = rng.random() < 0.4  # own lane: starts ahead of the ego vehicle and drives away from it
        if own:
            _car(s, rng, ego_x0 + rng.uniform(8, 30), -1.8, 0.0, ego_speed + rng.uniform(1.5, 5))
        else:
            _car(s, rng, x0 + rng.uniform(0.2, 0.9) * span, 1.8, 0.0, -rng.uniform(6, 14))
    for _ in range(rng.integers(4, 11)):  # pedestrians on sidewalks, some standing
        v = rng.choice([-1, 1]) * rng.uniform(0.9, 1.6) * (rng.random() < 0.7)
        h = rng.uniform(1.55, 1.9)
        s.add(KIND_CYL, (x0 + rng.uniform(0.1, 0.9) * span, rng.choice([-1, 1]) * rng.uniform(4.6, 6.6), h / 2),
              (0.25, 0.25, h), PERSON, rng.uniform(0.2, 0.6), s.new_instance(), 0.0, (v, 0, 0))
    for _ in range(rng.integers(0, 4)):  # cyclists near the road edge, riding with the traffic
        own = rng.random() < 0.5
        v = rng.uniform(3, 7) * (1 if own else -1)
        s.add(KIND_BOX, (x0 + rng.uniform(0.1, 0.9) * span, -3.4 if own else 3.4, 0.85), (1.75, 0.55, 1.7),
              BICYCLIST, rng.uniform(0.25, 0.6), s.new_instance(), 0.0, (v, 0, 0))


def _anomaly(s: Scene, rng: np.random.Generator, cat: int, x_seen: float, t_seen: float) -> None:
    """One anomaly of category `cat`, placed so that it is at x_seen (ahead of the ego vehicle) at t_seen."""
    inst = s.new_instance()
    if cat == 1:  # animal crossing the road: dark, low, elongated body on a leg block
        vy = rng.choice([-1, 1]) * rng.uniform(2.0, 5.0)
        y0 = rng.uniform(-3, 3) - vy * t_seen
        a, b, c = rng.uniform(0.45, 0.8), rng.uniform(0.18, 0.3), rng.uniform(0.22, 0.35)
        hb = rng.uniform(0.5, 0.8)
        alb = rng.uniform(0.05, 0.18)
        s.add(KIND_ELL, (x_seen, y0, hb + c), (b, a, c), 0, alb, inst, 0.0, (0, vy, 0), cat)
        s.add(KIND_BOX, (x_seen, y0, hb / 2), (0.3, a * 1.4, hb), 0, alb, inst, 0.0, (0, vy, 0), cat)
    elif cat == 2:  # lost cargo lying on the road
        dims = rng.uniform(0.4, 1.2, 3)
        s.add(KIND_BOX, (x_seen, rng.uniform(0.3, 3.5), dims[2] / 2), dims, 0, rng.uniform(0.5, 0.95), inst,
              rng.uniform(0, np.pi))
    elif cat == 3:  # unusual vehicle: a tall, long machine driving in a lane or turning across the road
        length, width, height = rng.uniform(5, 8), rng.uniform(2.3, 2.8), rng.uniform(3.0, 3.9)
        if rng.random() < 0.6:
            v, y0, yaw = np.array([-rng.uniform(2.5, 7), 0, 0]), 1.9, 0.0
            x0 = x_seen - v[0] * t_seen
        else:
            v, yaw = np.array([0, rng.choice([-1, 1]) * rng.uniform(2, 4), 0]), np.pi / 2
            y0, x0 = -v[1] * t_seen, x_seen
        s.add(KIND_BOX, (x0, y0, 0.4 + height / 2), (length, width, height), 0, rng.uniform(0.3, 0.7), inst,
              yaw, tuple(v), cat)
    else:  # an object moving where nothing should move: a rolling bin or ball on the sidewalk or the road
        vx, vy = rng.uniform(-1, 1) * 2.5, rng.choice([-1, 1]) * rng.uniform(2.0, 5.0)
        y0 = rng.uniform(-5, 5) - vy * t_seen
        if rng.random() < 0.5:
            r = rng.uniform(0.3, 0.6)
            s.add(KIND_ELL, (x_seen - vx * t_seen, y0, r), (r, r, r), 0, rng.uniform(0.4, 0.9), inst, 0.0,
                  (vx, vy, 0), cat)
        else:
            dims = np.array([rng.uniform(0.5, 0.8), rng.uniform(0.5, 0.8), rng.uniform(0.9, 1.2)])
            s.add(KIND_BOX, (x_seen - vx * t_seen, y0, dims[2] / 2), dims, 0, rng.uniform(0.4, 0.9), inst,
                  0.0, (vx, vy, 0), cat)


def make_scene(rng: np.random.Generator, ego_x0: float, ego_speed: float, duration: float,
               n_anomalies: int, view_m: float) -> Scene:
    """A scene covering the ego vehicle's drive plus `view_m` around it, with `n_anomalies` anomalies ahead."""
    s = Scene()
    x0, x1 = ego_x0 - view_m, ego_x0 + ego_speed * duration + view_m
    _normal_objects(s, rng, x0, x1, ego_x0, ego_speed)
    for _ in range(n_anomalies):
        cat = int(rng.choice([1, 2, 3, 4], p=[0.35, 0.2, 0.2, 0.25]))
        t_seen = rng.uniform(0.3, 0.9) * duration  # seen ahead, late enough that the ego never reaches it
        _anomaly(s, rng, cat, ego_x0 + ego_speed * t_seen + rng.uniform(10, 22), t_seen)
    return s

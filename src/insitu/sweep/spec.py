"""The sweep spec (a TOML file) and its points: every combination of a `[grid]`, or `n` samples of a `[random]`
space, each laid over the app's preset and the fixed `set` overrides, and validated before anything runs.

    app = "cells"                       # cells | lidar; or model = "path/to/model.onnx" for `insitu compile`
    preset = "tiny"
    from_run = "runs/cells-..."         # optional: steps this finished run already made are taken from it
    set = { "firmware.board" = "ulx3s-85f" }
    [grid]
    "student.weight_bits" = [4, 6]
    "rtl.lanes" = [1, 2]
    # or: [random]  n = 8  seed = 0  "student.weight_bits" = [3, 4, 5, 6]  ...
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from insitu.config import RunConfig, build_config, deep_merge
from insitu.errors import ConfigError

TOP_FIELDS = {"app", "preset", "model", "inputs", "from_run", "set", "grid", "random"}
MAX_POINTS = 10_000


@dataclass(frozen=True)
class Point:
    """One configuration of the sweep: its overrides (dotted field -> value) and the full config."""

    overrides: dict[str, Any]
    config: RunConfig = field(repr=False)

    @property
    def name(self) -> str:
        """A stable directory name: a hash of the overrides, so a resumed sweep finds its points again."""
        text = json.dumps(self.overrides, sort_keys=True)
        return "p-" + hashlib.sha256(text.encode()).hexdigest()[:10]

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={json.dumps(v)}" for k, v in self.overrides.items()) or "(base)"


@dataclass(frozen=True)
class SweepSpec:
    app: str
    preset: str
    fixed: dict[str, Any]
    axes: dict[str, list[Any]]
    mode: str  # grid | random
    n: int
    seed: int
    from_run: Path | None
    source: Path

    def points(self) -> list[Point]:
        combos = [dict(zip(self.axes, values)) for values in itertools.product(*self.axes.values())]
        if self.mode == "random":
            rng = random.Random(self.seed)
            combos = rng.sample(combos, min(self.n, len(combos)))
        return [Point(c, self._config(c)) for c in combos]

    def _config(self, over: dict[str, Any]) -> RunConfig:
        merged = deep_merge(_nest(self.fixed), _nest(over))
        try:
            return build_config(self.preset, merged, app=self.app)
        except ConfigError as exc:
            shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in over.items())
            raise ConfigError(f"{self.source}: the point {shown or '(base)'} is not a valid run: {exc.problem}",
                              "fix the spec's [grid] / [random] values or its `set` table") from None


def _nest(dotted: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {key!r} goes below a value", "name a field, e.g. student.weight_bits")
        node[parts[-1]] = value
    return out


def _flat(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """TOML `set = { "a.b" = 1 }` and `[set.a] b = 1` both as {"a.b": 1}."""
    out: dict[str, Any] = {}
    for k, v in table.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


def _axes(table: Any, where: str, path: Path) -> dict[str, list[Any]]:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [{where}] must be a table of field = [values]", 'write "rtl.lanes" = [1, 2]')
    axes = {}
    for key, values in _flat(table).items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}: [{where}] {key} must be a non-empty list of values, not {values!r}",
                              f'write "{key}" = [a, b]')
        axes[key] = values
    return axes


def load_spec(path: Path, compile_config=None) -> SweepSpec:
    """Read and check a spec; every point's config is built here, so a bad field or value is refused by name
    before anything runs. `compile_config(model, inputs) -> dict` supplies the compile section of a `model`
    sweep (the model file named by path and content hash)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read the sweep spec {path}: {exc.strerror or exc}", "pass an existing .toml file")
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}", "fix the syntax at the place named") from None
    unknown = sorted(set(raw) - TOP_FIELDS)
    if unknown:
        raise ConfigError(f"{path}: unknown field(s) {', '.join(unknown)}",
                          f"the spec's fields are: {', '.join(sorted(TOP_FIELDS))}")
    if "grid" in raw and "random" in raw:
        raise ConfigError(f"{path}: both [grid] and [random]", "keep one of them")
    fixed = _flat(raw.get("set", {}))
    if "model" in raw:
        if "app" in raw and raw["app"] != "compile":
            raise ConfigError(f"{path}: both app = {raw['app']!r} and model", "a model sweep has no app: drop one")
        if compile_config is None:
            raise ConfigError(f"{path}: a model sweep needs the compile front end", "call it through `insitu sweep`")
        model = (path.parent / raw["model"]).resolve()
        inputs = (path.parent / raw["inputs"]).resolve() if raw.get("inputs") else None
        fixed = {**{f"compile.{k}": v for k, v in compile_config(model, inputs).items()}, **fixed}
        app = "compile"
    else:
        app = raw.get("app", "cells")
        if app not in ("cells", "lidar"):
            raise ConfigError(f"{path}: unknown app {app!r}", "app is cells or lidar (or give model = a file)")
    if "random" in raw:
        table = dict(raw["random"]) if isinstance(raw["random"], dict) else raw["random"]
        n, seed = (table.pop("n", None), table.pop("seed", 0)) if isinstance(table, dict) else (None, 0)
        if not isinstance(n, int) or n < 1:
            raise ConfigError(f"{path}: [random] needs n = the number of points (a positive integer)", "add n = 8")
        axes, mode = _axes(table, "random", path), "random"
    else:
        n, seed = 0, 0
        axes, mode = _axes(raw.get("grid", {}), "grid", path), "grid"
    total = 1
    for values in axes.values():
        total *= len(values)
    if total > MAX_POINTS:
        raise ConfigError(f"{path}: {total} grid points", f"keep a sweep under {MAX_POINTS} points, or use [random]")
    from_run = (path.parent / raw["from_run"]).resolve() if raw.get("from_run") else None
    if from_run is not None and not (from_run / "config.json").is_file():
        raise ConfigError(f"{path}: from_run {from_run} is not a run directory (no config.json)",
                          "name a finished run's directory, or drop from_run")
    spec = SweepSpec(app, raw.get("preset", "default"), fixed, axes, mode, n or total, int(seed), from_run, path)
    spec.points()  # builds and validates every point's config
    return spec

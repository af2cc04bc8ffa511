"""The `insitu` command line: parses arguments and calls the pipeline; nothing else lives here."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler

from insitu.config import PRESETS, RunConfig, build_config, load_config, overrides_to_dict
from insitu.errors import InsituError
from insitu.pipeline import run_steps
from insitu.rundir import RunDir

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console(stderr=True)
log = logging.getLogger("insitu")

Out = Annotated[Optional[Path], typer.Option("--out", help="run directory (default ./runs/<app>-<timestamp>)")]
Sets = Annotated[Optional[list[str]], typer.Option("--set", help="override a config field: section.field=value")]


def _sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # same path as Ctrl-C: finished steps kept, the running tool is killed with us


def _setup_logging(verbose: bool) -> None:
    import signal

    signal.signal(signal.SIGTERM, _sigterm)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False, show_time=False)], force=True)
    for noisy in ("matplotlib", "PIL", "onnxscript", "onnx_ir", "torch"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _detect_source(path: Path) -> str:
    if path.suffix == ".npz":
        return "npz"
    if path.is_dir() and any(p.name.startswith(("train_images", "train-images")) for p in path.iterdir()):
        return "lymphomnist"
    return "folder"


def _threads(cfg: RunConfig) -> None:
    import torch

    torch.set_num_threads(cfg.threads or max(1, os.cpu_count() or 1))


def _fail(exc: InsituError) -> None:
    console.print(f"[bold red]error:[/] {exc.problem}", soft_wrap=True)
    if exc.fix:
        console.print(f"[bold]fix:[/] {exc.fix}", soft_wrap=True)
    raise typer.Exit(2)


@app.command()
def run(app_name: Annotated[str, typer.Argument(metavar="APP", help="application: cells or lidar")] = "cells",
        preset: Annotated[str, typer.Option(help=f"one of {', '.join(PRESETS)}")] = "default",
        data: Annotated[Optional[Path], typer.Option(help="LymphoMNIST folder, class folders or .npz")] = None,
        out: Out = None, device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
        seed: int = 0, set_: Sets = None, verbose: bool = False) -> None:
    """Run the whole pipeline (resumes an interrupted run given the same --out)."""
    _setup_logging(verbose)
    try:
        if app_name not in ("cells", "lidar"):
            raise InsituError(f"unknown application {app_name!r}", "available: cells, lidar")
        over = overrides_to_dict(set_ or [])
        if data is not None and app_name == "cells":
            over.setdefault("data", {}).update(source=_detect_source(data), path=str(data))
        elif data is not None:
            over.setdefault("lidar", {}).setdefault("data", {}).update(source="semantickitti", path=str(data))
        over.update(seed=seed, device=device)
        cfg = build_config(preset, over, app=app_name)
        _run(cfg, out or Path("runs") / f"{app_name}-{time.strftime('%Y%m%d-%H%M%S')}", None, frozenset())
    except InsituError as exc:
        _fail(exc)


def _run(cfg: RunConfig, out: Path, stop_after: str | None, force: frozenset[str]) -> None:
    from insitu.steps import APP_STEPS

    _threads(cfg)
    run_dir = RunDir(out)
    log.info("run directory: %s", run_dir.root)
    t0 = time.monotonic()
    try:
        seconds = run_steps(APP_STEPS[cfg.app], cfg, run_dir, force=force, stop_after=stop_after)
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted[/]: finished steps are kept in {run_dir.root}; "
                      f"run `insitu run {cfg.app} --out {run_dir.root}` to resume")
        raise typer.Exit(130) from None
    log.info("finished in %.1f s (%s)", time.monotonic() - t0, ", ".join(f"{k} {v:.0f}s" for k, v in seconds.items()))
    report = run_dir.path("report.md")
    if report.exists() and stop_after in (None, "report"):
        console.print(f"report: {report}")


def _rerun(out: Path, set_: list[str] | None, name: str) -> None:
    cfg_path = out / "config.json"
    if not cfg_path.exists():
        raise InsituError(f"{out} is not an insitu run directory (no config.json)",
                          "start one with `insitu run cells --out DIR`")
    cfg = load_config(cfg_path)
    if set_:
        cfg = build_config(cfg.preset, _deep(cfg.model_dump(mode="json"), overrides_to_dict(set_)), app=cfg.app)
    _run(cfg, out, name, frozenset({name}))


def _stage_command(name: str, doc: str) -> None:
    def command(out: Annotated[Path, typer.Option("--out", help="an existing run directory")],
                set_: Sets = None, verbose: bool = False) -> None:
        _setup_logging(verbose)
        try:
            _rerun(out, set_, name)
        except InsituError as exc:
            _fail(exc)

    command.__doc__ = f"Re-run the `{name}` step of a run ({doc}); steps it needs are resumed or run."
    app.command(name=name)(command)


def _export_command(doc: str) -> None:
    @app.command(name="export")
    def export(out: Annotated[Path, typer.Option("--out", help="an existing run directory")], set_: Sets = None,
               finn: Annotated[bool, typer.Option("--finn", help="also write OUT/finn: the QONNX and build config "
                                                                 "for FINN's dataflow builder")] = False,
               board: Annotated[Optional[str], typer.Option(help="FINN's target (an AMD board; default: the "
                                                                 "run's)")] = None,
               clock_mhz: Annotated[float, typer.Option(help="FINN's target clock")] = 100.0,
               verbose: bool = False) -> None:
        _setup_logging(verbose)
        try:
            _rerun(out, set_, "export")
            if finn:
                from insitu.api import export_finn

                s = export_finn(out, board, clock_mhz)
                checked = ", ".join(f"{k} {v['bit_exact_vectors']}/{v['vectors']}"
                                    for k, v in s["checked_here"].items())
                console.print(f"FINN handoff in {out / 'finn'}: {s['board']} at {s['clock_mhz']:g} MHz, target_fps "
                              f"{s['target_fps']}; bit-exact against the reference: {checked}")
        except InsituError as exc:
            _fail(exc)

    export.__doc__ = (f"Re-run the `export` step of a run ({doc}); with --finn, also the FINN handoff "
                      "(the student must round half up: student.act_rounding=half_up).")


def _deep(base: dict, over: dict) -> dict:
    from insitu.config import deep_merge

    merged = deep_merge(base, over)
    merged.pop("preset", None)
    return merged


def _register_stage_commands() -> None:
    from insitu.steps import APP_STEPS

    seen: set[str] = set()
    for steps in APP_STEPS.values():
        for step in steps:
            if step.name not in seen:
                seen.add(step.name)
                (_export_command(step.doc) if step.name == "export" else _stage_command(step.name, step.doc))


@app.command()
def config(preset: str = "default", set_: Sets = None,
           app_name: Annotated[str, typer.Option("--app", help="cells or lidar")] = "cells") -> None:
    """Print the full configuration of a preset (with overrides) as JSON."""
    try:
        cfg = build_config(preset, overrides_to_dict(set_ or []), app=app_name)
    except InsituError as exc:
        _fail(exc)
    sys.stdout.write(json.dumps(cfg.model_dump(mode="json"), indent=2) + "\n")


@app.command()
def boards() -> None:
    """List the built-in boards: device, clock, flow, and whether the board shell has pins on it."""
    from rich.table import Table

    from insitu.boards import all_boards

    table = Table(title="boards")
    for col in ("board", "vendor", "device", "clock MHz", "flow", "shell pins"):
        table.add_column(col)
    for b in all_boards().values():
        table.add_row(b.name, b.vendor, b.device, f"{b.clock_mhz:g}", b.flow, "yes" if b.has_shell_pins else "no")
    Console(width=120).print(table)


@app.command()
def build(board: Annotated[str, typer.Option(help="board name (see `insitu boards`)")],
          out: Annotated[Path, typer.Option("--out", help="a run directory (trained, or to train now)")],
          lanes: Annotated[Optional[int], typer.Option(help="pixels per clock (rtl.lanes)")] = None,
          set_: Sets = None, verbose: bool = False) -> None:
    """Build the firmware bundle for a board: RTL, its simulation, shell, bitstream or estimate, report."""
    _setup_logging(verbose)
    try:
        from insitu.boards import get_board

        get_board(board)  # an unknown name fails here, before any work
        cfg_path = out / "config.json"
        base = load_config(cfg_path).model_dump(mode="json") if cfg_path.exists() else {}
        over = overrides_to_dict(set_ or [])
        over = _deep(over, {"firmware": {"board": board, "enabled": True},
                            **({"rtl": {"lanes": lanes}} if lanes else {})})
        preset = base.get("preset", "default")
        cfg = build_config(preset, _deep(base, over) if base else over)
        _run(cfg, out, None, frozenset())
        console.print(f"bundle: {out / 'firmware' / board}")
    except InsituError as exc:
        _fail(exc)


def _bundle_bitstream(out: Path, board: str) -> Path:
    impl = out / "firmware" / board / "impl.json"
    if not impl.exists():
        raise InsituError(f"{out} has no firmware bundle for {board}",
                          f"build one with `insitu build --board {board} --out {out}`, or pass --bitstream")
    name = (json.loads(impl.read_text()).get("impl") or {}).get("bitstream")
    if not name:
        raise InsituError(f"the {board} bundle in {out} has no bitstream (an estimate-only board)",
                          "choose an ECP5 or iCE40 board, or an AMD board with Vivado on PATH, for a bitstream")
    return out / "firmware" / board / name


@app.command()
def program(board: Annotated[str, typer.Option(help="board name (see `insitu boards`)")],
            bitstream: Annotated[Optional[Path], typer.Option(help="the bitstream to load")] = None,
            out: Annotated[Optional[Path], typer.Option("--out", help="run directory holding the bundle")] = None,
            dry_run: Annotated[bool, typer.Option("--dry-run", help="print the command, run nothing")] = False,
            timeout: float = 300.0) -> None:
    """Load a bitstream onto a board with the board's programmer (openFPGALoader for most)."""
    import shlex

    from insitu.boards import get_board
    from insitu.toolexec import find_tool, run_tool

    _setup_logging(False)
    try:
        get_board(board)
        if bitstream is None:
            if out is None:
                raise InsituError("no bitstream given", "pass --bitstream FILE or --out RUN_DIR (uses its bundle)")
            bitstream = _bundle_bitstream(out, board)
        if not bitstream.is_file():
            raise InsituError(f"bitstream {bitstream} does not exist", "build one first, or check the path")
        argv = get_board(board).program_command(str(bitstream.resolve()))
        if dry_run:
            sys.stdout.write(shlex.join(argv) + "\n")
            return
        find_tool(argv[0])
        log_path = bitstream.resolve().parent / "program.log"
        run_tool(argv, bitstream.resolve().parent, log_path, timeout)
        console.print(f"programmed {board} with {bitstream} (log: {log_path})")
    except InsituError as exc:
        _fail(exc)


lidar_app = typer.Typer(no_args_is_help=True, help="lidar failure detection on your own sequences")
app.add_typer(lidar_app, name="lidar")


@lidar_app.command("detect")
def lidar_detect(seq_dir: Annotated[Path, typer.Argument(metavar="SEQ_DIR", help="SemanticKITTI-layout sequence")],
                 run_dir: Annotated[Path, typer.Option("--run", help="run directory of `insitu run lidar`")],
                 sensor: Annotated[Optional[str], typer.Option(
                     "--sensor", help="beam table: a preset (vlp-32c, hdl-64e, ...) or a .toml/.json file with "
                                      "beam_angles_deg; default: estimated from the scans")] = None,
                 verbose: bool = False) -> None:
    """Score every point of a sequence with the trained student and the two-stream method; writes
    SEQ_DIR/predictions/ (one .npz per scan and summary.json)."""
    _setup_logging(verbose)
    try:
        from insitu.lidar.detect import detect

        s = detect(seq_dir, run_dir, sensor)
        bt = s["beam_table"]
        console.print(f"beam table: {bt['name']} ({bt['beams']} beams, {bt['angles_deg'][-1]:.2f} to "
                      f"{bt['angles_deg'][0]:.2f} degrees)")
        console.print(f"{s['scans']} scans, {s['points']} points: student flagged {s['student_flagged']}, "
                      f"two-stream flagged {s['two_stream_flagged']} -> {seq_dir / 'predictions'}")
        for w in s.get("warnings", []):
            console.print(f"[yellow]warning[/]: {w}", soft_wrap=True)
        if "note" in s:
            console.print(f"[yellow]note[/]: {s['note']}")
    except InsituError as exc:
        _fail(exc)


@app.command("compile")
def compile_(model: Annotated[Path, typer.Argument(metavar="MODEL", help="QONNX .onnx (Brevitas, qonnx), HGQ2 "
                                                                         ".keras, QKeras .h5 or SavedModel")],
             out: Annotated[Path, typer.Option("--out", help="run directory (resumable)")],
             inputs: Annotated[Optional[Path], typer.Option(help=".npz with key x: inputs as the framework takes "
                                                                 "them (default: seeded random inputs)")] = None,
             board: Annotated[Optional[str], typer.Option(help="build a bitstream for this board")] = None,
             lanes: Annotated[Optional[int], typer.Option(help="input values per clock (rtl.lanes)")] = None,
             fmt: Annotated[str, typer.Option("--format", help="auto, qonnx, hgq2 or qkeras")] = "auto",
             seed: int = 0, set_: Sets = None, verbose: bool = False) -> None:
    """Your quantized model to an hls4ml project, Verilog and (with --board) a bitstream, each proven bit for bit
    against the model's own framework; exits non-zero on any mismatch (for CI)."""
    _setup_logging(verbose)
    try:
        from insitu.api import compile_config
        from insitu.reports.compile_md import all_exact

        cfg = compile_config(model, inputs, board, lanes, set_, fmt=fmt, seed=seed)
        _run(cfg, out, None, frozenset())
        rep = json.loads((out / "report.json").read_text())
        for name, r in rep["reference"]["against"].items():
            console.print(f"reference vs {name}: {r['bit_exact_vectors']} / {r['vectors']} bit-exact")
        console.print(f"C simulation: {rep['csim']['bit_exact_vectors']} / {rep['csim']['vectors']} bit-exact")
        if rep.get("rtl"):
            console.print(f"RTL simulation: {rep['rtl']['bit_exact_vectors']} / {rep['rtl']['vectors']} bit-exact")
        if rep.get("latency_us") and rep["latency_us"].get("first_pixel_to_decision") is not None:
            lat = rep["latency_us"]
            console.print(f"latency: {lat['first_pixel_to_decision']} µs at {lat['clock_mhz']} MHz ({lat['clock']})")
        if not all_exact(rep):
            raise typer.Exit(1)
    except InsituError as exc:
        _fail(exc)


@app.command()
def sweep(spec: Annotated[Path, typer.Argument(metavar="SPEC", help="sweep spec (.toml): app or model, preset, set, "
                                                                   "[grid] or [random] axes")],
          out: Annotated[Path, typer.Option("--out", help="sweep directory (resumable): points/, sweep.json, "
                                                          "sweep.csv, report.md")],
          address: Annotated[Optional[str], typer.Option(help="an existing Ray cluster: auto or ray://host:port "
                                                              "(default: a local Ray for this sweep)")] = None,
          workers: Annotated[Optional[int], typer.Option(help="CPUs of the local Ray (default: all cores)")] = None,
          estimate_only: Annotated[bool, typer.Option("--estimate-only", help="Yosys estimates, no place and "
                                                                              "route")] = False,
          route_front: Annotated[bool, typer.Option("--route-front", help="place and route the points on the "
                                                    "front of the estimate-only sweep in OUT")] = False,
          verbose: bool = False) -> None:
    """Sweep a design space on Ray: every point a run directory, shared steps computed once, the
    accuracy-latency-LUT Pareto front in OUT/report.md."""
    _setup_logging(verbose)
    try:
        from insitu.api import compile_section
        from insitu.steps import APP_STEPS
        from insitu.sweep import load_spec, run_sweep

        doc = run_sweep(load_spec(spec, compile_section), out, APP_STEPS.__getitem__, workers, address,
                        estimate_only, show=sys.stdout.isatty(), route_front=route_front)
    except InsituError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted[/]: finished points are kept in {out}; run the same command to resume")
        raise typer.Exit(130) from None
    done = sum(p["status"] == "done" for p in doc["points"])
    console.print(f"{done}/{len(doc['points'])} points done in {doc['wall_seconds']:.0f} s; "
                  f"{sum(p['pareto'] for p in doc['points'])} on the Pareto front; report: {out / 'report.md'}")
    if done < len(doc["points"]):
        raise typer.Exit(1)


@app.command()
def version() -> None:
    """Print the insitu version and the versions of the stack it runs on."""
    from insitu.rundir import package_versions

    sys.stdout.write(json.dumps(package_versions(), indent=2) + "\n")


_register_stage_commands()

from insitu import cli_host  # noqa: E402 - the host-side commands, on the same app

cli_host.register(app, console, _fail, _setup_logging)

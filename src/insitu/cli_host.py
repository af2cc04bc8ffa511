"""The host-side commands: `insitu infer` (talk to a board over its serial port) and `insitu board-sim` (the
simulated board on a pseudo-terminal). Registered on the main app by insitu.cli."""

from __future__ import annotations

import json
import signal
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer


def register(app: typer.Typer, console, fail, setup_logging) -> None:
    @app.command()
    def infer(port: Annotated[str, typer.Option(help="serial port of the board (or of insitu board-sim)")],
              run: Annotated[Path, typer.Option("--run", help="the run directory whose bundle is on the board")],
              board: Annotated[Optional[str], typer.Option(help="the bundle's board (when the run has several)")] = None,
              baud: Annotated[Optional[int], typer.Option(help="default: the bundle's baud rate")] = None,
              n: Annotated[int, typer.Option("--n", help="test images to send")] = 20,
              images: Annotated[Optional[Path], typer.Option(help=".npz with key images or x: your own images "
                                                                  "(integer codes, the model's input shape)")] = None,
              timeout: Annotated[float, typer.Option(help="seconds to wait for each answer")] = 5.0,
              json_out: Annotated[Optional[Path], typer.Option("--json", help="write the results here")] = None,
              verbose: bool = False) -> None:
        """Send images to the board shell, read class and scores, check them against the reference and time the
        round trip; exits 1 when an answer differs from the reference."""
        setup_logging(verbose)
        try:
            import numpy as np

            from insitu.errors import InsituError
            from insitu.host.infer import infer as run_infer
            from insitu.sim.board_sim import bundle_of

            bundle = bundle_of(run, board)
            rate = baud or json.loads((bundle / "impl.json").read_text())["uart_baud"]
            own = None
            if images is not None:
                try:
                    with np.load(images, allow_pickle=False) as z:
                        own = z["images"] if "images" in z else z["x"]
                except (OSError, ValueError, KeyError) as exc:
                    raise InsituError(f"cannot read images from {images}: {exc}",
                                      "pass an .npz with key images (or x) of integer codes") from None
            doc = run_infer(port, bundle, run / "export", n, rate, timeout, own)
        except InsituError as exc:
            fail(exc)
        for r in doc["answers"]:
            mark = " ok" if r["agrees"] else " DIFFERS from the reference"
            console.print(f"image {r['image']}: class {r['class']} scores {r['scores']} {r['round_trip_ms']:.1f} ms{mark}")
        rt = doc["round_trip_ms"]
        agree = doc["agree_with_reference"]
        console.print(f"{doc['images']} images, {agree} agree with the reference; round trip median "
                      f"{rt['median']} ms, p99 {rt['p99']} ms")
        if json_out:
            json_out.write_text(json.dumps(doc, indent=1) + "\n")
        if agree != doc["images"]:
            raise typer.Exit(1)

    @app.command("board-sim")
    def board_sim(run: Annotated[Path, typer.Option("--run", help="the run directory with a firmware bundle")],
                  board: Annotated[Optional[str], typer.Option(help="the bundle's board")] = None,
                  seconds: Annotated[float, typer.Option(help="stop after this many seconds")] = 3600.0,
                  simulator: Annotated[str, typer.Option(help="auto, verilator or icarus")] = "auto",
                  port_file: Annotated[Optional[Path], typer.Option(help="also write the terminal's path here")] = None,
                  verbose: bool = False) -> None:
        """The bundle's shell and core in simulation on a pseudo-terminal: prints its path, then serves until
        stopped (Ctrl-C) or --seconds pass. Talk to it with `insitu infer --port PATH --run RUN`."""
        setup_logging(verbose)
        from insitu.errors import InsituError
        from insitu.sim.board_sim import start

        work = Path(tempfile.mkdtemp(prefix="insitu-board-sim-"))
        try:
            proc, path = start(run, board, work, seconds, simulator)
        except InsituError as exc:
            fail(exc)
        if port_file:
            port_file.write_text(path + "\n")
        print(path, flush=True)
        console.print(f"simulated board on {path} (work: {work}); Ctrl-C stops it")

        def _stop(signum, frame):
            proc.terminate()
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, _stop)
        try:
            proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            proc.wait(timeout=30)
            raise typer.Exit(0) from None
        if proc.returncode not in (0, -signal.SIGTERM):
            console.print(f"[red]the board simulation ended with exit {proc.returncode}[/]; log: {work}/board-sim.log")
            sys.exit(1)

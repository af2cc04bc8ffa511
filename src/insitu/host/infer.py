"""`insitu infer`: send a run's test images (or images you give) to the board shell over a serial port, read each
answer (the class, then every score as little-endian two's complement), check it against the integer
reference, and time the round trip.

The protocol comes from the bundle's impl.json (`protocol`: image_bytes, value_bits, value_bytes, answer_bytes,
score_bytes), so the host speaks exactly what the bitstream was built with.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from insitu.errors import InsituError
from insitu.rtl.shell import encode_values
from insitu.sim.shell_sim import decode
from insitu.sim.vectors import load_vectors


@dataclass(frozen=True)
class Protocol:
    image_bytes: int
    value_bits: int
    answer_bytes: int
    score_bytes: int
    n_classes: int

    @classmethod
    def of_bundle(cls, bundle: Path) -> Protocol:
        doc = json.loads((bundle / "impl.json").read_text())
        p = doc.get("protocol")
        if not p:
            raise InsituError(f"the bundle {bundle} has no UART protocol (built before it was recorded)",
                              f"rebuild it: insitu build --board {bundle.name} --out {bundle.parents[1]}")
        n = (p["answer_bytes"] - 1) // p["score_bytes"]
        return cls(p["image_bytes"], p["value_bits"], p["answer_bytes"], p["score_bytes"], n)


def open_port(port: str, baud: int, timeout_s: float):
    import serial

    try:
        return serial.Serial(port, baud, timeout=timeout_s, write_timeout=timeout_s)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise InsituError(f"cannot open the serial port {port}: {exc}",
                          "check the board is plugged in and the port name (ls /dev/ttyUSB* /dev/ttyACM*), that "
                          "you may open it (the dialout group), and that no other program holds it") from None


def exchange(ser, proto: Protocol, image: np.ndarray, port: str) -> tuple[int, np.ndarray, float]:
    """Send one image, read one answer: (class, scores, round-trip seconds)."""
    data = encode_values(image, proto.value_bits)
    if len(data) != proto.image_bytes:
        raise InsituError(f"an image of {image.size} values is {len(data)} bytes; the board expects "
                          f"{proto.image_bytes}", "send images of the model's input shape")
    ser.reset_input_buffer()
    t0 = time.perf_counter()
    ser.write(data)
    ser.flush()
    answer = ser.read(proto.answer_bytes)
    dt = time.perf_counter() - t0
    if len(answer) < proto.answer_bytes:
        raise InsituError(f"{port}: no answer within {ser.timeout:g} s: expected {proto.answer_bytes} bytes "
                          f"(the class, then {proto.n_classes} scores of {proto.score_bytes} bytes), got "
                          f"{len(answer)}", "check the bitstream is loaded, the baud rate and the cable; a pause "
                          "mid-image resets the shell, so send whole images")
    cls, scores = decode(np.frombuffer(answer, np.uint8).astype(np.int64)[None], proto.n_classes, proto.score_bytes)
    if not 0 <= int(cls[0]) < proto.n_classes:
        raise InsituError(f"{port} answered garbage: class byte {int(cls[0])} is not one of 0..{proto.n_classes - 1} "
                          f"(answer {answer.hex()}); expected {proto.answer_bytes} bytes: the class, then "
                          f"little-endian scores", "check the port is the board's and the baud rate matches the "
                          "bundle's (impl.json uart_baud)")
    return int(cls[0]), scores[0], dt


def reference_outputs(export: Path, images: np.ndarray) -> np.ndarray:
    """The integer reference's outputs for your own images (integer codes of the model's input)."""
    from insitu.ir import reference
    from insitu.ir.model import QuantModel

    qm = QuantModel.load(export)
    shape = tuple(qm.input.shape)
    x = np.asarray(images)
    if x.shape[1:] != shape and x.shape[1:] != shape[1:]:
        raise InsituError(f"images of shape {x.shape[1:]} do not match the model's input {shape}",
                          "pass integer codes of the model's input shape, one image per row")
    return np.asarray(reference.run(qm, x), np.int64)


def infer(port: str, bundle: Path, export: Path, n: int, baud: int, timeout_s: float,
          images: np.ndarray | None = None) -> dict:
    """Send `images` (default: the first `n` test images of the run) and check every answer against the
    integer reference."""
    proto = Protocol.of_bundle(bundle)
    if images is None:
        vec = load_vectors(export / "vectors.npz")
        images, expected = vec.images[:n], np.asarray(vec.expected[:n], np.int64)
    else:
        expected = reference_outputs(export, images)
    ser = open_port(port, baud, timeout_s)
    rows = []
    try:
        for i, img in enumerate(images):
            cls, scores, dt = exchange(ser, proto, img, port)
            row = {"image": i, "class": cls, "scores": scores.tolist(), "round_trip_ms": round(1000 * dt, 3)}
            row["agrees"] = bool(cls == int(expected[i].argmax()) and np.array_equal(scores, expected[i]))
            rows.append(row)
    finally:
        ser.close()
    rt = np.array([r["round_trip_ms"] for r in rows]) if rows else np.zeros(1)
    return {"port": port, "baud": baud, "images": len(rows),
            "agree_with_reference": sum(r["agrees"] for r in rows),
            "round_trip_ms": {"median": round(float(np.median(rt)), 3), "p99": round(float(np.percentile(rt, 99)), 3),
                              "max": round(float(rt.max()), 3)},
            "answers": rows}

"""The steps of the cells application, in order. This list is the registry: grep for a step's name here."""

from __future__ import annotations

from insitu.pipeline import Step
from insitu.steps import data, distill, export, firmware, hls, report, rtl, teacher

CELLS_STEPS: list[Step] = [
    Step("data", data.run, ("data",), (), "prepare the train / pool / test split"),
    Step("teacher", teacher.run, ("data", "teacher", "device"), ("data",), "train the teacher, soft labels"),
    Step("distill", distill.run, ("data", "student", "distill", "device"), ("data", "teacher"),
         "KD student (float, then QAT) and the no-KD ablation"),
    Step("export", export.run, ("student",), ("data", "distill"), "QuantModel IR, QONNX, reference == Brevitas"),
    Step("hls", hls.run, ("hls",), ("export",), "hls4ml project and bit-exact C simulation"),
    Step("rtl", rtl.run, ("rtl",), ("export",), "streaming Verilog, RTL simulation bit-exact with the reference"),
    Step("firmware", firmware.run, ("rtl", "firmware"), ("export", "rtl"),
         "board shell, its UART simulation, bitstream (open flow) or estimate, bundle"),
    Step("report", report.run, ("firmware",), ("data", "teacher", "distill", "export", "hls", "rtl", "firmware"),
         "report.json and report.md"),
]

STEP_NAMES = [s.name for s in CELLS_STEPS]

"""The steps of each application, in order. These lists are the registry: grep for a step's name here."""

from __future__ import annotations

from insitu.pipeline import Step
from insitu.steps import (ablation, compile, compile_report, data, distill, export, firmware, hls, lidar_data,
                          lidar_report, lidar_streams, lidar_student, report, rtl, shellsim, teacher)

CELLS_STEPS: list[Step] = [  # list order is the scheduler's priority: the firmware's chain first
    Step("data", data.run, ("data",), (), "prepare the train / pool / test split"),
    Step("teacher", teacher.run, ("data", "teacher", "device"), ("data",), "train the teacher, soft labels",
         cores=0, torch_threads=True),
    Step("distill", distill.run, ("data", "student", "distill", "device"), ("data", "teacher"),
         "KD student: float, then QAT", cores=0, torch_threads=True),
    Step("export", export.run, ("student",), ("data", "distill"), "QuantModel IR, QONNX, reference == Brevitas"),
    Step("rtl", rtl.run, ("rtl",), ("export",), "Verilog of the core (streaming or unrolled)"),
    Step("firmware", firmware.run, ("rtl", "firmware"), ("export", "rtl"),
         "board shell, bitstream (open flow) or estimate, bundle"),
    Step("shellsim", shellsim.run, ("rtl", "firmware"), ("export", "rtl"),
         "the board shell simulated over its UART: answers and trigger == reference"),
    Step("rtlsim", rtl.run_sim, ("rtl",), ("export", "rtl"), "RTL simulation, bit-exact with the reference"),
    Step("hls", hls.run, ("hls",), ("export",), "hls4ml project and bit-exact C simulation"),
    Step("ablation", ablation.run, ("data", "student", "distill", "device"), ("data",),
         "no-KD student (same student, seed, split and steps, no teacher): the KD gain", torch_threads=True),
    Step("report", report.run, ("firmware",), ("data", "teacher", "distill", "export", "hls", "rtl", "rtlsim",
                                               "firmware", "shellsim", "ablation"), "report.json and report.md"),
]

LIDAR_STEPS: list[Step] = [
    Step("data", lidar_data.run_data, ("lidar.data",), (), "simulated lidar sequences (cached) or SemanticKITTI"),
    Step("segnet", lidar_data.run_segnet, ("lidar.segnet",), ("data",), "supervised stream: range-image segmentation"),
    Step("streams", lidar_streams.run, ("lidar.motion",), ("data", "segnet"),
         "two-stream detector on pool and test: codes, failure flags (pseudo-labels)"),
    Step("distill", lidar_student.run_distill, ("lidar.student", "lidar.distill", "device"), ("data", "streams"),
         "per-column student: float, then Brevitas QAT on the pseudo-labels"),
    Step("export", lidar_student.run_export, ("lidar.student", "lidar.distill"), ("data", "streams", "distill"),
         "QuantModel IR, QONNX, reference == Brevitas, student metrics"),
    Step("rtl", rtl.run, ("rtl",), ("export",), "unrolled Verilog (a column per clock)"),
    Step("firmware", firmware.run, ("rtl", "firmware"), ("export", "rtl"),
         "board shell, bitstream (open flow) or estimate, bundle"),
    Step("shellsim", shellsim.run, ("rtl", "firmware"), ("export", "rtl"),
         "the board shell simulated over its UART: answers and trigger == reference"),
    Step("rtlsim", rtl.run_sim, ("rtl",), ("export", "rtl"), "RTL simulation, bit-exact with the reference"),
    Step("hls", hls.run, ("hls",), ("export",), "hls4ml project and bit-exact C simulation"),
    Step("report", lidar_report.run, ("firmware",), ("data", "segnet", "streams", "distill", "export", "hls", "rtl",
                                                     "rtlsim", "firmware", "shellsim"),
         "report.json, report.md, ROC and bird's-eye plots"),
]

COMPILE_STEPS: list[Step] = [
    Step("import", compile.run_import, ("compile",), (), "the model file -> QuantModel IR; inputs -> codes, reference"),
    Step("check", compile.run_check, ("compile",), ("import",),
         "IR reference == the source framework's execution, bit for bit, on every input"),
    Step("rtl", rtl.run, ("rtl",), ("import", "check"), "Verilog of the core (streaming or unrolled)"),
    Step("firmware", firmware.run, ("rtl", "firmware"), ("import", "rtl"),
         "board shell, bitstream (open flow) or estimate, bundle"),
    Step("shellsim", shellsim.run, ("rtl", "firmware"), ("import", "rtl"),
         "the board shell simulated over its UART: answers and trigger == reference"),
    Step("rtlsim", rtl.run_sim, ("rtl",), ("import", "rtl"), "RTL simulation, bit-exact with the reference"),
    Step("hls", hls.run, ("hls",), ("import", "check"), "hls4ml project and bit-exact C simulation"),
    Step("report", compile_report.run, ("firmware",), ("import", "check", "hls", "rtl", "rtlsim", "firmware",
                                                       "shellsim"),
         "report.json and report.md"),
]

APP_STEPS: dict[str, list[Step]] = {"cells": CELLS_STEPS, "lidar": LIDAR_STEPS, "compile": COMPILE_STEPS}
STEP_NAMES = [s.name for s in CELLS_STEPS]

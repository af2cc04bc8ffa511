"""The report's scorecard: the main job's wall time from the manifest, and each target met, missed or unmeasured."""

import time

from insitu.reports.targets import TARGETS, markdown, scorecard, wall_seconds


def _stage(end: float, seconds: float) -> dict:
    return {"finished": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(end)), "seconds": seconds}


def test_wall_time_counts_overlapping_stages_once_and_skips_a_pause():
    t0 = 1_800_000_000.0
    stages = {"data": _stage(t0 + 10, 10), "teacher": _stage(t0 + 110, 100),
              "firmware": _stage(t0 + 700, 590), "hls": _stage(t0 + 300, 150),  # beside place and route
              "report": _stage(t0 + 5000, 1)}  # resumed much later
    assert wall_seconds(stages) == 10 + 100 + 590 + 1
    assert wall_seconds({}) is None
    assert wall_seconds({"x": {"seconds": 3.0}}) is None  # a record without its end time is skipped


def _report(teacher=0.95, student=0.935, gain=2.5, latency=4.2, wall=600.0) -> dict:
    lat = None if latency is None else {"clock": "bitstream", "clock_mhz": 80.0, "first_pixel_to_decision": latency,
                                        "cycles": {"first_pixel_to_decision": int(latency * 80)}}
    return {"teacher": {"accuracy": teacher}, "student": {"accuracy": student}, "kd_gain_points": gain,
            "latency_us": lat, "main_job": {"wall_seconds": wall}}


def test_scorecard_statuses():
    card = {r["key"]: r for r in scorecard(_report())}
    assert [t.key for t in TARGETS] == list(card)
    assert card["teacher_gap"]["value"] == 1.5 and card["teacher_gap"]["status"] == "met (goal not reached)"
    assert card["kd_gain"]["status"] == "met" and card["latency"]["status"] == "met"
    assert card["main_job"]["value"] == 10.0 and card["main_job"]["status"] == "met"
    card = {r["key"]: r for r in scorecard(_report(student=0.91, gain=0.4, latency=7.78, wall=1800.0))}
    assert {r["status"] for r in card.values()} == {"missed"}
    assert scorecard(_report(student=0.945))[0]["status"] == "met"  # within the 1-point goal


def test_unmeasured_targets_say_why():
    rep = _report(gain=None, latency=None)
    rep["latency_us"] = {"clock": "configured", "first_pixel_to_decision": 3.0}  # not a built bitstream's clock
    card = {r["key"]: r for r in scorecard(rep)}
    assert card["kd_gain"]["status"] == "not measured" and "ablation" in card["kd_gain"]["how"]
    assert card["latency"]["status"] == "not measured" and "no bitstream" in card["latency"]["how"]
    text = "\n".join(markdown(scorecard(rep)))
    assert "| KD gain over the no-KD ablation | - | >= 2 points | not measured |" in text

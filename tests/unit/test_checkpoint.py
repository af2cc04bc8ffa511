import pytest
import torch

from insitu.config import StudentConfig, TeacherConfig
from insitu.distill.checkpoint import load_checkpoint, save_checkpoint
from insitu.distill.student import build_student
from insitu.distill.teacher import ResNetTeacher
from insitu.errors import CheckpointError


class Evil:
    """Any class: unpickling it would run arbitrary code paths."""


def test_round_trip_and_other_architecture(tmp_path):
    cfg = {"width": 8}
    t = ResNetTeacher(TeacherConfig(width=8, blocks=[1]), 3)
    save_checkpoint(tmp_path / "t.pt", t, "teacher", cfg)
    t2 = ResNetTeacher(TeacherConfig(width=8, blocks=[1]), 3)
    load_checkpoint(tmp_path / "t.pt", t2, "teacher", cfg)
    assert all(torch.equal(a, b) for a, b in zip(t.state_dict().values(), t2.state_dict().values()))
    with pytest.raises(CheckpointError, match="another architecture"):
        load_checkpoint(tmp_path / "t.pt", t2, "teacher", {"width": 16})
    s = build_student(StudentConfig(channels=[4, 4]), 3, 20, quantized=False)
    with pytest.raises(CheckpointError, match="does not fit the model"):
        load_checkpoint(tmp_path / "t.pt", s, "teacher", cfg)


def test_corrupt_and_missing(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"\x80\x04garbage")
    m = build_student(StudentConfig(channels=[4, 4]), 3, 20, quantized=False)
    with pytest.raises(CheckpointError, match="cannot load"):
        load_checkpoint(tmp_path / "bad.pt", m, "student_float", {})
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt", m, "student_float", {})


def test_pickled_objects_are_refused(tmp_path):
    """weights_only=True: a checkpoint carrying an arbitrary object does not load."""
    torch.save({"kind": "teacher", "config": {}, "state_dict": {}, "x": Evil()}, tmp_path / "e.pt")
    m = build_student(StudentConfig(channels=[4, 4]), 3, 20, quantized=False)
    with pytest.raises(CheckpointError, match="cannot load"):
        load_checkpoint(tmp_path / "e.pt", m, "teacher", {})

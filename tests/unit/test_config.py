import pytest

from insitu.config import build_config, overrides_to_dict
from insitu.errors import ConfigError


def test_default_paper_and_tiny_presets():
    d = build_config().student
    assert d.arch == "separable" and d.channels == [16, 32, 48] and d.batchnorm
    p = build_config("paper").student
    assert p.arch == "plain" and p.channels == [16, 16] and p.head == "flatten"
    assert build_config("tiny").data.n_train < build_config().data.n_train


def test_fast_preset_is_the_small_student_at_eight_lanes():
    f = build_config("fast")
    assert f.student.channels == [8, 16, 32] and f.student.arch == "separable" and f.rtl.lanes == 8
    assert f.student.weight_bits == 6 and f.student.pointwise_weight_bits is None  # 6 bits everywhere
    assert f.distill == build_config().distill and f.teacher == build_config().teacher


def test_out_of_range_names_field_and_limit():
    with pytest.raises(ConfigError, match=r"student\.weight_bits = 12: Input should be less than or equal to 8"):
        build_config("default", {"student": {"weight_bits": 12}})


def test_literal_lists_allowed_values():
    with pytest.raises(ConfigError, match=r"hls\.io_type.*'io_stream' or 'io_parallel'"):
        build_config("default", {"hls": {"io_type": "io_serial"}})


def test_unknown_field_and_preset():
    with pytest.raises(ConfigError, match=r"student\.bits"):
        build_config("default", {"student": {"bits": 4}})
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        build_config("huge")


def test_file_sources_need_a_path():
    with pytest.raises(ConfigError, match="needs data.path"):
        build_config("default", {"data": {"source": "npz"}})


def test_overrides_parse_json_values():
    assert overrides_to_dict(["student.weight_bits=5", "teacher.blocks=[1,2]", "hls.part=xc7a100t"]) == {
        "student": {"weight_bits": 5}, "teacher": {"blocks": [1, 2]}, "hls": {"part": "xc7a100t"}}
    with pytest.raises(ConfigError, match="section.field=value"):
        overrides_to_dict(["student.weight_bits"])


def test_section_hash_tracks_only_its_sections():
    a, b = build_config(), build_config("default", {"hls": {"clock_period_ns": 5.0}})
    assert a.section_hash("student") == b.section_hash("student")
    assert a.section_hash("hls") != b.section_hash("hls")


def test_section_hash_leaves_out_added_fields_at_none():
    """A run made before an optional field existed (its config without the field) keeps its steps' keys."""
    import hashlib
    import json

    from insitu.config import ADDED_FIELDS

    assert "student.first_weight_bits" in ADDED_FIELDS
    cfg = build_config()
    assert cfg.student.first_weight_bits is None
    before = cfg.model_dump(mode="json")
    del before["student"]["first_weight_bits"]
    payload = {k: before[k] for k in ("app", "seed", "data", "student")}
    assert cfg.section_hash("data", "student") == \
        hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    assert build_config("default", {"student": {"first_weight_bits": 4}}).section_hash("student") != \
        cfg.section_hash("student")


def test_section_hash_ignores_tool_timeouts():
    """Raising the place-and-route timeout to resume a stopped run keeps the keys of what finished."""
    a = build_config()
    b = build_config("default", {"firmware": {"timeout_s": 60}})
    assert a.section_hash("rtl", "firmware") == b.section_hash("rtl", "firmware")
    assert build_config("default", {"firmware": {"seed": 2}}).section_hash("firmware") != a.section_hash("firmware")

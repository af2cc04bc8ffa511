import numpy as np
import pytest

from insitu.config import HLSConfig, StudentConfig
from insitu.distill.export import export_quantmodel
from insitu.hls import csim
from insitu.hls.project import write_project
from insitu.ir import reference


def _csim(tmp_path, calibrated, io_type, bits=(4, 4)):
    cfg = StudentConfig(channels=[3, 4], weight_bits=bits[0], act_bits=bits[1])
    qm = export_quantmodel(calibrated(cfg, size=16), 16, list("abc"))
    images = np.random.default_rng(2).integers(0, 256, (150, 16, 16), dtype=np.uint8)
    ref = reference.run(qm, images)
    hcfg = HLSConfig(io_type=io_type)
    project = write_project(qm, hcfg, tmp_path / "prj", images, reference.to_real(qm, ref))
    got = csim.run(project, hcfg)
    return project, ref, got


def test_csim_is_bit_exact_io_stream(tmp_path, calibrated):
    project, ref, got = _csim(tmp_path, calibrated, "io_stream", bits=(5, 3))
    assert got.shape == ref.shape == (150, 3)
    assert np.array_equal(got, ref)
    assert len(np.unique(ref, axis=0)) > 10
    # the project is usable with Vitis: testbench data and build scripts are there
    assert (project.path / "tb_data" / "tb_input_features.dat").exists()
    assert (project.path / "build_prj.tcl").exists() and (project.path / "insitu_csim_build.sh").exists()
    assert "xcku035-fbva676-2-e" in (project.path / "project.tcl").read_text()


@pytest.mark.slow
def test_csim_is_bit_exact_io_parallel(tmp_path, calibrated):
    _, ref, got = _csim(tmp_path, calibrated, "io_parallel", bits=(6, 6))
    assert np.array_equal(got, ref)


def test_parse_rejects_off_grid_values(tmp_path):
    from insitu.errors import ToolError

    (tmp_path / "r.log").write_text("0.5 0.25\n0.3 1\n")
    with pytest.raises(ToolError, match="not on the output grid"):
        csim.parse_results(tmp_path / "r.log", 2, 4)
    (tmp_path / "r.log").write_text("0.5 0.25\n")
    assert csim.parse_results(tmp_path / "r.log", 2, 4).tolist() == [[8, 4]]

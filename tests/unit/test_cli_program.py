import os
import stat

from typer.testing import CliRunner

from insitu.cli import app

runner = CliRunner()


def test_dry_run_prints_the_exact_command(tmp_path):
    bit = tmp_path / "top.bit"
    bit.write_bytes(b"\x00" * 16)
    r = runner.invoke(app, ["program", "--board", "ulx3s-85f", "--bitstream", str(bit), "--dry-run"])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == f"openFPGALoader --board ulx3s {bit.resolve()}"


def test_unknown_board_and_missing_bitstream(tmp_path):
    bit = tmp_path / "top.bit"
    bit.write_bytes(b"\x00")
    r = runner.invoke(app, ["program", "--board", "ulx3s-99f", "--bitstream", str(bit), "--dry-run"])
    assert r.exit_code == 2 and "ulx3s-85f" in " ".join(r.output.split())
    r = runner.invoke(app, ["program", "--board", "ulx3s-85f", "--bitstream", str(tmp_path / "none.bit")])
    assert r.exit_code == 2 and "does not exist" in r.output


def test_missing_programmer_names_it(tmp_path, monkeypatch):
    bit = tmp_path / "top.bit"
    bit.write_bytes(b"\x00")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    r = runner.invoke(app, ["program", "--board", "icebreaker", "--bitstream", str(bit)])
    assert r.exit_code == 2 and "openFPGALoader" in r.output and "apt-get install openfpgaloader" in r.output


def test_fake_programmer_is_called_with_the_bitstream(tmp_path, monkeypatch):
    """A fake openFPGALoader on PATH records its arguments, as a real one would receive them."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "openFPGALoader"
    fake.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/args.txt\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    bit = tmp_path / "top.bit"
    bit.write_bytes(b"\x00")
    r = runner.invoke(app, ["program", "--board", "ulx3s-85f", "--bitstream", str(bit)])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "args.txt").read_text().split() == ["--board", "ulx3s", str(bit.resolve())]

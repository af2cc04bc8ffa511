import pytest

from insitu.errors import ToolError
from insitu.toolexec import find_tool, run_tool, tool_version


def test_missing_tool_names_it_and_the_fix():
    with pytest.raises(ToolError, match="'vitis-run' was not found.*") as e:
        find_tool("vitis-run")
    assert "Vitis" in e.value.fix


def test_timeout_is_enforced(tmp_path):
    with pytest.raises(ToolError, match="did not finish within 1 s"):
        run_tool(["sleep", "5"], tmp_path, tmp_path / "log.txt", timeout_s=1)


def test_failure_keeps_log_and_shows_tail(tmp_path):
    with pytest.raises(ToolError, match="exit code 3") as e:
        run_tool(["bash", "-c", "echo boom; exit 3"], tmp_path, tmp_path / "log.txt", timeout_s=10)
    assert "boom" in str(e.value) and "boom" in (tmp_path / "log.txt").read_text()


def test_success_and_version(tmp_path):
    r = run_tool(["bash", "-c", "echo ok"], tmp_path, tmp_path / "l.txt", timeout_s=10)
    assert r.returncode == 0 and "ok" in r.log_path.read_text()
    assert tool_version("bash") and tool_version("no-such-tool-xyz") is None


def test_stop_all_tools_ends_a_tool_waited_on_in_another_thread(tmp_path):
    import sys
    import threading
    import time

    from insitu.toolexec import stop_all_tools

    errors = []

    def wait_on_it():
        try:
            run_tool([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path, tmp_path / "log", 120)
        except ToolError as exc:
            errors.append(exc)

    t = threading.Thread(target=wait_on_it)
    t0 = time.monotonic()
    t.start()
    while stop_all_tools() == 0 and time.monotonic() - t0 < 20:
        time.sleep(0.05)
    t.join(timeout=20)
    assert not t.is_alive() and time.monotonic() - t0 < 30
    assert errors and "exit code -9" in str(errors[0])

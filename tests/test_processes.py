"""policygrad.core.processes, how A3C and the study pool start and stop children: a child that will not
stop is terminated, then killed; a child whose parent is killed ends by itself."""

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time

from policygrad.core import processes


def sleep_forever_ignoring_sigterm(ready):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ready.set()
    while True:
        time.sleep(1)


def sleep_until(event):
    event.wait(60)


def test_stop_children_asks_first_and_a_child_that_listens_exits_cleanly():
    ctx = multiprocessing.get_context("spawn")
    event = ctx.Event()
    child = ctx.Process(target=sleep_until, args=(event,))
    with processes.starting_children():
        child.start()
    processes.stop_children([child], event.set, timeout=30)
    assert child.exitcode == 0


def test_stop_children_kills_a_child_that_ignores_both_the_request_and_sigterm():
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    child = ctx.Process(target=sleep_forever_ignoring_sigterm, args=(ready,))
    with processes.starting_children():
        child.start()
    assert ready.wait(60), "the child never started"  # its SIGTERM handler is in place
    start = time.monotonic()
    processes.stop_children([child], lambda: None, timeout=0.5)
    assert not child.is_alive() and child.exitcode == -signal.SIGKILL
    assert time.monotonic() - start < 10
    assert processes.exit_reason(child.exitcode) == "killed by SIGKILL"


def test_a_child_whose_parent_is_killed_in_the_middle_ends_by_itself(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    parent = textwrap.dedent(f"""
        import multiprocessing, os, time
        from policygrad.core import processes
        import tests_child_target as target
        if __name__ == "__main__":
            child = multiprocessing.get_context("spawn").Process(target=target.watch_and_sleep, args=(os.getpid(),))
            with processes.starting_children():
                child.start()
            open({str(pid_file)!r}, "w").write(str(child.pid))
            time.sleep(60)
    """)
    (tmp_path / "tests_child_target.py").write_text(textwrap.dedent("""
        import os, time
        from policygrad.core import processes
        def watch_and_sleep(parent_pid):  # given by the parent: it may be gone before this line runs
            processes.exit_with_parent(parent_pid, period=0.05)
            time.sleep(60)
    """))
    (tmp_path / "parent.py").write_text(parent)
    proc = subprocess.Popen([sys.executable, "parent.py"], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(tmp_path)})
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    grandchild = int(pid_file.read_text())
    proc.send_signal(signal.SIGKILL)  # the parent dies without a chance to stop its child
    proc.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        # a zombie still answers kill(0): it is reaped by init; read its state to tell
        with open(f"/proc/{grandchild}/stat") as f:
            if f.read().split(") ")[1].startswith("Z"):
                break
        time.sleep(0.05)
    else:
        os.kill(grandchild, signal.SIGKILL)
        raise AssertionError("the orphaned child was still running 20 s after its parent was killed")


def test_main_module_hidden_restores_main_after_the_start():
    main = sys.modules["__main__"]
    before = getattr(main, "__file__", None)
    with processes.main_module_hidden():
        assert not hasattr(main, "__file__") and main.__spec__ is None
    assert getattr(main, "__file__", None) == before


def test_one_thread_per_child_sets_and_restores_the_thread_variables(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with processes.one_thread_per_child():
        assert os.environ["OMP_NUM_THREADS"] == "1"
    assert "OMP_NUM_THREADS" not in os.environ

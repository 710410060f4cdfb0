"""policygrad.run.files, the one way files and folders are written: a writer killed at the worst
moment leaves the old content or the new one, and the next start cleans up after it."""

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from policygrad.core.errors import RunWriteError
from policygrad.run import files

# A child that starts a write, says where it is (a marker file), then sleeps inside it until killed.
CHILD = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from policygrad.run import files

    target, marker, stage = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]

    def wait_to_be_killed():
        marker.write_text("ready")
        time.sleep(60)

    if stage == "file":  # half of the new content written to the temporary
        def write(tmp):
            with open(tmp, "wb") as f:
                f.write(b"new" * 1000)
                f.flush()
                wait_to_be_killed()
        files.atomic_write(target, write)
    elif stage == "folder-fill":  # the new folder half-built
        def fill(staged):
            (staged / "a.txt").write_text("new")
            wait_to_be_killed()
        files.write_folder(target, fill)
    elif stage == "folder-swap":  # between the two renames: the old folder aside, the new one not in
        real_replace, calls = os.replace, []
        def replace(src, dst):
            real_replace(src, dst)
            calls.append(dst)
            if len(calls) == 1:
                wait_to_be_killed()
        files.os.replace = replace
        files.write_folder(target, lambda staged: (staged / "a.txt").write_text("new"))
""")


def kill_during(tmp_path, target, stage):
    marker = tmp_path / "marker"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(target), str(marker), stage])
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, "the writer ended before it reached the point to kill it at"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_a_file_write_killed_midway_leaves_the_old_content_and_a_leftover_the_next_start_removes(tmp_path):
    target = tmp_path / "results.csv"
    target.write_bytes(b"old")
    kill_during(tmp_path, target, "file")
    assert target.read_bytes() == b"old"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".results.csv.tmp-")]
    assert len(leftovers) == 1
    removed = files.clean_leftovers(tmp_path)
    assert [p.name for p in removed] == leftovers and target.read_bytes() == b"old"


def test_a_folder_write_killed_while_filling_leaves_the_old_folder(tmp_path):
    target = tmp_path / "checkpoint"
    target.mkdir()
    (target / "a.txt").write_text("old")
    kill_during(tmp_path, target, "folder-fill")
    assert (target / "a.txt").read_text() == "old"
    files.clean_leftovers(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint", "marker"]


def test_a_folder_swap_killed_between_its_two_renames_is_rolled_back_by_the_next_start(tmp_path):
    target = tmp_path / "checkpoint"
    target.mkdir()
    (target / "a.txt").write_text("old")
    kill_during(tmp_path, target, "folder-swap")
    assert not target.exists()  # the window the rollback exists for
    files.clean_leftovers(tmp_path)
    assert (target / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint", "marker"]


def test_a_folder_write_replaces_the_old_folder_whole(tmp_path):
    target = tmp_path / "out"
    files.write_folder(target, lambda staged: (staged / "a.txt").write_text("one"))
    files.write_folder(target, lambda staged: (staged / "b.txt").write_text("two"))
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failed_swap_puts_the_old_folder_back(tmp_path, monkeypatch):
    target = tmp_path / "out"
    files.write_folder(target, lambda staged: (staged / "a.txt").write_text("old"))
    real_replace = os.replace

    def second_rename_fails(src, dst):
        if str(dst) == str(target) and ".tmp-" in str(src):  # the new folder cannot go in; putting back can
            raise OSError(errno.EIO, "Input/output error")
        real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", second_rename_fails)
    with pytest.raises(RunWriteError, match="cannot write folder .*out"):
        files.write_folder(target, lambda staged: (staged / "a.txt").write_text("new"))
    monkeypatch.undo()
    assert (target / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_full_disk_is_a_run_write_error_naming_the_file_and_keeps_the_old_one(tmp_path):
    target = tmp_path / "config.json"
    files.write_json_atomic(target, {"a": 1})

    def full(tmp):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(RunWriteError, match=r"cannot write file .*config\.json: the disk is full"):
        files.atomic_write(target, full)
    assert target.read_text() == '{\n  "a": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_every_write_is_fsynced_file_then_folder(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(files, "fsync_file", lambda path: synced.append(("file", path.name)))
    monkeypatch.setattr(files, "fsync_dir", lambda path: synced.append(("dir", path.name)))
    files.write_text_atomic(tmp_path / "x.txt", "x")
    assert synced[0][0] == "file" and synced[0][1].startswith(".x.txt.tmp-") and synced[-1] == ("dir", tmp_path.name)

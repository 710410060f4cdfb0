"""A run directory is safe from a second process and from a full or read-only disk.

- One process at a time trains or resumes into a run directory: a second one (train, train --overwrite,
  resume) is refused with one line naming the holder's PID, and the holder's files are left alone. The
  lock is the operating system's, so a holder killed with SIGKILL leaves nothing that blocks a resume.
- A checkpoint or a CSV that cannot be written (a full disk, a read-only directory) stops the run with a
  one-line error naming the path; the previous checkpoint stays the latest, complete and loadable, no
  half-written folder is left, and the run resumes once there is room again.
"""

import builtins
import csv
import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import safetensors.torch
from filelock import FileLock, Timeout
from safetensors import SafetensorError

import policygrad as pg
from policygrad.cli import main
from policygrad.core.errors import RunWriteError
from policygrad.run import logger as logger_module
from policygrad.run import trainer
from policygrad.run.checkpoint import latest_checkpoint, periodic_checkpoints, verify_checkpoint

# Tiny and quick: 8 updates of 128 steps, periodic checkpoints at steps 256, 512 and 768.
CONFIG = dict(env_id="CartPole-v1", total_steps=1024, num_envs=2, num_steps=64, checkpoint_every=256,
              update_epochs=2, num_minibatches=1, progress=False, tensorboard=False, eval_episodes=1)
CLI_FLAGS = ["--env", "CartPole-v1", "--total-steps", "1024", "--num-envs", "2", "--num-steps", "64",
             "--checkpoint-every", "256", "--update-epochs", "2", "--num-minibatches", "1", "--progress", "false",
             "--tensorboard", "false", "--eval-episodes", "1"]
FIRST, SECOND = "step_000000256", "step_000000512"  # the first two periodic checkpoints


def ppo_config():
    return pg.make_config("ppo", **CONFIG)


def leftovers(run: Path) -> list[str]:
    """Hidden temporary files and folders of interrupted writes (the lock files are not)."""
    return sorted(p.name for where in (run, run / "checkpoints") if where.is_dir() for p in where.iterdir()
                  if p.name.startswith(".") and not p.name.startswith(".lock") or p.name.endswith(".tmp"))


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


# -- two processes, one run directory ---------------------------------------------------------------------
# The holder trains, and after its first periodic checkpoint waits inside the run (so inside the lock),
# until the test kills it.
HOLDER = r"""
import json, sys, time
import policygrad as pg
from policygrad.run import trainer

real = trainer.save_periodic
def save_then_wait(*args, **kwargs):
    folder = real(*args, **kwargs)
    print("checkpointed", flush=True)
    time.sleep(600)
    return folder

trainer.save_periodic = save_then_wait
pg.train(pg.make_config("ppo", **json.loads(sys.argv[2])), run_dir=sys.argv[1], check_env=False)
"""


def test_a_second_process_is_refused_and_a_killed_holder_leaves_no_lock(tmp_path, capsys):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run), json.dumps(CONFIG)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        line = holder.stdout.readline()  # blocks until the holder has checkpointed (or died)
        assert line.strip() == "checkpointed", holder.communicate(timeout=30)[1][-3000:]
        before = sorted(p.relative_to(run) for p in run.rglob("*"))
        needle = f"is in use by another policygrad process (PID {holder.pid})"

        with pytest.raises(ValueError, match=fr"\(PID {holder.pid}\)"):
            pg.train(ppo_config(), run_dir=run, check_env=False)
        with pytest.raises(ValueError, match=fr"\(PID {holder.pid}\)"):
            pg.train(ppo_config(), run_dir=run, overwrite=True, check_env=False)
        with pytest.raises(ValueError, match=fr"\(PID {holder.pid}\)"):
            pg.train(None, resume_from=run, check_env=False)
        assert main(["train", "ppo", *CLI_FLAGS, "--run-dir", str(run), "--overwrite", "--no-check-env"]) == 2
        assert needle in error_line(capsys)
        assert main(["resume", str(run), "--no-check-env"]) == 2
        assert needle in error_line(capsys)

        # nothing of the holder's run was touched: --overwrite did not delete it, resume did not tidy it
        assert sorted(p.relative_to(run) for p in run.rglob("*")) == before
        assert latest_checkpoint(run) == run / "checkpoints" / FIRST
        assert holder.poll() is None
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=30)
    assert holder.returncode == -signal.SIGKILL

    # The killed holder's lock died with it: the run resumes from its checkpoint, to the end.
    result = pg.train(None, resume_from=run, check_env=False)
    assert result.global_step == CONFIG["total_steps"]
    assert not (run / ".lock").exists() and not (run / ".lock.pid").exists()  # a finished run keeps none


def test_a_finished_run_keeps_no_lock_files_and_its_lock_names_the_holder_while_it_runs(tmp_path, monkeypatch):
    run = tmp_path / "run"
    seen = []

    def evaluate_while_looking(*args, **kwargs):
        seen.append((run / ".lock.pid").read_text().strip())
        return real(*args, **kwargs)

    import policygrad.training as training
    real = training.plot_runs
    monkeypatch.setattr(training, "plot_runs", evaluate_while_looking)
    pg.train(ppo_config(), run_dir=run, check_env=False)
    assert seen == [str(os.getpid())]
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".lock")) == []
    # and the next process locks the run again (a new lock file), as resume of a finished run does
    with trainer.lock_run_dir(run):
        assert (run / ".lock.pid").read_text().strip() == str(os.getpid())
    assert not (run / ".lock").exists()


def test_the_lock_is_held_for_the_whole_run_and_released_on_ctrl_c(tmp_path, monkeypatch):
    run = tmp_path / "run"
    held_during_run = []

    def checkpoint_then_ctrl_c(*args, **kwargs):
        try:
            FileLock(run / ".lock").acquire(timeout=0)
            held_during_run.append(False)
        except Timeout:
            held_during_run.append(True)
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "save_periodic", checkpoint_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        pg.train(ppo_config(), run_dir=run, check_env=False)
    assert held_during_run == [True]
    monkeypatch.undo()
    # released: this process (another lock object, as a second process would be) trains in it again
    assert pg.train(ppo_config(), run_dir=run, overwrite=True, check_env=False).global_step == CONFIG["total_steps"]


def test_the_lock_is_still_held_while_the_final_evaluation_and_plot_are_written(tmp_path, monkeypatch):
    import policygrad.training as training

    run = tmp_path / "run"
    held = []
    plot_runs = training.plot_runs

    def plot_while_checking(run_dirs, out, **kwargs):
        try:
            FileLock(run / ".lock").acquire(timeout=0)
            held.append(False)
        except Timeout:
            held.append(True)
        return plot_runs(run_dirs, out, **kwargs)

    monkeypatch.setattr(training, "plot_runs", plot_while_checking)
    result = pg.train(ppo_config(), run_dir=run, check_env=False)
    assert held == [True]  # another process could not --overwrite the run while eval.json was written
    assert (run / "eval.json").is_file() and result.evaluation is not None


SECOND_RESUME = r"""
import sys
import policygrad as pg
from policygrad.core.errors import RunDirInUseError
try:
    pg.train(None, resume_from=sys.argv[1], check_env=False)
except RunDirInUseError as exc:
    print("refused:", exc)
"""


def test_the_resume_point_is_found_under_the_lock(tmp_path, monkeypatch):
    """train(resume_from=...) chooses its checkpoint while it holds the run directory's lock, and holds
    it until the run ends: a second process that would resume (write newer checkpoints, tidy or move
    ``latest``) between the choice and the run is refused, and the files it would change stay as they are."""
    import policygrad.training as training

    run = tmp_path / "run"
    pg.train(ppo_config(), run_dir=run, check_env=False)
    found = []
    find_resume_point = training.find_resume_point

    def find_while_checking(*args, **kwargs):
        try:
            FileLock(run / ".lock").acquire(timeout=0)
            found.append("not locked")
        except Timeout:
            before = sorted(p.relative_to(run) for p in run.rglob("*") if p.name != ".lock.pid")
            second = subprocess.run([sys.executable, "-c", SECOND_RESUME, str(run)], capture_output=True, text=True,
                                    timeout=300)
            assert "refused:" in second.stdout and f"(PID {os.getpid()})" in second.stdout, second.stderr[-3000:]
            assert sorted(p.relative_to(run) for p in run.rglob("*") if p.name != ".lock.pid") == before
            found.append("locked")
        return find_resume_point(*args, **kwargs)

    monkeypatch.setattr(training, "find_resume_point", find_while_checking)
    longer = ppo_config().replace(total_steps=CONFIG["total_steps"] + 256)
    result = pg.train(longer, resume_from=run, check_env=False)
    assert found == ["locked"] and result.global_step == longer.total_steps


def test_a_directory_that_is_not_a_run_is_refused_before_a_lock_file_goes_into_it(tmp_path):
    (tmp_path / "notes.txt").write_text("not a run")
    with pytest.raises(ValueError, match="not a run directory"):
        pg.train(None, resume_from=tmp_path, check_env=False)
    with pytest.raises(ValueError, match="no such run directory"):
        pg.train(None, resume_from=tmp_path / "missing", check_env=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


# -- a full disk, a read-only directory --------------------------------------------------------------------
class Disk:
    """A disk that fills up (or turns read-only) when told: writes then fail with ``code``."""

    def __init__(self, code: int) -> None:
        self.code, self.failing = code, False

    def check(self, path=None) -> None:
        if self.failing:
            raise OSError(self.code, os.strerror(self.code), None if path is None else str(path))


def fail_from_second_checkpoint(monkeypatch, disk: Disk) -> None:
    """Every write of tensors from the second periodic checkpoint on fails as safetensors reports it."""
    real = safetensors.torch.serialize_file

    def serialize_file(tensors, filename, metadata=None):
        disk.failing = disk.failing or f".{SECOND}.tmp-" in str(filename)
        if disk.failing:
            raise SafetensorError(f"Error while serializing: I/O error: {os.strerror(disk.code)} (os error "
                                  f"{disk.code})")
        return real(tensors, filename, metadata=metadata)

    monkeypatch.setattr(safetensors.torch, "serialize_file", serialize_file)


def assert_previous_checkpoint_intact_and_resumable(run: Path) -> None:
    assert latest_checkpoint(run) == run / "checkpoints" / FIRST
    assert [p.name for p in periodic_checkpoints(run)] == [FIRST]
    verify_checkpoint(run / "checkpoints" / FIRST)
    assert leftovers(run) == []
    pg.load(run / "checkpoints" / FIRST)
    result = pg.train(None, resume_from=run, check_env=False)
    assert result.global_step == CONFIG["total_steps"]
    steps = [int(row["global_step"]) for row in csv.DictReader((run / "metrics.csv").open())]
    # the rows logged after the checkpoint were cut off, then written again by the resumed run
    assert steps == list(range(128, CONFIG["total_steps"] + 1, 128))


def test_a_full_disk_at_a_checkpoint_stops_the_run_cleanly(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    fail_from_second_checkpoint(monkeypatch, Disk(errno.ENOSPC))
    # the disk stays full: the final checkpoint fails too, and the error that stopped the run is reported
    assert main(["train", "ppo", *CLI_FLAGS, "--run-dir", str(run), "--no-check-env"]) == 1
    err = error_line(capsys)
    assert f"cannot write checkpoint {run / 'checkpoints' / SECOND}: the disk is full" in err, err
    assert f"policygrad resume {run}" in err
    assert not (run / "checkpoint").exists()
    monkeypatch.undo()
    assert_previous_checkpoint_intact_and_resumable(run)


def test_a_full_disk_while_writing_the_latest_pointer(tmp_path, monkeypatch):
    run = tmp_path / "run"
    disk, real = Disk(errno.ENOSPC), os.replace

    def replace(src, dst, *args, **kwargs):  # the second checkpoint's folder is in place, then the disk fills
        disk.failing = disk.failing or Path(dst).name == "latest" and (run / "checkpoints" / SECOND).is_dir()
        disk.check(dst)
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(RunWriteError, match="cannot write file .*latest: the disk is full") as error:
        pg.train(ppo_config(), run_dir=run, check_env=False)
    assert "\n" not in str(error.value)
    monkeypatch.undo()
    assert latest_checkpoint(run) == run / "checkpoints" / FIRST  # still names a complete one
    assert leftovers(run) == []
    result = pg.train(None, resume_from=run, check_env=False)  # the newer, unnamed folder is recomputed
    assert result.global_step == CONFIG["total_steps"]


def test_a_read_only_file_system_at_a_checkpoint(tmp_path, monkeypatch):
    run = tmp_path / "run"
    fail_from_second_checkpoint(monkeypatch, Disk(errno.EROFS))
    with pytest.raises(RunWriteError, match=f"{SECOND}: the file system is read-only") as error:
        pg.train(ppo_config(), run_dir=run, check_env=False)
    assert "\n" not in str(error.value)
    monkeypatch.undo()
    assert_previous_checkpoint_intact_and_resumable(run)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes into a directory chmod 0o555 forbids (the simulated EROFS test covers it)")
def test_a_read_only_checkpoints_directory(tmp_path, monkeypatch):
    run = tmp_path / "run"
    real = trainer.save_periodic

    def save_then_read_only(run_dir, *args, **kwargs):
        folder = real(run_dir, *args, **kwargs)
        os.chmod(Path(run_dir) / "checkpoints", 0o555)
        return folder

    monkeypatch.setattr(trainer, "save_periodic", save_then_read_only)
    try:
        with pytest.raises(RunWriteError, match=f"{SECOND}: the directory is not writable") as error:
            pg.train(ppo_config(), run_dir=run, check_env=False)
    finally:
        os.chmod(run / "checkpoints", 0o755)
    assert "\n" not in str(error.value)
    monkeypatch.undo()
    assert_previous_checkpoint_intact_and_resumable(run)


def test_a_full_disk_while_writing_the_csvs(tmp_path, monkeypatch):
    run = tmp_path / "run"
    disk = Disk(errno.ENOSPC)

    class FillingFile:
        """A CSV file on ``disk``: its writes fail once the disk is full."""

        def __init__(self, file) -> None:
            self._file = file

        def write(self, text):
            disk.check()
            return self._file.write(text)

        def __getattr__(self, name):
            return getattr(self._file, name)

    def open_on_disk(path, mode="r", *args, **kwargs):
        file = builtins.open(path, mode, *args, **kwargs)
        return FillingFile(file) if mode in ("w", "a") else file

    real = trainer.save_periodic

    def save_then_fill(*args, **kwargs):  # the disk fills right after the first checkpoint
        folder = real(*args, **kwargs)
        disk.failing = True
        return folder

    monkeypatch.setattr(logger_module, "open", open_on_disk, raising=False)
    monkeypatch.setattr(trainer, "save_periodic", save_then_fill)
    with pytest.raises(RunWriteError, match=r"cannot write log file .*(metrics|episodes)\.csv: the disk is full"):
        pg.train(ppo_config(), run_dir=run, check_env=False)
    monkeypatch.undo()
    assert_previous_checkpoint_intact_and_resumable(run)
